"""Shared storage: the backend interface, the on-storage records, the metadata file, bounded direct I/O."""
