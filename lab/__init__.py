"""Helpers that run real components on this machine kind (sanlock daemons), for the tests and the demo."""
