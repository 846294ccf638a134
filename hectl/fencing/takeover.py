"""Fence a host so that its leases can be taken now: power it off, confirm it, free its sanlock host id.

Shared by the agent's fast path (``hectl.ha.fencer``) and ``hectl fence off``.
The delta lease is read *before* the power-off and that reading is the one
freed after it: a host that renewed in between is not freed
(``lease.free_host_id`` refuses), so a wrong judgement costs the early
takeover, never safety.
"""

from __future__ import annotations

from hectl import lease
from hectl.errors import HectlError
from hectl.fencing import fence
from hectl.frozen import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hectl.fencing.device import FenceMethod
    from hectl.storage.backend import DomainPaths


class Takeover(Frozen):
    """The device's answer, and whether the host id was freed (``problem``: why not)."""

    outcome: fence.Outcome
    freed: bool
    problem: str


def fence_and_free(
    method: FenceMethod,
    host_id: int,
    device: str,
    fence_timeout: float,
    paths: DomainPaths,
    io_timeout: float,
    *,
    judged: lease.DeltaLease | None = None,
) -> Takeover:
    """Off, confirmed, then the host id freed. A signal before the off propagates (nothing was sent); one
    during an action ends the sequence once that action ended (``Outcome.interruption``): nothing is freed.

    ``judged``: the delta lease the host was judged dead on (the agent's fencing). Then the lease read
    right before the off must be it (else the host renewed: nothing is done), and the device must not
    already say the host is off (a device powering another machine, or one already off: refused, nothing
    freed, since a wrong mapping would free the lease of a host that still runs).
    """
    try:
        seen: lease.DeltaLease | None = lease.read_delta(paths, host_id, io_timeout)
        problem = ""
    except HectlError as exc:
        if judged is not None:
            return Takeover(fence.refused(host_id, device, f"its delta lease could not be read again: {exc.message}"), False, "")
        seen, problem = None, f"its delta lease could not be read before the power-off: {exc.message}"
    if judged is not None:
        if seen != judged:
            why = f"it renewed its sanlock lease since it was judged dead ({seen.describe() if seen else '?'}): not powered off"
            return Takeover(fence.refused(host_id, device, why), False, "")
        before = fence.status(method, host_id, device, fence_timeout)
        if before.power != "on":
            return Takeover(before, False, "")
    outcome = fence.power_off(method, host_id, device, fence_timeout)
    if judged is not None:
        outcome = outcome._replace(steps=(*before.steps, *outcome.steps))
    if outcome.signal:
        return Takeover(outcome, False, "interrupted before its host id was freed")
    if not outcome.confirmed or seen is None:
        return Takeover(outcome, False, problem)
    try:
        lease.free_host_id(paths, seen, io_timeout)
    except HectlError as exc:
        return Takeover(outcome, False, exc.message)
    return Takeover(outcome, True, "")
