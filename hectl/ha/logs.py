"""The log lines of ``hectl ha run`` on stderr: escaped, with syslog priorities when stderr is the journal.

Messages carry text read from shared storage (hostnames, the engine VM spec);
raw, a newline would forge a log line (journald splits on it) and an escape
sequence would drive the terminal of whoever reads the log: every message is
escaped (``hectl.text``).

systemd connects a service's stderr to journald and names that stream in
``$JOURNAL_STREAM`` ("DEVICE:INODE"). When it is stderr, every line starts
with ``<N>``, its syslog priority (the sd-daemon(3) convention: journald strips
the prefix and files the line at that priority); otherwise lines start with the
level name, for a terminal or a log file.
"""

from __future__ import annotations

import logging

from hectl.output import is_journal
from hectl.text import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

# (lowest logging level, syslog priority), highest first: crit, err, warning, info; below: debug (7)
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def priority(level: int) -> int:
    return next((p for lowest, p in PRIORITIES if level >= lowest), 7)


class LogFormatter(logging.Formatter):
    """The agent's log lines with every message escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)


class JournalFormatter(LogFormatter):
    """Escaped, and every line of a record (a traceback's too) prefixed with its syslog priority."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def log_to(stream: TextIO, level: int, environ: Mapping[str, str]) -> None:
    """Send the agent's log (the root logger) to ``stream``."""
    handler = logging.StreamHandler(stream)
    if is_journal(stream, environ):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(LogFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
