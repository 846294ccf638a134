"""One host's real engine stack for integration tests: sanlock daemons, a private libvirtd, a localfs domain, the appliance.

Host 1 is "this host" (its sanlock daemon is the one libvirtd's lock driver
uses); host 2 is a second sanlock daemon on the same lockspace, standing in
for another host that can hold the engine lease.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from hectl.context import AppContext
from hectl.storage.backend import DomainPaths
from hectl.storage.domain import init_domain
from lab import appliance as lab_appliance
from lab import libvirtd as lab_libvirtd
from lab import sanlock as lab_sanlock
from tests.conftest import HECTL, write_config

IO_TIMEOUT = 2


def missing() -> str:
    return lab_sanlock.missing() or lab_libvirtd.missing() or lab_appliance.missing()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VMLab:
    """Everything one test module needs; ``close()`` stops it all."""

    def __init__(self) -> None:
        self.base = lab_sanlock.shared_dir("hectl-vm-")
        self.daemons = [lab_sanlock.Daemon(self.base / f"sanlock{i}", lab_sanlock.build_shim(self.base)) for i in (1, 2)]
        self.libvirtd = lab_libvirtd.Libvirtd(sanlock_run_dir=self.base / "sanlock1")
        self.port = free_port()
        self.vm_name = f"hectl-test-{uuid.uuid4().hex[:8]}"  # cgroup paths are shared by concurrent libvirtds
        self.root = self.base / "domain"
        self.appliance = lab_appliance.build()
        self.timings: dict[str, float] = {"appliance_build_s": self.appliance.build_seconds}
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, ha_config: str = "", join: tuple[int, ...] = (1, 2)) -> None:
        """Start it all; ``join``: the host ids whose sanlock daemons join the lockspace here (else the agent does)."""
        for d in self.daemons:
            d.start()
        t0 = time.monotonic()
        self.libvirtd.start()
        self.timings["libvirtd_start_s"] = time.monotonic() - t0
        self.root.mkdir(mode=0o755)
        self.config = write_config(
            self.base / "hectl.conf", self.root, self.base / "state", 1, host_config(self.libvirtd.uri, self.port, ha_config)
        )
        install_engine(self.root, self.config, self.daemons[0], self.appliance, self.port, self.vm_name)
        joins = [threading.Thread(target=self.join, args=(i, self.daemons[i - 1])) for i in join]
        for t in joins:
            t.start()
        for t in joins:
            t.join()

    @property
    def paths(self) -> DomainPaths:
        return DomainPaths.under(str(self.root))

    def join(self, host_id: int, daemon: lab_sanlock.Daemon) -> None:
        res = daemon.client("add_lockspace", "-o", str(IO_TIMEOUT), "-s", f"hectl:{host_id}:{self.paths.lockspace}:0")
        assert res.returncode == 0 and "done 0" in res.stdout, res.stdout + res.stderr

    @property
    def env(self) -> dict[str, str]:
        return hectl_env(self.config, self.daemons[0])

    def hectl(self, *args: str, input: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HECTL, *args], env=self.env, capture_output=True, text=True, timeout=timeout, input=input)

    def spawn(self, *args: str, log: Path) -> subprocess.Popen[str]:
        out = open(log, "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([HECTL, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def lease_line(self) -> str:
        """sanlock's resource line for the engine lease on host 1's daemon ('' when not held)."""
        out = self.daemons[0].client("status").stdout
        return next((line for line in out.splitlines() if line.startswith("r hectl:engine:")), "")

    def console_log(self) -> str:
        path = self.base / "state" / "engine-console.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        self.libvirtd.stop()
        for d in self.daemons:
            d.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def host_config(uri: str, port: int, ha_config: str = "", start_timeout: float = 60) -> str:
    """The config sections of a lab host: its libvirtd, TCG, the appliance's health page on ``port``, short timers."""
    return (
        f"[ha]\nio_timeout = {IO_TIMEOUT}\n{ha_config}"
        f"[vm]\nuri = {uri}\naccelerator = tcg\nstart_timeout = {start_timeout:g}\n"
        f"[engine]\nhealth_url = http://127.0.0.1:{port}/ovirt-engine/services/health\nhealth_timeout = 2\n"
        "[timeouts]\nliveness_window = 8\nagent_silent_after = 8\n"
    )


def hectl_env(config: Path, daemon: lab_sanlock.Daemon) -> dict[str, str]:
    """hectl's environment on a lab host: its config and its sanlock daemon."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HECTL_")}
    return dict(env, HECTL_CONFIG=str(config), **daemon.env)


def install_engine(
    root: Path, config: Path, daemon: lab_sanlock.Daemon, appliance: lab_appliance.Appliance, port: int, name: str
) -> None:
    """A fresh domain at ``root`` with its leases, the appliance in images/ and the engine VM defined on it."""
    root.chmod(0o755)  # QEMU (libvirt-qemu) and sanlock must reach it
    app = AppContext(config_path=str(config), environ={})
    init_domain(app.backend(), app.clock, 5.0)
    lab_sanlock.initialize_domain_leases(root, daemon, IO_TIMEOUT)
    for src, image in ((appliance.kernel, "vmlinuz"), (appliance.initrd, "initrd.img")):
        shutil.copyfile(src, root / "images" / image)
        (root / "images" / image).chmod(0o644)
    res = subprocess.run(
        [HECTL, "vm-config", "set", f"name={name}", "memory_mib=256", "vcpus=1", "kernel=vmlinuz", "initrd=initrd.img",
         f"cmdline={appliance.cmdline}", f"host_port={port}"],
        env=hectl_env(config, daemon), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr


@contextlib.contextmanager
def running(ha_config: str = "", join: tuple[int, ...] = (1, 2)) -> Iterator[VMLab]:
    """A started ``VMLab`` (skipped with the reason when this machine cannot run one), closed afterwards."""
    import pytest

    reason = missing()
    if reason:
        pytest.skip(reason)
    lab = VMLab()
    try:
        lab.start(ha_config, join)
        yield lab
    finally:
        lab.close()


def wait_until(predicate, timeout: float, what: str, every: float = 0.25):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something true; the seconds it took and that value."""
    start = time.monotonic()
    while True:
        value = predicate()
        if value:
            return time.monotonic() - start, value
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        time.sleep(every)


class Host:
    """One simulated hypervisor host: a network namespace, a sanlock daemon, a libvirtd, a config, an agent."""

    def __init__(self, host_id: int, base: Path, shim: Path) -> None:
        self.id = host_id
        self.netns = f"hectl-h{host_id}-{uuid.uuid4().hex[:6]}"
        self.daemon = lab_sanlock.Daemon(base / f"sanlock{host_id}", shim)
        self.libvirtd = lab_libvirtd.Libvirtd(sanlock_run_dir=self.daemon.run_dir, netns=self.netns)
        self.config = base / f"hectl-{host_id}.conf"
        self.log = base / f"agent{host_id}.log"
        self.agent: subprocess.Popen[str] | None = None

    def start(self) -> None:
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"], check=True)
        self.daemon.start()
        self.libvirtd.start()

    @property
    def env(self) -> dict[str, str]:
        return hectl_env(self.config, self.daemon)

    def hectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """hectl on this host (in its network namespace: the engine's port forward is there)."""
        argv = ["ip", "netns", "exec", self.netns, HECTL, *args]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)

    def start_agent(self) -> None:
        out = open(self.log, "w")  # noqa: SIM115 - closed with the process
        argv = ["ip", "netns", "exec", self.netns, HECTL, "ha", "run"]
        self.agent = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True)

    def close(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.kill()
        if self.agent is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.agent.wait(10)
        self.libvirtd.stop()
        self.daemon.stop()
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
