"""The ``localfs`` backend: a storage domain in a directory of this host (the embedded default)."""
