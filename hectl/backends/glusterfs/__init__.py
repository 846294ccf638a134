"""The ``glusterfs`` backend: a storage domain on a GlusterFS volume (FUSE mount; gfapi for mount-free reads)."""
