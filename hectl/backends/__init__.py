"""Storage backend plugins that ship with hectl.

``BUILTIN_PLUGINS`` maps each built-in plugin name to its module (which holds
the ``hectl_register_backends`` hookimpl). ``BUILTIN_BACKENDS`` maps the
backend names they register to the backend class, so that the fast paths can
build a built-in backend without loading pluggy and the entry points; a test
keeps the two tables in step with what the hooks register.
"""

BUILTIN_PLUGINS = {"localfs": "hectl.backends.localfs.plugin"}
BUILTIN_BACKENDS = {"localfs": "hectl.backends.localfs.backend:LocalFSBackend"}
