"""The audit log: one JSON object per line, appended by every command that changes the cluster's state by hand."""

from __future__ import annotations

import json
import os


def append(path: str, entry: dict[str, object]) -> str:
    """Append ``entry``; return what went wrong ('' when it was written)."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
        try:
            os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:
        return f"the audit log {path} could not be written: {exc.strerror}"
    return ""


def read(path: str) -> list[dict[str, object]]:
    """Entries of the audit log, oldest first (unparseable lines skipped)."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    out.append(entry)
    except OSError:
        pass
    return out
