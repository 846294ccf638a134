"""Host-local files that hold a secret: read only when nobody else could have read or changed them.

A private file is a regular file (never a link, FIFO or device: opened with
O_NOFOLLOW | O_NONBLOCK), owned by root or by this user, with no permission
for group or others, and small. Writes are atomic (a new 0600 file renamed
into place), so a reader sees the old secret or the new one, never half.
"""

from __future__ import annotations

import contextlib
import os
import stat

from hectl.errors import ConfigError


def read(path: str, what: str, limit: int = 16384) -> bytes | None:
    """The content of private file ``path`` (``None`` when it does not exist); ``ConfigError`` when it is unsafe."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what} {path}: not a regular file")
        if st.st_uid not in (0, os.geteuid()):
            raise ConfigError(f"{what} {path}: owned by uid {st.st_uid}, not root")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise ConfigError(f"{what} {path}: mode {mode:04o} lets others read it", hint=f"chmod 600 {path}")
        data = os.read(fd, limit + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ConfigError(f"{what} {path}: larger than {limit} bytes")
    return data


def write(path: str, data: bytes, what: str) -> None:
    """Atomically make ``path`` a private file (0600) holding ``data``; ``ConfigError`` when it cannot."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ConfigError(f"cannot write {what} {path}: {exc.strerror}") from None
