"""The steps of deploying the first host, joining another, and removing one (``hectl.deploy.plan``).

A ``Deployment`` holds what every step needs: the answers, this host's
configuration file (its text, written by the ``local-config`` step), and an
``AppContext`` built on that text, so that every step uses the same backend,
sanlock and libvirt layers as the other commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess

from hectl import config as config_mod
from hectl.context import AppContext
from hectl.deploy import cloudinit
from hectl.deploy.answers import Answers
from hectl.deploy.plan import BLOCKED, DONE, SKIPPED, TODO, Check, Step
from hectl.errors import ConfigError, HectlError, LockHeld, OperationFailed, StorageError, VMStateError, WaitTimeout
from hectl.storage import cluster, directio

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hectl.storage.clusterkey import ClusterKey

ENGINE_DISK = "engine.qcow2"  # in the domain's images/
SEED = "seed.iso"
KERNEL, INITRD = "vmlinuz", "initrd.img"
UNIT = "hectl-ha.service"
SYSTEMD_RUNNING = "/run/systemd/system"  # exists when systemd is the init (sd_booted)
DROPIN = "/etc/systemd/system/hectl-ha.service.d/hectl-config.conf"  # points the unit at a non-default config


def local_config_text(answers: Answers) -> str:
    """This host's configuration file: host-local keys only (shared ones live on the domain)."""
    lines = ["# written by hectl deploy; shared keys are on the domain: hectl cluster-config show"]
    for section, keys in config_mod.schema().items():
        entries = []
        for key in keys:
            text = answers.get(section, key)
            source = answers.sources.get((section, key), "default")
            if (
                text == ""
                or config_mod.is_shared(section, key)
                or (source == "default" and (section, key) != ("storage", "type"))
            ):
                continue
            entries.append(f"{key} = {text}")
        if section == "storage":
            entries += [f"{k} = {v}" for k, v in sorted(answers.storage.items())]
        if entries:
            lines += ["", f"[{section}]", *entries]
    return "\n".join(lines) + "\n"


def shared_sections(answers: Answers) -> dict[str, dict[str, str]]:
    """The cluster configuration the first host writes: every shared key given (defaults are left out)."""
    out: dict[str, dict[str, str]] = {}
    for (section, key), text in answers.values.items():
        if text and config_mod.is_shared(section, key) and answers.sources.get((section, key)) != "default":
            out.setdefault(section, {})[key] = text
    return out


class Deployment:
    """Everything the steps share."""

    def __init__(
        self,
        answers: Answers,
        config_path: str,
        *,
        environ: Mapping[str, str],
        join: bool = False,
        timeout: float = 600.0,
        progress: Callable[[str], None] = lambda _line: None,
        meter: Callable[[str, float], None] = lambda _what, _percent: None,
        root_password: str = "",
        local_text: str | None = None,
        cluster_key: Callable[[], ClusterKey] | None = None,
    ) -> None:
        self.answers = answers
        self.config_path = config_path
        self.join = join
        self.timeout = timeout  # for the long waits: lockspace, engine start, health page
        self.progress = progress
        self.meter = meter  # a long copy's progress: what, percent done
        self.root_password = root_password
        self.given_key = cluster_key  # --join: the cluster key (from --cluster-key-file or a prompt)
        self.local_text = local_config_text(answers) if local_text is None else local_text
        self.app = AppContext(config_path=config_path, config_text=self.local_text, environ=environ)
        self.app.local_config  # noqa: B018 - check the file's text now (exit 3 names the key)
        self.wanted_shared = shared_sections(answers)
        if not join:  # the first host's configuration is the one it writes: its file and the shared keys
            self.app.use_config(
                config_mod.load(
                    config_path, environ, shared=self.wanted_shared, shared_source="the answers", text=self.local_text
                )
            )

    @property
    def host_id(self) -> int:
        return self.app.local_config.host.id

    def backend(self):  # type: ignore[no-untyped-def]
        return self.app.backend(connect=False)

    def validate(self) -> None:
        """Everything that can be checked before anything changes (``ConfigError``, exit 3)."""
        self.backend()  # the backend's factory checks its options
        if not self.join:
            _check_against_host(self.answers)
            image = self.answers.get("appliance", "image")
            _image_info(image)

    # -- steps ---------------------------------------------------------------------------------

    @classmethod
    def for_removal(cls, config_path: str, environ: Mapping[str, str], progress: Callable[[str], None]) -> Deployment:
        """The deployment of this host as its configuration file describes it (``--remove``)."""
        try:
            with open(config_path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise ConfigError(f"cannot read {config_path}: {exc.strerror}", hint="hectl is not deployed on this host") from None
        return cls(
            Answers(values={}, sources={}, storage={}),
            config_path,
            environ=environ,
            join=True,
            progress=progress,
            local_text=text,
        )

    def removal_steps(self) -> list[Step]:
        names = ["engine-not-here", "agent-stopped", "lockspace-left", "slot-cleared", "unit-removed", "local-config-removed"]
        return [self._step(name) for name in names]

    def steps(self) -> list[Step]:
        if self.join:
            names = ["host", "storage", "domain-present", "cluster-key-present", "cluster-config-present", "host-id-free"]
            names += ["local-config", "lockspace", "agent-unit"]
        else:
            names = ["host", "storage", "domain", "cluster-key", "cluster-config", "leases", "engine-image", "cloud-init"]
            names += ["engine-spec"]
            names += ["local-config", "lockspace", "engine", "liveliness", "maintenance", "agent-unit"]
        return [self._step(name) for name in names]

    def _step(self, name: str) -> Step:
        attr = name.replace("-", "_")
        check, apply = getattr(self, f"check_{attr}"), getattr(self, f"apply_{attr}", lambda: "")
        return Step(name=name, title=_TITLES[name], check=check, apply=apply)

    def check_host(self) -> Check:
        from hectl import lease
        from hectl.vm.hypervisor import choose_accel

        cfg = self.app.local_config
        try:
            self.app.hypervisor().info("hectl-deploy-probe")
        except HectlError as exc:
            return Check(BLOCKED, f"libvirtd at {cfg.vm.uri} cannot be used: {exc.message}")
        problem = lease.daemon_problem()
        if problem:
            return Check(BLOCKED, f"{problem}: start it (sanlock daemon)")
        accel, why = choose_accel(cfg.vm.accelerator)
        return Check(DONE, f"libvirtd and sanlock answer; the engine runs with {accel} ({why})")

    def check_storage(self) -> Check:
        backend = self.backend()
        return Check(DONE, str(backend.paths().root)) if backend.is_connected() else Check(TODO)

    def apply_storage(self) -> str:
        self.backend().connect(self.app.timeout)
        return f"connected ({self.backend().paths().root})"

    def _marker(self) -> dict[str, object] | None:
        paths = self.backend().paths()
        try:
            data = self.backend().read(paths.marker, 0, 4096, self.app.timeout).data
        except StorageError as exc:
            if exc.errno == 2:
                return None
            raise
        try:
            doc = json.loads(data.rstrip(b"\0 \n"))
        except ValueError:
            raise StorageError(f"{paths.marker} is not a hectl domain marker") from None
        return doc if isinstance(doc, dict) else None

    def check_domain(self) -> Check:
        marker = self._marker()
        return Check(DONE, f"domain {marker.get('uuid')}") if marker else Check(TODO)

    def apply_domain(self) -> str:
        from hectl.storage.domain import init_domain

        identity = init_domain(self.backend(), self.app.clock, self.app.timeout)
        return f"created domain {identity['uuid']}"

    def check_domain_present(self) -> Check:
        marker = self._marker()
        if not marker:
            return Check(BLOCKED, f"there is no hectl domain at {self.backend().paths().root}: deploy the first host first")
        return Check(DONE, f"domain {marker.get('uuid')}")

    def _key(self) -> ClusterKey | None:
        return self.app.cluster_key()

    def check_cluster_key(self) -> Check:
        key = self._key()
        return Check(DONE, f"{self.app.local_config.cluster_key} (id {key.id})") if key else Check(TODO)

    def apply_cluster_key(self) -> str:
        from hectl.storage import clusterkey

        key = clusterkey.generate()
        clusterkey.save(self.app.local_config.cluster_key, key)
        return f"{self.app.local_config.cluster_key} (id {key.id}): every joining host needs a copy (--cluster-key-file)"

    def check_cluster_key_present(self) -> Check:
        key = self._key()
        path = self.app.local_config.cluster_key
        try:
            if key is not None and cluster.read(self.backend(), self.app.timeout, key, path) is not None:
                return Check(DONE, f"{path} (id {key.id}) verifies the domain's cluster configuration")
        except cluster.Unauthenticated as exc:
            if self.given_key is None:
                return Check(BLOCKED, f"this host's key {path} does not verify the domain's: {exc.message}")
        if self.given_key is None:
            return Check(BLOCKED, f"this host has no cluster key ({path}): give the first host's with --cluster-key-file")
        return Check(TODO, path)

    def apply_cluster_key_present(self) -> str:
        key = self.given_key() if self.given_key else None
        assert key is not None  # the check said TODO only with a key given
        path = self.app.local_config.cluster_key
        cluster.install_key(self.backend(), self.app.timeout, key, path, self.app.cluster_cache)
        return f"{path} (id {key.id}) installed"

    def check_cluster_config(self) -> Check:
        key = self._key()
        try:
            current = cluster.read(self.backend(), self.app.timeout, key, self.app.local_config.cluster_key)
        except (cluster.Unauthenticated, cluster.NoKey):  # signed with another key: written anew
            return Check(TODO, "signed with another key")
        except StorageError as exc:
            return Check(TODO, exc.message)  # torn: written anew
        if current is not None and current.sections == cluster.check(self.wanted_shared):
            return Check(DONE, f"version {current.version}")
        return Check(TODO, "differs from the answers" if current else "")

    def apply_cluster_config(self) -> str:
        key = self._key()
        assert key is not None  # the cluster-key step made it
        new = cluster.update(self.backend(), self.wanted_shared, self.app.timeout, key, replace=True)
        cluster.save_copy(self.app.cluster_cache, new)  # this host's copy from any earlier deployment gives way
        return f"version {new.version} written, signed with key {key.id}"

    def check_cluster_config_present(self) -> Check:
        path = self.app.local_config.cluster_key
        current = cluster.read(self.backend(), self.app.timeout, self._key(), path)
        if current is None:
            return Check(BLOCKED, "the domain has no cluster configuration: was its first host deployed with hectl deploy?")
        if cluster.load_copy(self.app.cluster_cache) != current:
            return Check(TODO, f"version {current.version}: this host keeps a copy")
        return self._fits()

    def apply_cluster_config_present(self) -> str:
        current = cluster.read(self.backend(), self.app.timeout, self._key(), self.app.local_config.cluster_key)
        cluster.save_copy(self.app.cluster_cache, current)  # a copy from an earlier deployment gives way
        check = self._fits()
        if check.state != DONE:
            raise ConfigError(check.why)
        return check.why

    def _fits(self) -> Check:
        """The domain's configuration merged with this host's file is the one in force (exit 3 names the key)."""
        self.app.use_config(self.app.load_config())
        if self.app.cluster_problem:
            return Check(BLOCKED, f"the cluster configuration does not fit this host: {self.app.cluster_problem}")
        return Check(DONE, f"version {self.app.cluster_version}")

    def check_host_id_free(self) -> Check:
        """No other host uses this id: no recent record in its slot, and sanlock does not see it live."""
        cfg = self.app.config
        slot = self.app.store(connect=False).read_slot(cfg.host.id)
        rec = slot.record
        from hectl.storage import records

        if isinstance(rec, records.HostRecord) and not rec.stopped:
            age = self.app.clock.wall() - rec.wall_time
            if age < max(cfg.timeouts.liveness_window, 3 * cfg.ha.loop) and rec.hostname != cfg.host.hostname:
                raise LockHeld(
                    f"host id {cfg.host.id} is in use: {rec.hostname} published its record {max(age, 0):.0f} s ago",
                    hint="choose a free host id (hectl vm-status lists the hosts)",
                )
        if self.app.leases().hosts().get(cfg.host.id) == "live" and self.app.leases().state() != "held":
            raise LockHeld(f"host id {cfg.host.id} is in use: sanlock sees it live", hint="choose a free host id")
        return Check(DONE, "no live record, sanlock does not see it live")

    def check_leases(self) -> Check:
        from hectl import lease

        paths = self.backend().paths()
        try:
            self.backend().check_file(paths.lockspace, self.app.timeout)
            self.backend().check_file(paths.engine_lease, self.app.timeout)
        except StorageError:
            return Check(TODO)
        return Check(DONE, "lockspace and engine lease initialised") if lease.initialised(paths) else Check(TODO)

    def apply_leases(self) -> str:
        from hectl import lease

        cfg = self.app.config
        paths = self.backend().paths()
        lease.prepare_files(paths, self.app.timeout)
        lease.SanlockLeases(
            paths, cfg.host.id, int(cfg.ha.io_timeout), lambda p: self.backend().check_file(p, self.app.timeout)
        ).initialize()
        return f"lockspace and engine lease written (io_timeout {cfg.ha.io_timeout:g} s)"

    def _images(self) -> dict[str, str]:
        """Domain image name -> source file."""
        images = {ENGINE_DISK: self.answers.get("appliance", "image")}
        if self.answers.get("appliance", "kernel"):
            images[KERNEL] = self.answers.get("appliance", "kernel")
            images[INITRD] = self.answers.get("appliance", "initrd")
        return images

    def check_engine_image(self) -> Check:
        images_dir = self.backend().paths().images_dir
        missing = [
            name for name in self._images() if directio.path_kind(os.path.join(images_dir, name), self.app.timeout) != "file"
        ]
        return Check(TODO, f"to import: {', '.join(missing)}") if missing else Check(DONE, ", ".join(self._images()))

    def apply_engine_image(self) -> str:
        images_dir = self.backend().paths().images_dir
        done = []
        for name, source in self._images().items():
            target = os.path.join(images_dir, name)
            if directio.path_kind(target, self.app.timeout) == "file":
                continue
            tmp = os.path.join(images_dir, f".{name}.partial")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # a killed earlier run's leftover
            if name == ENGINE_DISK:
                _convert(source, tmp, lambda pct: self.meter("importing the engine disk", pct))
            else:
                _copy(source, tmp)
            os.chmod(tmp, 0o644)
            os.rename(tmp, target)  # complete or absent: a re-run after a kill starts this image over
            done.append(name)
        return f"imported {', '.join(done)}"

    def _seed_wanted(self) -> bool:
        return self.answers.get("cloud_init", "enabled") == "yes"

    def check_cloud_init(self) -> Check:
        if not self._seed_wanted():
            return Check(SKIPPED, "no cloud-init seed asked for ([cloud_init] enabled = no)")
        path = os.path.join(self.backend().paths().images_dir, SEED)
        return Check(DONE, SEED) if directio.path_kind(path, self.app.timeout) == "file" else Check(TODO)

    def apply_cloud_init(self) -> str:
        fqdn = self.answers.get("engine", "fqdn")
        hostname = self.answers.get("cloud_init", "hostname") or fqdn
        hashed = cloudinit.password_hash(self.root_password) if self.root_password else ""
        user = cloudinit.user_data(hostname, fqdn, hashed, self.answers.get("cloud_init", "ssh_key"))
        data = cloudinit.seed_iso(f"hectl-{self._marker().get('uuid')}", hostname.split(".")[0], user)  # type: ignore[union-attr]
        images_dir = self.backend().paths().images_dir
        tmp, target = os.path.join(images_dir, f".{SEED}.partial"), os.path.join(images_dir, SEED)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)  # holds a password hash
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fsync(f.fileno())
        os.rename(tmp, target)
        return f"{SEED} ({len(data)} bytes)"

    def _wanted_spec(self) -> dict[str, str]:
        wanted = {k: v for k, v in self.answers.section("engine_vm").items()}
        wanted.update(disk=ENGINE_DISK, disk_format="qcow2")
        if self.answers.get("appliance", "kernel"):
            wanted.update(kernel=KERNEL, initrd=INITRD)
        if self._seed_wanted():
            wanted["seed"] = SEED
        return wanted

    def check_engine_spec(self) -> Check:
        from hectl.errors import NotDeployed
        from hectl.vm import spec as vmspec

        try:
            current = vmspec.read(self.backend(), self.app.timeout).to_dict()
        except NotDeployed:
            return Check(TODO)
        wanted = vmspec.build({**current, **self._wanted_spec()}).to_dict()
        return Check(DONE, f"version {current['version']}") if wanted == current else Check(TODO, "differs from the answers")

    def apply_engine_spec(self) -> str:
        from hectl.vm import spec as vmspec

        spec = vmspec.update(self.backend(), self._wanted_spec(), self.app.timeout)
        return f"{spec.name}, version {spec.version}"

    def check_local_config(self) -> Check:
        try:
            with open(self.config_path, encoding="utf-8") as f:
                current = f.read()
        except OSError:
            return Check(TODO, self.config_path)
        return Check(DONE, self.config_path) if current == self.local_text else Check(TODO, f"{self.config_path} differs")

    def apply_local_config(self) -> str:
        from hectl.localstate import write_atomic

        write_atomic(self.config_path, self.local_text)  # no secrets in it: 0644
        return self.config_path

    def check_lockspace(self) -> Check:
        state = self.app.leases().state()
        return Check(DONE, f"host id {self.host_id} held") if state == "held" else Check(TODO, f"sanlock: {state}")

    def apply_lockspace(self) -> str:
        leases = self.app.leases()
        t0 = self.app.clock.monotonic()
        self.progress(
            f"joining the sanlock lockspace as host id {self.host_id} (about 2 x io_timeout; longer if the id was used recently)"
        )
        leases.join()
        while leases.state() != "held":
            if self.app.clock.monotonic() - t0 > self.timeout:
                raise WaitTimeout(f"host id {self.host_id} not held within {self.timeout:g} s")
            self.app.clock.sleep(0.5)
        return f"host id {self.host_id} held after {self.app.clock.monotonic() - t0:.1f} s"

    def _engine_state(self) -> str:
        from hectl.vm import spec as vmspec

        return self.app.hypervisor().info(vmspec.read(self.backend(), self.app.timeout).name).state

    def check_engine(self) -> Check:
        from hectl.lease import LEASE_FREE, LEASE_UNKNOWN

        if self._engine_state() in ("up", "paused", "starting"):
            return Check(DONE, "running here")
        holder = self.app.leases().engine_holder()
        if holder not in (LEASE_FREE, LEASE_UNKNOWN, self.host_id):
            return Check(BLOCKED, f"host {holder} holds the engine lease: the engine runs there")
        return Check(TODO)

    def apply_engine(self) -> str:
        from hectl.vm import control

        result = control.start(self.app, wait=self.timeout, progress=self.progress)
        holder = self.app.leases().engine_holder()
        if holder != self.host_id:
            with contextlib.suppress(HectlError):
                control.poweroff(self.app)
            raise OperationFailed(
                "the engine VM started without holding its sanlock lease (libvirtd does not use the sanlock lock driver)",
                hint='set lock_manager = "sanlock" in qemu.conf (and qemu-sanlock.conf), restart libvirtd, deploy again',
            )
        return f"{result.get('result')} ({result.get('accel')}), lease held"

    def check_liveliness(self) -> Check:
        from hectl.vm import liveliness

        cfg = self.app.config
        if not cfg.engine.url():
            return Check(SKIPPED, "no [engine] fqdn or health_url")
        result = liveliness.check(cfg.engine.url(), cfg.engine.health_timeout, cfg.engine.health_ca)
        return Check(DONE, result.detail) if result.healthy else Check(TODO, result.detail)

    def apply_liveliness(self) -> str:
        from hectl.vm import liveliness

        cfg = self.app.config
        t0 = self.app.clock.monotonic()
        last = ""
        while True:
            result = liveliness.check(cfg.engine.url(), cfg.engine.health_timeout, cfg.engine.health_ca)
            if result.healthy:
                return f"healthy after {self.app.clock.monotonic() - t0:.1f} s"
            if result.detail != last:
                self.progress(f"engine health page: {result.detail}")
                last = result.detail
            if self.app.clock.monotonic() - t0 > self.timeout:
                raise WaitTimeout(
                    f"the engine's health page ({cfg.engine.url()}) is not healthy after {self.timeout:g} s: {result.detail}"
                )
            self.app.clock.sleep(1.0)

    def check_maintenance(self) -> Check:
        snapshot = self.app.store().read_all()
        if snapshot.global_record.maintenance_active(self.app.clock.wall()):
            return Check(TODO, "global maintenance is set")
        return Check(DONE, "global maintenance off")

    def apply_maintenance(self) -> str:
        from hectl import maintenance

        cfg = self.app.config
        maintenance.set_maintenance(
            "none", reason="hectl deploy", ttl=None, store=self.app.store, state_dir=cfg.paths.state_dir,
            audit_log=cfg.audit_log, host_id=cfg.host.id, hostname=cfg.host.hostname, clock=self.app.clock,
        )  # fmt: skip
        return "global maintenance off"

    def _dropin(self) -> str:
        """The unit's drop-in for this configuration file ('' for the default path the unit uses)."""
        if self.config_path == config_mod.DEFAULT_PATH:
            return ""
        path = os.path.abspath(self.config_path)
        if any(c in path for c in "\n\\%\"' "):
            raise ConfigError(f"configuration path {path!r} cannot be written into a systemd unit (spaces, quotes, %, \\)")
        return f"[Unit]\nConditionPathExists=\nConditionPathExists={path}\n[Service]\nEnvironment=HECTL_CONFIG={path}\n"

    def check_agent_unit(self) -> Check:
        if not os.path.isdir(SYSTEMD_RUNNING):
            return Check(SKIPPED, f"no systemd here: start the agent with 'hectl --config {self.config_path} ha run'")
        dropin = self._dropin()
        try:
            with open(DROPIN, encoding="utf-8") as f:
                current = f.read()
        except OSError:
            current = ""
        enabled = _systemctl("is-enabled", UNIT).returncode == 0 and _systemctl("is-active", UNIT).returncode == 0
        return Check(DONE, f"{UNIT} enabled and active") if enabled and current == dropin else Check(TODO)

    def apply_agent_unit(self) -> str:
        from hectl.localstate import write_atomic

        dropin = self._dropin()
        if dropin:
            write_atomic(DROPIN, dropin)
        elif os.path.exists(DROPIN):
            os.unlink(DROPIN)
        for args in (("daemon-reload",), ("enable", UNIT), ("restart", UNIT)):
            res = _systemctl(*args)
            if res.returncode != 0:
                raise OperationFailed(f"systemctl {' '.join(args)} failed: {res.stderr.strip()[:300]}")
        return f"{UNIT} enabled and started" + (f" (configuration {self.config_path})" if dropin else "")

    # -- removal -------------------------------------------------------------------------------

    def check_engine_not_here(self) -> Check:
        from hectl.errors import NotDeployed

        try:
            state = self._engine_state()
        except NotDeployed:
            return Check(DONE, "no engine VM defined")
        if state in ("up", "paused", "starting"):
            raise VMStateError(
                "the engine VM runs on this host: a host cannot leave while it runs the engine",
                hint="move it first: hectl set-maintenance --mode local (the agents start it elsewhere), then remove",
            )
        return Check(DONE, "the engine does not run here")

    def check_agent_stopped(self) -> Check:
        from hectl import localstate

        if localstate.agent_running(self.app.local_config.paths.state_dir):
            raise LockHeld(
                "the HA agent of this host runs",
                hint="stop it first (systemctl stop hectl-ha, or end 'hectl ha run'), then remove",
            )
        return Check(DONE, "no agent runs here")

    def check_lockspace_left(self) -> Check:
        state = self.app.leases().state()
        return (
            Check(TODO, f"host id {self.host_id} held") if state in ("held", "joining") else Check(DONE, "not in the lockspace")
        )

    def apply_lockspace_left(self) -> str:
        self.app.leases().leave()
        return f"left the lockspace (host id {self.host_id})"

    def check_slot_cleared(self) -> Check:
        from hectl.storage import records

        slot = self.app.store(connect=False).read_slot(self.host_id)
        return Check(DONE, "empty") if slot.kind == records.SlotKind.EMPTY else Check(TODO)

    def apply_slot_cleared(self) -> str:
        self.app.store().clear_slot(self.host_id)
        return f"slot {self.host_id} cleared"

    def check_unit_removed(self) -> Check:
        if not os.path.isdir(SYSTEMD_RUNNING):
            return Check(SKIPPED, "no systemd here")
        return Check(TODO) if _systemctl("is-enabled", UNIT).returncode == 0 else Check(DONE, f"{UNIT} not enabled")

    def apply_unit_removed(self) -> str:
        res = _systemctl("disable", "--now", UNIT)
        if res.returncode != 0:
            raise OperationFailed(f"systemctl disable --now {UNIT} failed: {res.stderr.strip()[:300]}")
        if os.path.exists(DROPIN):
            os.unlink(DROPIN)
        return f"{UNIT} disabled and stopped"

    def check_local_config_removed(self) -> Check:
        return Check(TODO, self.config_path) if os.path.exists(self.config_path) else Check(DONE, "no configuration file")

    def apply_local_config_removed(self) -> str:
        os.unlink(self.config_path)
        return f"removed {self.config_path}"


_TITLES = {
    "engine-not-here": "the engine does not run on this host",
    "agent-stopped": "this host's HA agent is stopped",
    "lockspace-left": "leave the sanlock lockspace",
    "slot-cleared": "clear this host's metadata slot",
    "unit-removed": "disable the HA agent's systemd unit",
    "local-config-removed": "remove this host's configuration file",
    "host": "libvirtd and sanlock answer; KVM or TCG",
    "storage": "connect the storage",
    "domain": "create the storage domain",
    "domain-present": "the storage domain exists",
    "cluster-key": "make the cluster key that signs the shared configuration",
    "cluster-key-present": "this host has the cluster key",
    "cluster-config": "write the shared configuration to the domain",
    "cluster-config-present": "read the shared configuration from the domain",
    "host-id-free": "this host id is not in use",
    "leases": "initialise the sanlock lockspace and engine lease",
    "engine-image": "import the engine disk image",
    "cloud-init": "build the engine's cloud-init seed",
    "engine-spec": "define the engine VM on the domain",
    "local-config": "write this host's configuration file",
    "lockspace": "join the sanlock lockspace",
    "engine": "start the engine VM under its lease",
    "liveliness": "wait for the engine's health page",
    "maintenance": "leave global maintenance off",
    "agent-unit": "enable the HA agent's systemd unit",
}


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(["systemctl", *args], 1, "", str(exc))


def _check_against_host(answers: Answers) -> None:
    """The engine must fit this host: memory below its RAM, vCPUs at most its CPUs."""
    memory = int(answers.get("engine_vm", "memory_mib") or 0)
    vcpus = int(answers.get("engine_vm", "vcpus") or 0)
    total_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    if memory >= total_mib:
        raise ConfigError(f"[engine_vm] memory_mib = {memory}: this host has only {total_mib} MiB")
    if vcpus > (os.cpu_count() or 1):
        raise ConfigError(f"[engine_vm] vcpus = {vcpus}: this host has only {os.cpu_count()} CPUs")


def _image_info(path: str) -> dict[str, object]:
    """qemu-img's view of an image; a backing file or an unknown format is refused (exit 3)."""
    try:
        res = subprocess.run(["qemu-img", "info", "--output=json", "--", path], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"[appliance] image = {path!r}: cannot run qemu-img ({exc})", hint="install qemu-utils") from None
    if res.returncode != 0:
        raise ConfigError(f"[appliance] image = {path!r}: not a disk image qemu-img can read: {res.stderr.strip()[:200]}")
    info = json.loads(res.stdout)
    if info.get("format") not in ("raw", "qcow2"):
        raise ConfigError(f"[appliance] image = {path!r}: format {info.get('format')!r}, not raw or qcow2")
    if info.get("backing-filename"):
        raise ConfigError(f"[appliance] image = {path!r}: it has a backing file (convert it to a standalone image first)")
    return info


_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


def _convert(source: str, target: str, meter: Callable[[float], None]) -> None:
    """``qemu-img convert`` to qcow2, reporting its progress (percent) as it grows."""
    fmt = str(_image_info(source)["format"])
    argv = ["qemu-img", "convert", "-p", "-f", fmt, "-O", "qcow2", "--", source, target]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    reported = -1.0
    buf = b""
    while chunk := proc.stdout.read1(4096):  # type: ignore[attr-defined]
        buf = (buf + chunk)[-256:]
        found = _PROGRESS.findall(buf)
        if found and float(found[-1]) > reported:
            reported = float(found[-1])
            meter(reported)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.wait() != 0:
        raise OperationFailed(f"qemu-img convert failed: {err.strip()[:300]}")


def _copy(source: str, target: str) -> None:
    import shutil

    shutil.copyfile(source, target)
