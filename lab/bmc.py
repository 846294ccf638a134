"""Lab BMCs: one OpenIPMI ``ipmi_sim`` per host, outside the host, that powers it off for the real fence agents.

``fence_ipmilan`` -> ``ipmitool`` (IPMI v2.0 lanplus, cipher suite 3) -> ``ipmi_sim``
-> its ``chassis_control`` program (``bmc_chassis.sh``), which SIGKILLs every process
of the host (its network namespace, plus its sanlock daemon) and then reports it off.
A BMC runs in a namespace of its own (``ns``) on ``address``:623, so that fencing a host
never kills its BMC and cutting a host's network leaves its BMC reachable. Faults:
``down`` (ipmi_sim stopped: the device does not answer) and ``stay_on`` (the device
accepts off, the host stays on). Recipe and pitfalls: ../shared/reference/components/fencing.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).parent
USER = "admin"
EMU = "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n"


def missing() -> str:
    """Why lab BMCs cannot run here ('' when they can)."""
    for tool, package in (("ipmi_sim", "openipmi"), ("ipmitool", "ipmitool"), ("fence_ipmilan", "fence-agents")):
        if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            return f"{tool} is not installed (Debian's {package})"
    return ""


class BMC:
    """Host ``host``'s BMC: ipmi_sim in network namespace ``ns`` (None: this one) on ``address``:``port``."""

    def __init__(
        self, base: Path, host: str, ns: str | None, address: str, port: int = 623, pidfiles: tuple[Path, ...] = ()
    ) -> None:
        self.dir = base
        self.host = host  # the host's network namespace
        self.ns = ns
        self.address = address
        self.port = port
        self.password = f"lab-{os.urandom(6).hex()}"
        self.pidfiles = pidfiles
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "state").mkdir(exist_ok=True)
        (self.dir / "power").write_text("1\n")
        chassis = " ".join([str(HERE / "bmc_chassis.sh"), str(self.dir), self.host, *map(str, self.pidfiles)])
        conf = self.dir / "lan.conf"
        conf.write_text(
            f'name "bmc-{self.host}"\nset_working_mc 0x20\n  startlan 1\n    addr {self.address} {self.port}\n'
            "    priv_limit admin\n    allowed_auths_callback none md2 md5 straight\n"
            "    allowed_auths_user none md2 md5 straight\n    allowed_auths_operator none md2 md5 straight\n"
            "    allowed_auths_admin none md2 md5 straight\n    guid a123456789abcdefa123456789abcdef\n  endlan\n"
            f'  chassis_control "{chassis}"\n'
            f'  user 2 true "{USER}" "{self.password}" admin 10 none md2 md5 straight\n'
        )
        conf.chmod(0o600)
        (self.dir / "bmc.emu").write_text(EMU)
        argv = ["ipmi_sim", "-n", "-c", str(conf), "-f", str(self.dir / "bmc.emu"), "-s", str(self.dir / "state")]
        if self.ns:
            argv = ["ip", "netns", "exec", self.ns, *argv]
        log = open(self.dir / "ipmi_sim.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while self.power() is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the BMC of {self.host} did not answer: {(self.dir / 'ipmi_sim.log').read_text()[-500:]}")
            time.sleep(0.1)

    def ipmitool(self, *args: str) -> subprocess.CompletedProcess[str]:
        secret = self.dir / "password"
        if not secret.exists():
            secret.touch(0o600)
            secret.write_text(self.password)
        argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", self.address, "-p", str(self.port), "-U", USER]
        argv = [*argv, "-f", str(secret), *args]
        if self.ns:
            argv = ["ip", "netns", "exec", self.ns, *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=15)

    def power(self) -> bool | None:
        """What the BMC says of the host's power (None: it does not answer)."""
        out = self.ipmitool("chassis", "power", "status").stdout
        return True if "is on" in out else False if "is off" in out else None

    def powered_on(self) -> None:
        """The host was started again (lab.cluster boots it): the switch says on."""
        (self.dir / "power").write_text("1\n")

    def stay_on(self, on: bool) -> None:
        """Fault: the device accepts 'off' but the host stays on."""
        flag = self.dir / "stay-on"
        if on:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def down(self, down: bool) -> None:
        """Fault: the BMC stops answering (SIGSTOP) or answers again (SIGCONT)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGSTOP if down else signal.SIGCONT)

    def log(self) -> str:
        path = self.dir / "chassis.log"
        return path.read_text() if path.exists() else ""

    def device(self) -> str:
        """``[fencing] host<N>`` for this BMC (the password goes to the secrets file)."""
        port = "" if self.port == 623 else f" ipport={self.port}"
        return f"fence_ipmilan ip={self.address}{port} username={USER} lanplus=1 cipher=3 power_wait=0 power_timeout=4"

    def secrets(self) -> str:
        return f"password={self.password}\n"

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.proc = None
