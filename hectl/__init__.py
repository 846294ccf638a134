"""hectl: keep a self-hosted management VM (the "engine") alive on shared storage."""

__version__ = "0.1.0"
