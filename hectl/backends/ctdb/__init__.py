"""The ``ctdb`` storage backend: NFS through a CTDB public address, with CTDB's health in ``storage check``."""
