"""Exit codes and the one error hierarchy they are mapped from.

Exit codes are public API: scripts depend on them. The table is rendered into
``hectl --help`` and the README from ``EXIT_CODE_HELP``; tests assert each one.
"""

from __future__ import annotations

import contextlib
import enum

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Iterator


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    CONFIG = 3
    STORAGE = 4
    LOCKED = 5
    VM_STATE = 6
    TIMEOUT = 7
    NOT_AVAILABLE = 8
    INTERNAL = 70
    HANGUP = 129
    INTERRUPTED = 130
    TERMINATED = 143


EXIT_CODE_HELP: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.FAILED: "operation failed, or the checked thing is unhealthy",
    ExitCode.USAGE: "bad command-line usage",
    ExitCode.CONFIG: "not deployed, or bad configuration",
    ExitCode.STORAGE: "shared storage unreachable, corrupt beyond use, or timed out",
    ExitCode.LOCKED: "lease or lock held elsewhere",
    ExitCode.VM_STATE: "the engine VM is in the wrong state for this",
    ExitCode.TIMEOUT: "timed out waiting (--wait)",
    ExitCode.NOT_AVAILABLE: "capability not available in this version",
    ExitCode.INTERNAL: "internal error (a bug: rerun with -v and report it)",
    ExitCode.HANGUP: "interrupted by SIGHUP (128 + 1) while changing shared storage",
    ExitCode.INTERRUPTED: "interrupted (SIGINT)",
    ExitCode.TERMINATED: "interrupted by SIGTERM (128 + 15) while changing shared storage",
}
NAGIOS_HELP = (
    "vm-status --check and check-liveliness --nagios use Nagios codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. "
    "storage check has its own: 0 all good, 1 warnings, 2 failures, 4 storage unreachable (3 bad configuration)."
)


class HectlError(Exception):
    """Base of every error hectl reports to the user; carries its exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class OperationFailed(HectlError):
    exit_code = ExitCode.FAILED


class UsageError(HectlError):
    """A command was given too little or contradicting input (what click cannot see by itself)."""

    exit_code = ExitCode.USAGE


class ConfigError(HectlError):
    """Missing or invalid configuration, or the domain is not deployed."""

    exit_code = ExitCode.CONFIG


class NotDeployed(ConfigError):
    pass


class SharedConfigError(ConfigError):
    """The cluster configuration on the domain is the problem (a bad value, or keys that conflict), not this host's file."""


class StorageError(HectlError):
    """Shared storage cannot be used; ``errno`` is set when the OS said why."""

    exit_code = ExitCode.STORAGE

    def __init__(self, message: str, *, hint: str | None = None, errno: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.errno = errno


class StorageTimeout(StorageError):
    """A storage operation did not finish within its hard deadline."""


class LockHeld(HectlError):
    exit_code = ExitCode.LOCKED


class VMStateError(HectlError):
    exit_code = ExitCode.VM_STATE


class WaitTimeout(HectlError):
    exit_code = ExitCode.TIMEOUT


class NotAvailable(HectlError):
    """The command exists in the CLI contract but its capability is not built yet."""

    exit_code = ExitCode.NOT_AVAILABLE


class HypervisorError(HectlError):
    """libvirt cannot be reached, or refused an operation for a reason not covered by a more specific error."""

    exit_code = ExitCode.FAILED


class PluginError(HectlError):
    """A plugin is broken (bad registration, duplicate backend name)."""

    exit_code = ExitCode.CONFIG


class Interrupted(KeyboardInterrupt):
    """A signal stopped the command (exit 128 + ``signum``); ``write_started``: a storage write may still land."""

    def __init__(self, signum: int = 2, message: str = "", *, write_started: bool = False) -> None:
        super().__init__(message)
        self.signum = signum
        self.message = message
        self.write_started = write_started
        self.hint: str | None = None
        self.before = b""  # an interrupted update: the range as read before the write


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """While in force, SIGTERM and SIGHUP raise ``Interrupted`` (as SIGINT raises KeyboardInterrupt).

    For commands that change shared storage: they say what a signal left
    behind (and log it) instead of dying silently mid-write.
    """
    import signal

    def raise_interrupted(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    old = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
