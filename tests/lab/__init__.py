"""Helpers that run real components (sanlock daemons) for the integration tests."""
