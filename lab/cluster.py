"""A cluster of hectl hosts on one machine, built the way an admin builds one: ``hectl deploy`` on the first
host, ``hectl deploy --join`` on the others.

Each host is a network namespace on one L2 segment (lab/net.py, a /28 of TEST-NET-3; the host's address on a
bridge ``br0`` that its VMs join), with its own sanlock daemon, libvirtd (inside the namespace, with the
sanlock lock driver), configuration, state and ``hectl ha run``. The engine is the test appliance with a fixed
address on the segment (``hectl.ip=``), so its health page answers from every host, wherever it runs. The
shared storage is a local directory (localfs), with ``stallable`` one seen through a FUSE layer whose I/O can be
frozen (lab/stallfs.py: the storage stall fault); or (``storage="glusterfs"``) a replica-3 Gluster volume the
hosts serve themselves, as in the seeds: a glusterd in each host's network namespace with one brick each, and
each host's own FUSE client, in its network namespace (a cut link cuts its storage too) but in the machine's
mount namespace, under a shared mount, so that the host's hectl, agent and libvirtd all see it. ``close`` leaves
nothing: processes, mounts, namespaces, files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hectl.backends.glusterfs.backend import mounted
from lab import appliance as lab_appliance
from lab import bmc as lab_bmc
from lab import gluster as lab_gluster
from lab import libvirtd as lab_libvirtd
from lab import pki, reaper, stallfs
from lab import sanlock as lab_sanlock
from lab.net import Segment, workdir

REPO = Path(__file__).resolve().parent.parent
_SANLOCK_HOSTS = """
import sanlock
names = {sanlock.HOST_LIVE: "live", sanlock.HOST_FAIL: "fail", sanlock.HOST_DEAD: "dead", sanlock.HOST_FREE: "free"}
try:
    print(" ".join(f"{h['host_id']}:{names.get(h['flags'] & 15, 'unknown')}" for h in sanlock.get_hosts(b"hectl")))
except sanlock.SanlockException:
    pass
"""
HECTL = str(REPO / ".venv" / "bin" / "hectl")


def wait_for(predicate: Callable[[], object], limit: float, what: str, every: float = 0.2) -> float:
    """Seconds until ``predicate()`` is true; TimeoutError after ``limit``."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > limit:
            raise TimeoutError(f"{what}: not within {limit:g} s")
        time.sleep(every)
    return time.monotonic() - t0


def missing(stallable: bool = False, storage: str = "localfs", tls: bool = False, fencing: bool = False) -> str:
    found = lab_sanlock.missing() or lab_libvirtd.missing() or lab_appliance.missing() or (pki.missing() if tls else "")
    found = found or (lab_bmc.missing() if fencing else "")
    found = found or (lab_gluster.missing(pool=True) if storage == "glusterfs" else "")
    return found or ((stallfs.missing_requirements() or "") if stallable else "")


class Host:
    """One hypervisor host of the cluster."""

    def __init__(self, cluster: Cluster, n: int, shim: Path) -> None:
        self.cluster = cluster
        self.id = n
        self.netns = cluster.segment.netns(n)
        self.address = cluster.segment.address(n)
        self.daemon = lab_sanlock.Daemon(cluster.base / f"sanlock{n}", shim)
        self.libvirtd = lab_libvirtd.Libvirtd(sanlock_run_dir=self.daemon.run_dir, netns=self.netns, listen=self.address)
        self.config = cluster.base / f"hectl-{n}.conf"
        self.state = cluster.base / f"state{n}"
        self.log = cluster.base / f"agent{n}.log"
        self.agent: subprocess.Popen[str] | None = None
        self.up = False
        gluster = cluster.storage == "glusterfs"
        self.glusterd = lab_gluster.Glusterd(cluster.base / f"gluster{n}", self.netns, self.address) if gluster else None
        self.mount_base = cluster.base / f"mnt{n}"
        self.bmc: lab_bmc.BMC | None = None  # with fencing: its BMC, outside it

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HECTL_")}
        return dict(env, HECTL_CONFIG=str(self.config), **self.daemon.env)

    def start(self) -> None:
        """Power on: sanlock, glusterd (which starts its brick again), libvirtd, and the storage mounted again."""
        if self.bmc is not None:
            self.bmc.powered_on()
        self.daemon.start()
        if self.glusterd is not None:
            for pid in self.glusterd.service_pids():  # a brick killed by a power loss: gone from /proc first, or
                deadline = time.monotonic() + 20  # glusterd takes its zombie for a running brick
                while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                    time.sleep(0.05)
            self.glusterd.start()
        self.libvirtd.start()
        self.up = True
        if self.cluster.volume is not None:
            self.mount_volume()

    @property
    def volume_root(self) -> Path:
        """Where hectl's glusterfs backend finds the volume on this host (``<mount_base>/<server>:<volume>``)."""
        return self.mount_base / f"{self.cluster.hosts[0].address}:{self.cluster.VOLUME}"

    def mount_volume(self, timeout: float = 60) -> None:
        """The host's FUSE client of the volume, in its network namespace; a stale mount (its client killed by a
        power loss) is dropped first."""
        root = self.volume_root
        if mounted(str(root)):
            subprocess.run(["umount", "-l", str(root)], capture_output=True, timeout=30)
        root.mkdir(parents=True, exist_ok=True)
        servers = [f"--volfile-server={h.address}" for h in self.cluster.hosts]
        log = self.cluster.base / f"fuse{self.id}.log"
        argv = ["glusterfs", *servers, f"--volfile-id={self.cluster.VOLUME}", "--process-name", "fuse", f"--log-file={log}"]
        subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", *argv, str(root)], check=True, timeout=timeout)
        lab_gluster.wait_usable(root, timeout)

    def hectl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """hectl on this host: in its network namespace, with its configuration and sanlock daemon."""
        argv = ["ip", "netns", "exec", self.netns, HECTL, *args]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)

    def start_agent(self) -> None:
        out = open(self.log, "a")  # noqa: SIM115 - the child holds it
        argv = ["ip", "netns", "exec", self.netns, HECTL, "ha", "run"]
        self.agent = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True)

    def restart_agent(self) -> None:
        """The agent crashes (SIGKILL) and is started again."""
        if self.agent is not None:
            self.agent.kill()
            self.agent.wait(10)
        self.start_agent()

    def status(self) -> dict[str, Any]:
        res = self.hectl("vm-status", "--json", timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"vm-status on host {self.id}: {res.stderr.strip()}")
        return json.loads(res.stdout)  # type: ignore[no-any-return]

    def row(self) -> dict[str, Any]:
        """This host's own row of its vm-status."""
        return next(r for r in self.status()["hosts"] if r["host_id"] == self.id)

    def agent_state(self) -> str:
        """This host's agent state, as its own vm-status shows it."""
        return str(self.row()["state"])

    def engine_pids(self) -> list[int]:
        """QEMU processes of the engine VM on this host (running or paused)."""
        name = self.cluster.vm_name.encode()
        pids = []
        for pid in self.netns_pids():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if argv and b"qemu-system" in argv[0] and any(name in a for a in argv):
                    pids.append(pid)
        return pids

    def netns_pids(self) -> list[int]:
        res = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True, timeout=30)
        return [int(p) for p in res.stdout.split()]

    def lease_view(self) -> dict[int, str]:
        """This host's sanlock's word on every host id of the lockspace (live, fail, dead, free), asked through
        sanlock's own Python binding (the client CLI does not print the flags); empty while it is down."""
        if not self.up:
            return {}
        env = dict(os.environ, **self.daemon.env)
        res = subprocess.run([sys.executable, "-c", _SANLOCK_HOSTS], env=env, capture_output=True, text=True, timeout=30)
        return {int(i): state for i, _, state in (word.partition(":") for word in res.stdout.split())}

    def sees_dead(self, other: int) -> bool:
        """This host's sanlock holds ``other``'s host id dead (HOST_DEAD: its leases free to take)."""
        return self.lease_view().get(other) == "dead"

    def lease_held(self) -> bool:
        """sanlock on this host holds the engine lease (a resource line not still being acquired)."""
        if not self.up:
            return False
        out = self.daemon.client("status").stdout
        return any(line.startswith("r hectl:engine:") and " ADD" not in line for line in out.splitlines())

    def gateway(self, reachable: bool) -> None:
        """Gateway loss only: this host's route to the gateway (the segment's address here) blackholed, or back."""
        action = "del" if reachable else "add"
        subprocess.run(["ip", "-n", self.netns, "route", action, "blackhole", f"{self.cluster.segment.here}/32"],
                       check=True, capture_output=True, timeout=30)  # fmt: skip

    def cut(self, cut: bool) -> None:
        """Network cut of the host: its switch port (the switch side of its uplink) down, or up again."""
        port = f"{self.netns}h"
        sw = f"{self.cluster.segment.tag}sw"
        subprocess.run(
            ["ip", "-n", sw, "link", "set", port, "down" if cut else "up"], check=True, capture_output=True, timeout=30
        )

    def hang_engine(self, hung: bool = True) -> None:
        """The engine guest hangs: its QEMU is stopped (SIGSTOP), the process stays, the health page is silent;
        or it runs on (SIGCONT)."""
        for pid in self.engine_pids():
            os.kill(pid, signal.SIGSTOP if hung else signal.SIGCONT)

    def hang_libvirtd(self, hung: bool) -> None:
        """libvirtd hangs (SIGSTOP: its socket accepts, nothing answers) or runs on (SIGCONT)."""
        if self.libvirtd.pid:
            os.kill(self.libvirtd.pid, signal.SIGSTOP if hung else signal.SIGCONT)

    def power_loss(self) -> None:
        """Every process of the host SIGKILLed at once: agent, sanlock daemon, libvirtd, virtlogd, QEMU."""
        pids = self.netns_pids() + ([self.daemon.pid] if self.daemon.pid else [])
        if self.agent is not None:
            pids.append(self.agent.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.up = False
        if self.agent is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.agent.wait(10)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.hang_libvirtd(False)
        if self.glusterd is not None:
            subprocess.run(["umount", "-l", str(self.volume_root)], capture_output=True, timeout=30)
        if self.agent is not None and self.agent.poll() is None:
            self.agent.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.agent.wait(10)
        with contextlib.suppress(Exception):
            self.libvirtd.stop()
        self.daemon.stop()
        if self.glusterd is not None:
            self.glusterd.stop()
        for pid in self.netns_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class Cluster:
    """``n`` hosts; ``deploy()`` makes them a hectl cluster with the engine running on host 1."""

    VOLUME = "engine"

    def __init__(
        self,
        n: int = 3,
        io_timeout: int = 2,
        stallable: bool = False,
        storage: str = "localfs",
        tls: bool = False,
        fencing: float | None = None,
    ) -> None:
        if storage not in ("localfs", "glusterfs") or (stallable and storage != "localfs"):
            raise ValueError(f"storage {storage!r}, stallable {stallable}: localfs (stallable or not) or glusterfs")
        reaper.reap()  # what labs killed before their clean-up left behind
        self.base = workdir("hectl-cluster-")
        reaper.claim(self.base.name, dirs=[str(self.base)])
        self.io_timeout = io_timeout
        self.storage = storage
        self.volume: lab_gluster.Volume | None = None
        self.mount = stallfs.FuseMount(self.base / "backing", self.base / "mnt", self.base / "control") if stallable else None
        self.segment = Segment("hl", "203.0.113.")
        self.engine_ip = self.segment.address(10)
        self.vm_name = f"hectl-cl-{uuid.uuid4().hex[:8]}"
        self.root = (self.mount.mountpoint if self.mount else self.base) / "domain"
        shim = lab_sanlock.build_shim(self.base)
        self.hosts = [Host(self, i, shim) for i in range(1, n + 1)]
        self.tls = tls  # migrations over qemu+tls:// with TLS streams (a lab CA), else qemu+tcp://
        if tls:
            ca = pki.Authority(self.base / "pki")
            for h in self.hosts:
                h.libvirtd.tls_dir = ca.issue(f"host{h.id}.lab", h.address, self.base / f"pki{h.id}")
        self.timings: dict[str, float] = {}
        self.fencing = fencing  # [fencing] dead_after: each host gets a BMC (lab/bmc.py) and fencing is enabled
        self.bmc_ns = f"{self.segment.tag}bmc"
        self.bmcs: dict[int, lab_bmc.BMC] = {}
        if fencing is not None:
            if n > 3:
                raise ValueError("the lab's BMCs have addresses for 3 hosts")
            for h in self.hosts:
                pidfiles = (h.daemon.run_dir / "sanlock.pid",)  # the host's sanlock runs outside its namespace
                address = self.segment.address(10 + h.id)
                self.bmcs[h.id] = h.bmc = lab_bmc.BMC(self.base / f"bmc{h.id}", h.netns, self.bmc_ns, address, pidfiles=pidfiles)

    @property
    def health_url(self) -> str:
        return f"http://{self.engine_ip}/ovirt-engine/services/health"

    def start(self) -> None:
        t0 = time.monotonic()
        if self.mount is not None:
            self.mount.start()
            self.mount.mountpoint.chmod(0o755)
        if self.storage == "glusterfs":  # mounts made under it later reach the namespaces of libvirtd and hectl
            subprocess.run(["mount", "--bind", str(self.base), str(self.base)], check=True, timeout=30)
            subprocess.run(["mount", "--make-shared", str(self.base)], check=True, timeout=30)
        self.claim()
        names = {f"host{h.id}.lab": h.address for h in self.hosts} | {"engine.lab": self.engine_ip}
        self.segment.up(len(self.hosts), bridge=True, names=names)
        if self.bmcs:
            self.segment.attach(self.bmc_ns, [b.address for b in self.bmcs.values()])
            for b in self.bmcs.values():
                b.start()
        for h in self.hosts:
            h.start()
        self.claim()
        if self.storage == "glusterfs":
            t1 = time.monotonic()
            self.serve_volume()
            self.timings["volume_s"] = time.monotonic() - t1
        self.timings["hosts_start_s"] = time.monotonic() - t0

    def claim(self) -> None:
        """Record what this lab has made, for ``lab.reaper`` to free should this process die before ``close``."""
        names = [f"{self.segment.tag}sw", *(h.netns for h in self.hosts), *([self.bmc_ns] if self.bmcs else [])]
        dirs = [str(self.base), *(str(h.libvirtd.base) for h in self.hosts if h.libvirtd.base)]
        reaper.claim(self.base.name, dirs=dirs, netns=names, links=[f"{self.segment.tag}r"])

    def serve_volume(self) -> None:
        """The hosts' glusterds peered into one pool, the replica-3 volume (a brick on each), mounted on each."""
        glusterds = [h.glusterd for h in self.hosts if h.glusterd is not None]
        first = glusterds[0]
        for g in glusterds[1:]:
            first.cli("peer", "probe", g.host)
        deadline = time.monotonic() + 60
        while first.cli("pool", "list").stdout.count("Connected") < len(glusterds):
            if time.monotonic() > deadline:
                raise lab_gluster.GlusterError(f"the pool did not connect: {first.cli('pool', 'list').stdout}")
            time.sleep(0.2)
        volume = lab_gluster.Volume(first, self.VOLUME, glusterds)
        volume.create(virt=True, owner=(0, 0), ping_timeout=10)
        self.volume = volume
        for h in self.hosts:
            h.mount_volume()

    def deploy(self, ha: str = "loop = 2\nhistory = 6\nbad_health = 20\nstop = 10\n") -> None:
        """``hectl deploy`` on host 1 (engine running and healthy), ``--join`` on the others."""
        appliance = lab_appliance.build()
        disk = self.base / "engine-data.raw"
        disk.write_bytes(b"\0" * (1 << 20))
        if self.storage == "localfs":
            self.root.mkdir(mode=0o755)
        first = self.hosts[0]
        answers = self.base / "answers.ini"
        answers.write_text(
            f"[host]\nid = 1\nhostname = host1.lab\n[storage]\n{self.storage_section(first)}timeout = 5\n"
            f"[paths]\nstate_dir = {first.state}\ncluster_key = {self.key_file(first)}\n"
            f"[vm]\nuri = {first.libvirtd.uri}\naccelerator = tcg\nstart_timeout = 120\n"
            f"{self.migration_keys(first)}"
            f"[monitors]\nnetwork_test = ping\ngateway = {self.segment.here}\nprobes = 2\nprobe_timeout = 0.5\n"
            f"[engine]\nfqdn = engine.lab\nhealth_url = {self.health_url}\nhealth_timeout = 2\n"
            f"[ha]\nio_timeout = {self.io_timeout}\n{ha}[timeouts]\nliveness_window = 8\nagent_silent_after = 8\n"
            f"[engine_vm]\nname = {self.vm_name}\nmemory_mib = 256\nvcpus = 1\nnetwork = bridge\nbridge = br0\n"
            f"mac = 52:54:00:00:00:10\ngraphics = none\ncmdline = {appliance.cmdline} hectl.ip={self.engine_ip}/28\n"
            f"[appliance]\nimage = {disk}\nkernel = {appliance.kernel}\ninitrd = {appliance.initrd}\n"
            + (f"[fencing]\nsecrets_dir = {self.secrets_dir}\n" if self.bmcs else "")
        )
        if self.bmcs:
            self.secrets_dir.mkdir(mode=0o700)
            for i, b in self.bmcs.items():
                (self.secrets_dir / f"host{i}").touch(0o600)
                (self.secrets_dir / f"host{i}").write_text(b.secrets())
        t0 = time.monotonic()
        res = first.hectl("deploy", "--answers", str(answers), timeout=600)
        if res.returncode != 0:
            raise RuntimeError(f"deploy on host 1 failed: {res.stderr.strip()[-2000:]}")
        self.timings["deploy_s"] = time.monotonic() - t0
        for h in self.hosts[1:]:
            t0 = time.monotonic()
            res = h.hectl(
                "deploy", "--join", *self.storage_args(h), "--host-id", str(h.id),
                "--host-hostname", f"host{h.id}.lab", "--paths-state-dir", str(h.state), "--vm-uri", h.libvirtd.uri,
                "--paths-cluster-key", str(self.key_file(h)), "--cluster-key-file", str(self.key_file(first)),
                "--vm-accelerator", "tcg", "--vm-start-timeout", "120", *self.migration_args(h),
                "--monitors-network-test", "ping",
                "--monitors-gateway", self.segment.here, "--monitors-probes", "2", "--monitors-probe-timeout", "0.5",
                *(["--fencing-secrets-dir", str(self.secrets_dir)] if self.bmcs else []),
                timeout=600,
            )  # fmt: skip
            if res.returncode != 0:
                raise RuntimeError(f"deploy --join on host {h.id} failed: {res.stderr.strip()[-2000:]}")
            self.timings[f"join_{h.id}_s"] = time.monotonic() - t0
        if self.bmcs:
            devices = [f"fencing.host{i}={b.device()}" for i, b in self.bmcs.items()]
            keys = [f"fencing.dead_after={self.fencing:g}", "fencing.timeout=5", "fencing.enabled=yes"]
            res = first.hectl("cluster-config", "set", *devices, *keys)
            if res.returncode != 0:
                raise RuntimeError(f"enabling fencing failed: {res.stderr.strip()[-2000:]}")

    @property
    def secrets_dir(self) -> Path:
        return self.base / "fencing"

    def key_file(self, host: Host) -> Path:
        """``host``'s copy of the cluster key (the first host's deploy makes it, the others join with a copy)."""
        return self.base / f"cluster-{host.id}.key"

    def migration_keys(self, host: Host) -> str:
        """The [vm] migration keys of ``host``'s configuration."""
        if not self.tls:
            return "migration_transport = tcp\n"
        return f"migration_transport = tls\nmigration_pki_dir = {host.libvirtd.tls_dir}\n"

    def migration_args(self, host: Host) -> list[str]:
        """The same as ``deploy --join`` options."""
        if not self.tls:
            return ["--vm-migration-transport", "tcp"]
        return ["--vm-migration-transport", "tls", "--vm-migration-pki-dir", str(host.libvirtd.tls_dir)]

    def storage_section(self, host: Host) -> str:
        """The [storage] keys of ``host``'s configuration."""
        return "".join(f"{k} = {v}\n" for k, v in self.storage_keys(host).items())

    def storage_args(self, host: Host) -> list[str]:
        """The same as ``deploy --join`` options."""
        keys = self.storage_keys(host)
        return ["--storage-type", keys.pop("type"), *(a for k, v in keys.items() for a in ("--storage-option", f"{k}={v}"))]

    def storage_keys(self, host: Host) -> dict[str, str]:
        if self.storage == "localfs":
            return {"type": "localfs", "path": str(self.root)}
        others = " ".join(h.address for h in self.hosts[1:])
        connection = f"{self.hosts[0].address}:/{self.VOLUME}"
        return {"type": "glusterfs", "connection": connection, "backup_servers": others, "mount_base": str(host.mount_base)}

    def start_agents(self) -> None:
        for h in self.hosts:
            if h.up:
                h.start_agent()

    def engine_hosts(self) -> list[int]:
        """Hosts whose sanlock holds the engine lease (read from each host's daemon, not from hectl)."""
        return [h.id for h in self.hosts if h.lease_held()]

    def engine_on(self) -> Host | None:
        """The host whose sanlock holds the engine lease, when exactly one does."""
        holders = self.engine_hosts()
        return self.hosts[holders[0] - 1] if len(holders) == 1 else None

    def healthy(self, via: Host) -> bool:
        res = via.hectl("check-liveliness", "--url", self.health_url, "--timeout", "2", timeout=30)
        return res.returncode == 0

    def one_engine(self, via: Host) -> int:
        """The host the engine runs on when exactly one holds the lease and the health page answers, else 0."""
        holders = self.engine_hosts()
        return holders[0] if len(holders) == 1 and self.healthy(via) else 0

    def failover(self, dead: Host, limit: float, say: Callable[[float, str], None] = lambda t, s: None) -> dict[str, float]:
        """Power loss of ``dead`` and what follows, by phase, in seconds from the power loss: the survivors'
        vm-status shows it not live (``peers_see_stale``); a survivor's sanlock holds it dead, its leases free
        to take (``lease_free``); a QEMU of the engine starts on a
        survivor, paused while libvirt waits for the lease (``vm_started``); a survivor's sanlock holds the lease
        (``lease_taken``); the health page is green (``healthy``). ``say(t, text)`` hears each event as it
        happens, including every change of a survivor's agent state. TimeoutError after ``limit`` seconds."""
        survivors = [h for h in self.hosts if h.up and h is not dead]
        phases: dict[str, float] = {}
        states: dict[int, str] = {}

        def phase(name: str, t: float, text: str) -> None:
            if name not in phases:
                phases[name] = t
                say(t, text)

        dead.power_loss()
        t0 = time.monotonic()
        while "healthy" not in phases:
            t = time.monotonic() - t0
            if t > limit:
                raise TimeoutError(f"no failover within {limit:g} s: {phases}")
            for h in survivors:
                rows = {r["host_id"]: r for r in h.status()["hosts"]}
                if not rows[dead.id]["live"]:
                    phase("peers_see_stale", t, f"host {h.id}'s vm-status shows host {dead.id} not live (stale)")
                if rows[h.id]["state"] != states.get(h.id):
                    states[h.id] = rows[h.id]["state"]
                    say(t, f"host {h.id}'s agent: {rows[h.id]['state']} (score {rows[h.id]['score']})")
                if "lease_free" not in phases and h.sees_dead(dead.id):
                    phase("lease_free", t, f"sanlock on host {h.id} holds host {dead.id} dead: its leases are free to take")
                if h.engine_pids():
                    phase("vm_started", t, f"QEMU of the engine started on host {h.id}, paused until the lease is held")
                if h.lease_held():
                    phase("lease_taken", t, f"sanlock on host {h.id} holds the engine lease: the guest runs")
            if "lease_taken" in phases and self.healthy(survivors[0]):
                phase("healthy", time.monotonic() - t0, f"the engine's health page is green ({self.health_url})")
            time.sleep(0.2)
        return phases

    def stall_storage(self, stalled: bool) -> None:
        """Storage stall: every I/O on the shared domain, by every host, waits until the stall is lifted."""
        if self.volume is not None:  # every brick stopped (SIGSTOP): the FUSE clients wait, up to ping-timeout
            for pid in self.volume.brick_pids():
                if pid > 0:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGSTOP if stalled else signal.SIGCONT)
        elif self.mount is None:
            raise RuntimeError("this lab's domain cannot stall: build it with stallable=True")
        elif stalled:
            self.mount.stall()
        else:
            self.mount.release()

    def close(self) -> None:
        if self.mount is not None:
            self.mount.release()
        for b in self.bmcs.values():
            b.stop()
        for h in self.hosts:
            h.close()
        if self.mount is not None:
            self.mount.stop()
        if self.storage == "glusterfs":
            subprocess.run(["umount", "-l", str(self.base)], capture_output=True, timeout=30)
        self.segment.down()
        shutil.rmtree(self.base, ignore_errors=True)
        reaper.release(self.base.name)

    def leftovers(self) -> list[str]:
        left = self.segment.leftovers()
        glusterds = [h.glusterd for h in self.hosts if h.glusterd is not None]
        left += [f"glusterd {g.pid}" for g in glusterds if g.pid and lab_sanlock.alive(g.pid)]
        left += [f"mount {h.volume_root}" for h in self.hosts if h.glusterd and mounted(str(h.volume_root))]
        left += [f"mount {self.mount.mountpoint}"] if self.mount and stallfs.mounted(self.mount.mountpoint) else []
        left += [f"sanlock {h.daemon.pid}" for h in self.hosts if h.daemon.pid and lab_sanlock.alive(h.daemon.pid)]
        left += [f"ipmi_sim of host {i}" for i, b in self.bmcs.items() if b.proc is not None]
        return left + ([f"dir {self.base}"] if self.base.exists() else [])


class DomainStates:
    """Each host's libvirtd's word on the engine domain: its libvirt state number (1 running: the guest's CPUs run;
    3 paused: a start waiting for the lease, an incoming migration, a switch-over), 0 when there is none, None when
    libvirtd does not answer within ``bound`` seconds (a hung libvirtd: its question stays pending, none is added)."""

    RUNNING = 1

    def __init__(self, cluster: Cluster, bound: float = 1.0) -> None:
        self.cluster = cluster
        self.bound = bound
        self.conns: dict[int, Any] = {}
        self.pending: dict[int, threading.Thread] = {}

    def state(self, h: Host) -> int | None:
        if h.id in self.pending and self.pending[h.id].is_alive():
            return None
        answer: list[int] = []
        worker = self.pending[h.id] = threading.Thread(target=self._ask, args=(h, answer), daemon=True)
        worker.start()
        worker.join(self.bound)
        return answer[0] if answer else None

    def _ask(self, h: Host, answer: list[int]) -> None:
        import libvirt

        try:
            conn = self.conns.get(h.id) or lab_libvirtd.open_connection(h.libvirtd.uri)
            self.conns[h.id] = conn
            answer.append(conn.lookupByName(self.cluster.vm_name).state()[0])
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                answer.append(0)
            else:
                self.conns.pop(h.id, None)  # a restarted libvirtd: connect again next time

    def close(self) -> None:
        for conn in self.conns.values():
            with contextlib.suppress(Exception):
                conn.close()


class NeverTwo(threading.Thread):
    """Fails the test the moment two engines run: every ``every`` seconds it reads each host's QEMU processes,
    libvirtd and sanlock daemon directly (never hectl's view). A host runs the engine when a live QEMU process of
    the engine VM is there and libvirt says the domain runs (its CPUs: not paused waiting for the lease, not an
    incoming migration, not a migration's switch-over); where libvirtd does not answer, when its sanlock holds the
    engine lease. One poll with two such hosts is a violation (``why`` says how each was seen): a migration hands
    the guest over with a gap (the source pauses, the lease moves, then the target runs), which a poll cannot
    straddle."""

    def __init__(self, cluster: Cluster, every: float = 0.25) -> None:
        super().__init__(name="never-two", daemon=True)
        self.cluster = cluster
        self.every = every
        self.stop = threading.Event()
        self.violations: list[tuple[float, list[int]]] = []
        self.why: list[str] = []  # for each violation, how each host was seen running
        self.polls = 0
        self.domains = DomainStates(cluster)

    def running(self) -> dict[int, str]:
        """The hosts that run the engine now, and how each was seen doing so."""
        out = {}
        for h in self.cluster.hosts:
            pids = h.engine_pids() if h.up else []
            if not pids:
                continue
            state = self.domains.state(h)
            if state == DomainStates.RUNNING:
                out[h.id] = f"QEMU {pids}, libvirt: running"
            elif state is None and h.lease_held():
                out[h.id] = f"QEMU {pids}, libvirtd silent, sanlock holds the engine lease"
        return out

    def run(self) -> None:
        try:
            while not self.stop.wait(self.every):
                try:
                    now = self.running()
                except Exception:  # a host being powered off mid-read: read again next time
                    continue
                self.polls += 1
                if len(now) > 1:
                    self.violations.append((time.time(), sorted(now)))
                    self.why.append("; ".join(f"host {i}: {how}" for i, how in sorted(now.items())))
        finally:
            self.domains.close()
