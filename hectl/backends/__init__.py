"""Storage backend plugins that ship with hectl.

``BUILTIN_BACKENDS`` maps the backend names the built-in plugins register
(``hectl.plugins.BUILTIN_PLUGINS``) to the backend class, so that the fast
paths can build a built-in backend without loading pluggy and the entry
points; a test keeps it in step with what the hooks register.
"""

BUILTIN_BACKENDS = {
    "ctdb": "hectl.backends.ctdb.backend:CTDBBackend",
    "glusterfs": "hectl.backends.glusterfs.backend:GlusterFSBackend",
    "localfs": "hectl.backends.localfs.backend:LocalFSBackend",
    "nfs": "hectl.backends.nfs.backend:NFSBackend",
}
