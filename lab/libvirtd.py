"""A private virtlogd + libvirtd for tests and the demo, without touching the real /etc/libvirt or /run/libvirt.

Both daemons run in a mount namespace of their own (``unshare -m --propagation private``) in which per-instance
directories are bind-mounted over /etc/libvirt (a copy with ``lock_manager = "sanlock"`` and no default network),
/run/libvirt, /var/lib/libvirt and /var/log/libvirt. /var/cache/libvirt is a persistent directory, so libvirtd's
~8 s QEMU capabilities probe happens once per machine; libvirtd is pinned to CPU 0 because this machine's CPUs
report different CPUID data and the cache is discarded when libvirtd probes from another CPU. Without udev,
/dev/kvm is root-only, which also invalidates the cache on every start; the namespace then gets a root:kvm 0660
copy of the device node (what udev would have set). Guests should still use TCG here (``<domain type='qemu'>``).
The mount points are created on the host if missing (empty directories, left in place: removing a directory
that another instance's namespace mounts over would detach that mount).

libvirt's sanlock lock driver talks to the sanlock daemon whose run dir is passed as SANLOCK_RUN_DIR in
libvirtd's environment (libsanlock reads it on every connect; QEMU is registered from libvirtd's forked child
before exec, so it inherits the variable too).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import glob
import grp
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn

from lab import sanlock as lab_sanlock

if TYPE_CHECKING:
    import libvirt

CACHE_DIR = Path(os.environ.get("HECTL_LIBVIRT_CACHE") or "/var/tmp/hectl-lab/libvirt-cache")
LOCK_DRIVER = Path("/usr/lib/x86_64-linux-gnu/libvirt/lock-driver/sanlock.so")
# private directory (under the instance's base dir) -> where it is bind-mounted inside the namespace
MOUNTS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt", "log": "/var/log/libvirt"}
START_SCRIPT = """\
set -e
base=$1; cache=$2; kvm=$3; shift 3
mount --bind "$base/etc" /etc/libvirt
mount --bind "$base/run" /run/libvirt
mount --bind "$base/lib" /var/lib/libvirt
mount --bind "$base/log" /var/log/libvirt
mount --bind "$cache" /var/cache/libvirt
[ -z "$kvm" ] || mount --bind "$kvm" /dev/kvm
/usr/sbin/virtlogd -d -p "$base/virtlogd.pid"
exec taskset -c 0 /usr/sbin/libvirtd -d -f /etc/libvirt/libvirtd.conf -p "$base/libvirtd.pid" "$@"
"""


def missing() -> str:
    """Why a private libvirtd (with the sanlock lock driver) cannot run here ('' when it can)."""
    if os.geteuid() != 0:
        return "libvirtd needs root"
    for tool in ("/usr/sbin/libvirtd", "/usr/sbin/virtlogd", "/usr/bin/qemu-system-x86_64"):
        if not os.access(tool, os.X_OK):
            return f"{tool} is not installed"
    for tool in ("unshare", "taskset"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not LOCK_DRIVER.exists():
        return f"libvirt's sanlock lock driver is not installed ({LOCK_DRIVER}: libvirt-sanlock)"
    try:
        import libvirt  # noqa: F401
    except ImportError as exc:
        return f"libvirt Python binding not importable: {exc}"
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        return "cannot create mount namespaces (unshare -m)"
    return lab_sanlock.missing()


def open_connection(uri: str) -> libvirt.virConnect:
    """``libvirt.open(uri)`` with libvirt's default error printer (stderr) silenced."""
    import libvirt

    libvirt.registerErrorHandler(lambda *_: None, None)
    return libvirt.open(uri)


class Libvirtd:
    """One private virtlogd + libvirtd pair; ``sanlock_run_dir`` selects the sanlock daemon of its lock driver."""

    def __init__(
        self, sanlock_run_dir: Path | None = None, cache_dir: Path = CACHE_DIR, netns: str = "", listen: str = ""
    ) -> None:
        self.sanlock_run_dir = sanlock_run_dir
        self.netns = netns  # run in this network namespace (its guests' port forwards bind there)
        self.listen = listen  # also serve qemu+tcp:// there (no authentication: a lab namespace only), for migrations
        self.tls_dir: Path | None = None  # with ``listen``: also qemu+tls:// and TLS migration streams (lab/pki.py)
        self.cache_dir = cache_dir
        self.base: Path | None = None

    @property
    def run_dir(self) -> Path:
        """The private /run/libvirt (sockets, ``qemu/<domain>.pid``)."""
        return self._base / "run"

    @property
    def log_file(self) -> Path:
        return self._base / "libvirtd.log"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.run_dir}/libvirt-sock"

    @property
    def _base(self) -> Path:
        if self.base is None:
            raise RuntimeError("libvirtd is not started")
        return self.base

    def connect(self) -> libvirt.virConnect:
        return open_connection(self.uri)

    def domains(self) -> list[str]:
        """The names of the running domains."""
        conn = self.connect()
        try:
            return [d.name() for d in conn.listAllDomains() if d.isActive()]
        finally:
            conn.close()

    def start(self, timeout: float = 90.0) -> None:
        """Start virtlogd and libvirtd; return once libvirt answers (the first start on a machine probes QEMU, ~8 s).

        Started again after its processes were killed (a host's power loss), it keeps its configuration, defined
        domains and logs, and so its URI, and starts with an empty /run/libvirt, as a rebooted host does."""
        if self.base is None:
            self.base = lab_sanlock.shared_dir("hectl-libvirtd-")
            self._write_config(self.base)
        else:
            shutil.rmtree(self.base / "run")
            (self.base / "run").mkdir(mode=0o755)
        base = self.base
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for target in (*MOUNTS.values(), "/var/cache/libvirt"):
            os.makedirs(target, exist_ok=True)  # mount points; only mounted over inside the namespace
        kvm = _kvm_node(base)
        env = dict(os.environ)
        if self.sanlock_run_dir is not None:
            env["SANLOCK_RUN_DIR"] = str(self.sanlock_run_dir)
        # slave: mounts made later in a shared mount of the host (a storage domain mounted by deploy) appear
        # in libvirtd's namespace too; its own bind mounts never leak out
        argv = ["unshare", "-m", "--propagation", "slave", "sh", "-c", START_SCRIPT, "sh", str(base), str(self.cache_dir), kvm]
        if self.listen:
            argv.append("--listen")
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        with open(base / "start.log", "w") as out:  # not a pipe: the daemons would inherit it
            proc = subprocess.run(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=60,
            )
        if proc.returncode != 0:
            self._fail(f"libvirtd start script failed ({proc.returncode})")
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                conn = self.connect()
                try:
                    conn.getVersion()
                    return
                finally:
                    conn.close()
            pid = self._pid("libvirtd")
            if pid and not lab_sanlock.alive(pid):
                self._fail("libvirtd exited")
            if time.monotonic() > deadline:
                self._fail(f"libvirtd did not answer within {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Destroy remaining domains, stop libvirtd and virtlogd, remove the instance's files and empty cgroups."""
        if self.base is None:
            return
        with contextlib.suppress(Exception):
            conn = self.connect()
            try:  # in parallel: each destroy waits ~2 s for QEMU to be reaped (PID 1 reaps lazily here)
                with concurrent.futures.ThreadPoolExecutor(4) as pool:
                    list(pool.map(_destroy, conn.listAllDomains(0)))
            finally:
                conn.close()
        leftovers = [self._pid_at(Path(p)) for p in glob.glob(str(self.run_dir / "qemu" / "*.pid"))]
        for name in ("libvirtd", "virtlogd"):
            _terminate(self._pid(name))
        for pid in leftovers:
            _terminate(pid)
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None
        for machine in glob.glob("/sys/fs/cgroup/*/machine"):
            with contextlib.suppress(OSError):
                os.rmdir(machine)  # only succeeds when empty: another instance's guests keep theirs

    def __enter__(self) -> Libvirtd:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _write_config(self, base: Path) -> None:
        for sub in MOUNTS:
            (base / sub).mkdir(mode=0o755)
        etc = base / "etc"
        shutil.copytree("/etc/libvirt", etc, symlinks=True, dirs_exist_ok=True)
        for net in (etc / "qemu" / "networks").glob("**/*.xml"):
            net.unlink()  # no default network: libvirtd would create virbr0 and run dnsmasq
        (etc / "libvirtd.conf").write_text(
            'unix_sock_group = "root"\nunix_sock_ro_perms = "0777"\nunix_sock_rw_perms = "0770"\n'
            'auth_unix_ro = "none"\nauth_unix_rw = "none"\n'
            f'log_outputs = "3:file:{base}/libvirtd.log"\n'
            + (f'listen_tcp = 1\nlisten_addr = "{self.listen}"\nauth_tcp = "none"\n' if self.listen else "")
            + (f"listen_tls = {int(bool(self.listen and self.tls_dir))}\n")
            + (
                f'key_file = "{self.tls_dir}/serverkey.pem"\ncert_file = "{self.tls_dir}/servercert.pem"\n'
                f'ca_file = "{self.tls_dir}/cacert.pem"\nauth_tls = "none"\n'
                if self.listen and self.tls_dir
                else ""
            )
        )
        tls = f'migrate_tls_x509_cert_dir = "{self.tls_dir}"\nmigrate_tls_x509_verify = 1\n' if self.tls_dir else ""
        (etc / "qemu.conf").write_text('lock_manager = "sanlock"\n' + tls)
        (etc / "qemu-sanlock.conf").write_text("auto_disk_leases = 0\nrequire_lease_for_disks = 0\n")

    @property
    def pid(self) -> int:
        """The libvirtd process (0 when it does not run)."""
        return self._pid("libvirtd")

    def _pid(self, name: str) -> int:
        return self._pid_at(self._base / f"{name}.pid")

    @staticmethod
    def _pid_at(path: Path) -> int:
        try:
            return int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def _fail(self, what: str) -> NoReturn:
        tail = "\n".join(_tail(self._base / name) for name in ("start.log", "libvirtd.log"))
        self.stop()
        raise RuntimeError(f"{what}; log tail:\n{tail}")


def _destroy(dom: libvirt.virDomain) -> None:
    with contextlib.suppress(Exception):
        if dom.isActive():
            dom.destroy()


def _kvm_node(base: Path) -> str:
    """A root:kvm 0660 copy of /dev/kvm for the namespace when the real one lacks udev's permissions ('' if fine).

    Without udev /dev/kvm is root-only; libvirtd then finds KVM "not usable" by the QEMU user but its capability
    probe (run with more rights) sees KVM, so it discards the cached capabilities on every start (~8 s probe).
    """
    try:
        real = os.stat("/dev/kvm")
        kvm_gid = grp.getgrnam("kvm").gr_gid
    except (OSError, KeyError):
        return ""
    if real.st_gid == kvm_gid and real.st_mode & 0o060 == 0o060:
        return ""
    node = base / "kvm"
    node.unlink(missing_ok=True)  # from the start before a power loss
    os.mknod(node, stat.S_IFCHR | 0o660, real.st_rdev)
    os.chown(node, 0, kvm_gid)
    node.chmod(0o660)
    return str(node)


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(f"{path.name}: {line}" for line in path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if ``pid`` still runs after ``timeout``."""
    if pid <= 0 or not lab_sanlock.alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not lab_sanlock.wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        lab_sanlock.wait_gone(pid, 5)
