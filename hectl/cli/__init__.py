"""The command line: the click root group, the fast paths, completion and man pages."""
