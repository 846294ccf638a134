"""The ``nfs`` storage backend: NFS through the kernel client where there is one, through libnfs everywhere."""
