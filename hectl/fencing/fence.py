"""The two things done with a fence device: power a host off and confirm it, and check that the device answers.

A power-off counts only when the device then *says* the host is off
(``status`` exits 2): a failed, timed-out or contradicted ``off`` is a failure,
and the caller keeps to the normal path (sanlock's own wait), never a guess.
"""

from __future__ import annotations

import time

from hectl.fencing.device import POWER_OFF, POWER_ON, Answer, FenceMethod
from hectl.frozen import Frozen


class Step(Frozen):
    action: str
    code: int | None
    message: str
    elapsed: float
    interrupted: int = 0  # the signal that came while it ran (it was awaited, or killed: code None)

    def to_dict(self) -> dict[str, object]:
        return {"action": self.action, "exit_code": self.code, "message": self.message, "elapsed_s": round(self.elapsed, 3)}


# What an interruption left behind (``Outcome.interruption``; the audit log's ``outcome``).
COMPLETED = "completed"  # the action under way was awaited: its result is known and recorded
KILLED_BEFORE_OFF = "killed before off"  # stopped before the device was asked to power off: nothing was sent
UNKNOWN = "unknown"  # the device's off was killed under way: the host may or may not be off


class Outcome(Frozen):
    """A confirmed power-off (``confirmed``) or why not; ``power`` is what the device last said."""

    host_id: int
    device: str
    confirmed: bool
    power: str  # on | off | unknown
    reason: str
    steps: tuple[Step, ...]

    @property
    def elapsed(self) -> float:
        return sum(s.elapsed for s in self.steps)

    @property
    def signal(self) -> int:
        """The signal that interrupted the power-off (0: none)."""
        return next((s.interrupted for s in self.steps if s.interrupted), 0)

    @property
    def interruption(self) -> str:
        """What an interruption left behind: "" (none), COMPLETED or UNKNOWN."""
        if not self.signal:
            return ""
        return UNKNOWN if any(s.code is None and s.action == "off" for s in self.steps) else COMPLETED

    def to_dict(self) -> dict[str, object]:
        return {
            "host_id": self.host_id,
            "device": self.device,
            "confirmed": self.confirmed,
            "power": self.power,
            "reason": self.reason,
            "elapsed_s": round(self.elapsed, 3),
            "steps": [s.to_dict() for s in self.steps],
        }


def _step(action: str, answer: Answer) -> Step:
    return Step(action, answer.code, answer.message, answer.elapsed, answer.interrupted)


def _run(method: FenceMethod, action: str, timeout: float) -> Step:
    """One action; a method that lets a signal through (a plugin's) leaves its effect unknown (code None)."""
    began = time.monotonic()
    try:
        return _step(action, method.run(action, timeout))
    except KeyboardInterrupt as exc:
        said = f"{method.name or 'the fence method'}'s {action} was interrupted: its effect is unknown"
        return Step(action, None, said, time.monotonic() - began, getattr(exc, "signum", 2))


def power(code: int | None) -> str:
    """What a ``status`` exit code says of the host's power."""
    return {POWER_ON: "on", POWER_OFF: "off"}.get(code, "unknown") if code is not None else "unknown"


def power_off(method: FenceMethod, host_id: int, device: str, timeout: float) -> Outcome:
    """``off``, then ``status`` must say off. An interrupted ``off`` ends it there (not confirmed)."""
    off = _run(method, "off", timeout)
    if off.interrupted:
        said = "unknown" if off.code is None else f"exited {off.code}"
        why = f"interrupted during the device's off ({said}): its power was not confirmed"
        return Outcome(host_id, device, False, "unknown", why, (off,))
    if off.code != 0:
        why = "timed out" if off.code is None else "failed"
        return Outcome(host_id, device, False, "unknown", f"the device's off {why}: {off.message}", (off,))
    status = _run(method, "status", timeout)
    said = power(status.code)
    if said == "off":
        return Outcome(host_id, device, True, "off", "the device powered the host off and reports it off", (off, status))
    why = "still reports it on" if said == "on" else f"cannot tell its power state ({status.message})"
    return Outcome(host_id, device, False, said, f"the device accepted off but {why}", (off, status))


def refused(host_id: int, device: str, reason: str, steps: tuple[Step, ...] = ()) -> Outcome:
    """A power-off not even tried, and why."""
    return Outcome(host_id, device, False, "unknown", reason, steps)


def status(method: FenceMethod, host_id: int, device: str, timeout: float) -> Outcome:
    """Ask the device before an agent's power-off: it must say *on* (never confirmed; ``power`` says what it saw).

    *off* for a host just judged dead by its silence is what a device powering another machine (a swapped
    address, a shared outlet) or a host already off looks like: either way the device cannot be trusted
    to have stopped the engine's host, so the caller refuses and frees nothing.
    """
    step = _run(method, "status", timeout)
    said = power(step.code)
    if said == "on":
        return Outcome(host_id, device, False, "on", "", (step,))
    why = (
        "the device already reports the host off although it was live a moment ago: it may power another machine"
        if said == "off"
        else f"the device cannot tell the host's power ({step.message})"
    )
    return Outcome(host_id, device, False, said, f"{why}; refused, its host id is not freed", (step,))


class Check(Frozen):
    host_id: int
    device: str
    works: bool
    power: str
    steps: tuple[Step, ...]

    def to_dict(self) -> dict[str, object]:
        problem = next((s.message for s in self.steps if s.action == "monitor" and s.code != 0), "")
        if not problem and self.power == "unknown":
            problem = self.steps[-1].message
        return {
            "host_id": self.host_id,
            "device": self.device,
            "works": self.works,
            "power": self.power,
            "problem": problem,
            "elapsed_s": round(sum(s.elapsed for s in self.steps), 3),
            "steps": [s.to_dict() for s in self.steps],
        }


def check(method: FenceMethod, host_id: int, device: str, timeout: float) -> Check:
    """``monitor`` (the device answers) and ``status`` (it can tell the host's power)."""
    monitor = _step("monitor", method.run("monitor", timeout))
    status = _step("status", method.run("status", timeout))
    said = power(status.code)
    return Check(host_id, device, monitor.code == 0 and said != "unknown", said, (monitor, status))
