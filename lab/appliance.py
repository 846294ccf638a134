"""A tiny bootable "engine appliance" built from Debian packages: kernel + busybox initramfs.

The guest (files in ``lab/appliance/``) loads virtio-net/button/evdev, configures eth0 (``hectl.ip=ADDR/PREFIX``
[``hectl.gw=ADDR``] on the kernel command line, otherwise DHCP with a static 10.0.2.15/24 fallback), serves the
engine health page on port 80 (``hectl.health=down`` makes it say ``DB Down!``), powers off on an ACPI power-button
press and keeps a root shell on the serial console.

The packages are only downloaded (``apt-get download``) and extracted, never installed. Results are cached per
kernel version, busybox version and guest-file hash; concurrent builders serialise on a lock file and publish
with a rename, so a cache entry is either complete or absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GUEST = Path(__file__).with_name("appliance")
CMDLINE = "console=ttyS0 panic=-1"
HEALTH_BODY = "DB Up!Welcome to Health Status!"
# guest file (in lab/appliance/) -> (path in the initramfs, mode)
GUEST_FILES = {
    "init": ("init", 0o755),
    "inittab": ("etc/inittab", 0o644),
    "rcS": ("etc/init.d/rcS", 0o755),
    "rcK": ("etc/init.d/rcK", 0o755),
    "power-button": ("etc/acpi/PWRF/00000080", 0o755),  # busybox acpid's action name for evdev KEY_POWER
    "udhcpc.script": ("usr/share/udhcpc/default.script", 0o755),
}
# modules the guest needs; their dependencies are resolved from the .ko files
MODULES = ("virtio_pci", "virtio_net", "button", "evdev")
DIRS = ("dev", "proc", "sys", "tmp", "run", "root", "var/log", "lib/modules", "www")


@dataclasses.dataclass(frozen=True)
class Appliance:
    kernel: Path
    initrd: Path
    cmdline: str
    build_seconds: float  # 0 when served from the cache


def default_cache_dir() -> Path:
    return Path(os.environ.get("HECTL_APPLIANCE_CACHE") or "/var/tmp/hectl-appliance")


def missing() -> str:
    """Why the appliance cannot be built here ('' when it can)."""
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not glob.glob("/var/lib/apt/lists/*_Packages*"):
        return "no apt package lists (run apt-get update)"
    return ""


def _run(argv: list[str], cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def packages() -> tuple[str, str, str]:
    """(kernel image package that linux-image-amd64 depends on, its version, busybox-static version), as apt
    would download them (one apt-cache call: without a pkgcache.bin each costs ~0.6 s)."""
    out = _run(["apt-cache", "show", "--no-all-versions", "linux-image-amd64", "busybox-static"]).stdout
    kernel = re.search(r"^Depends:.*?\b(linux-image-\d\S*) \(= ([^)\s]+)\)", out, re.M)
    busybox = re.search(r"^Package: busybox-static\n(?:.+\n)*?Version: (\S+)", out, re.M)
    if not kernel or not busybox:
        raise RuntimeError(f"cannot resolve linux-image-amd64's kernel package or busybox-static (apt-get update?): {out[:500]}")
    return kernel.group(1), kernel.group(2), busybox.group(1)


def guest_digest(guest_dir: Path = GUEST) -> str:
    """sha256 over the guest files (names, initramfs paths, modes, contents) and the module list."""
    digest = hashlib.sha256(repr((sorted(GUEST_FILES.items()), MODULES)).encode())
    for name in sorted(GUEST_FILES):
        digest.update(name.encode() + b"\0" + (guest_dir / name).read_bytes() + b"\0")
    return digest.hexdigest()


def cache_key(kernel: str, busybox: str, guest_sha: str) -> str:
    """Cache entry name for a kernel package version, busybox version and guest-file hash."""
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", f"{kernel}-busybox{busybox}-{guest_sha[:16]}")


def build(cache_dir: Path | None = None) -> Appliance:
    """The appliance for the current Debian packages and guest files, built unless already cached."""
    cache = cache_dir or default_cache_dir()
    kpkg, kver, bbver = packages()
    entry = cache / cache_key(f"{kpkg}_{kver}", bbver, guest_digest())
    if not _complete(entry):
        if not cache.exists():
            cache.mkdir(parents=True)
            cache.chmod(0o755)  # QEMU (user libvirt-qemu) reads the kernel and initrd from here
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _complete(entry):
                for stale in cache.glob(".build-*"):  # left by a killed builder (we hold the lock)
                    shutil.rmtree(stale, ignore_errors=True)
                start = time.monotonic()
                _build(cache, entry, _download(cache / "debs", kpkg, kver), _download(cache / "debs", "busybox-static", bbver))
                return _appliance(entry, time.monotonic() - start)
    return _appliance(entry, 0.0)


def _appliance(entry: Path, seconds: float) -> Appliance:
    return Appliance(entry / "vmlinuz", entry / "initrd.img", CMDLINE, round(seconds, 3))


def _complete(entry: Path) -> bool:
    return (entry / "vmlinuz").is_file() and (entry / "initrd.img").is_file()


def _download(debs: Path, package: str, version: str) -> Path:
    """The package's .deb in ``debs``, downloaded unless there; older versions of it are dropped."""
    debs.mkdir(exist_ok=True)
    wanted = f"{package}_{version.replace(':', '%3a')}_"
    for old in debs.glob(f"{package}_*.deb"):
        if old.name.startswith(wanted):
            return old
        old.unlink()
    with tempfile.TemporaryDirectory(dir=debs) as tmp:
        _run(["apt-get", "download", f"{package}={version}"], cwd=tmp)
        (deb,) = Path(tmp).glob("*.deb")
        return deb.rename(debs / deb.name)


def _build(cache: Path, entry: Path, kernel_deb: Path, busybox_deb: Path) -> None:
    with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
        work = Path(tmp)
        kernel_root, bb_root, root, out = work / "kernel", work / "busybox", work / "root", work / "out"
        _run(["dpkg-deb", "-x", str(kernel_deb), str(kernel_root)])
        _run(["dpkg-deb", "-x", str(busybox_deb), str(bb_root)])
        (vmlinuz,) = (kernel_root / "boot").glob("vmlinuz-*")
        release = vmlinuz.name.removeprefix("vmlinuz-")
        busybox = bb_root / "bin" / "busybox"
        _make_root(root, busybox, kernel_root / "lib" / "modules" / release / "kernel")
        out.mkdir()
        shutil.copyfile(vmlinuz, out / "vmlinuz")
        (out / "initrd.img").write_bytes(gzip.compress(_cpio(root, busybox), compresslevel=6, mtime=0))
        for path in (out / "vmlinuz", out / "initrd.img"):
            path.chmod(0o644)
        out.chmod(0o755)
        out.rename(entry)


def _make_root(root: Path, busybox: Path, modules_dir: Path) -> None:
    for sub in ("bin", *DIRS):
        (root / sub).mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in _run([str(busybox), "--list"]).stdout.split():
        if not (root / "bin" / applet).exists():
            (root / "bin" / applet).symlink_to("busybox")
    for name, (target, mode) in GUEST_FILES.items():
        dest = root / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GUEST / name, dest)
        dest.chmod(mode)
    order = module_order(modules_dir, MODULES)
    for name, path in order.items():
        shutil.copyfile(path, root / "lib" / "modules" / f"{name}.ko")
    (root / "etc" / "modules").write_text("".join(f"{name}\n" for name in order))


def _cpio(root: Path, busybox: Path) -> bytes:
    """A newc archive of ``root`` written by the extracted busybox (the host has no cpio)."""
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        names.extend(os.path.normpath(os.path.join(rel, n)) for n in sorted(dirnames + filenames))
    proc = subprocess.run(
        [str(busybox), "cpio", "-o", "-H", "newc"], input="\n".join(names).encode() + b"\n", cwd=root, capture_output=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"busybox cpio failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def modinfo(ko: bytes) -> dict[str, str]:
    """The ``key=value`` strings of a kernel module's ``.modinfo`` section (ELF64 little endian)."""
    if ko[:6] != b"\x7fELF\x02\x01":
        raise ValueError("not an ELF64 little-endian file")
    (shoff,) = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", ko, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    for name, _type, _flags, _addr, offset, size in headers:
        if ko[names_at + name : ko.index(b"\0", names_at + name)] == b".modinfo":
            info: dict[str, str] = {}
            for item in ko[offset : offset + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, value)
            return info
    raise ValueError("no .modinfo section")


def module_order(modules_dir: Path, wanted: tuple[str, ...]) -> dict[str, Path]:
    """``wanted`` and their dependencies (``depends=`` in .modinfo), dependencies first, as name -> .ko path."""
    index = {ko.stem.replace("-", "_"): ko for ko in modules_dir.rglob("*.ko")}
    order: dict[str, Path] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in chain:
            raise RuntimeError(f"module dependency cycle: {' -> '.join((*chain, name))}")
        if name not in index:
            raise RuntimeError(f"module {name} not found under {modules_dir} (built in? then drop it from MODULES)")
        for dep in filter(None, modinfo(index[name].read_bytes()).get("depends", "").split(",")):
            visit(dep, (*chain, name))
        order[name] = index[name]

    for name in wanted:
        visit(name, ())
    return order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.appliance", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help=f"cache directory (default: {default_cache_dir()})")
    args = parser.parse_args(argv)
    appliance = build(args.cache)
    print(json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(appliance).items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
