"""A plugin that fails to import: hectl must report it and carry on."""

raise ImportError("this plugin is broken on purpose")
