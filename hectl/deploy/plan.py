"""A deployment as a list of named, idempotent steps: each knows whether it is done and how to do it.

``preview`` asks every step (``--dry-run``: nothing changes); ``run`` does the
steps that are not done, in order, and stops at the first that fails or is
blocked. A re-run after a failure continues where it stopped; a re-run after
success finds every step done and changes nothing.
"""

from __future__ import annotations

from hectl.errors import HectlError
from hectl.frozen import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hectl.clock import Clock

DONE, TODO, BLOCKED, SKIPPED = "done", "to do", "blocked", "skipped"


class Check(Frozen):
    """A step's state: ``done``, ``to do``, ``blocked`` (cannot be done now: ``why``) or ``skipped`` (not needed)."""

    state: str
    why: str = ""


class Step(Frozen):
    name: str
    title: str
    check: Callable[[], Check]
    apply: Callable[[], str]  # does the step; returns what it did, in a few words


class StepFailed(HectlError):
    """A step failed: carries the step's name and the error's exit code."""

    def __init__(self, step: str, cause: HectlError, rows: list[dict[str, object]]) -> None:
        super().__init__(
            f"deploy step '{step}' failed: {cause.message}",
            hint=cause.hint or "fix that and run the same command again: it continues here",
        )
        self.step = step
        self.rows = rows  # every step's row up to this one's
        self.exit_code = cause.exit_code


def preview(steps: Sequence[Step]) -> list[dict[str, object]]:
    """Every step's state, nothing changed. A step after one that is still to do may depend on it:
    when its check cannot tell (it fails, or says blocked), it is reported ``to do``."""
    rows: list[dict[str, object]] = []
    pending = ""  # the first step still to do
    for step in steps:
        try:
            check = step.check()
        except HectlError as exc:
            check = Check(BLOCKED, exc.message)
        if check.state == BLOCKED and pending:
            check = Check(TODO, f"after {pending}")
        if check.state == TODO and not pending:
            pending = step.name
        rows.append({"step": step.name, "title": step.title, "state": check.state, "detail": check.why})
    return rows


def run(
    steps: Sequence[Step], clock: Clock, report: Callable[[dict[str, object]], None] = lambda _row: None
) -> list[dict[str, object]]:
    """Do what is not done, in order; every step's row (state, what was done, seconds) goes to ``report``,
    and a ``running`` row before a step is applied.

    Raises ``StepFailed`` at the first step that fails or is blocked (its row says why).
    """
    rows: list[dict[str, object]] = []
    for step in steps:
        t0 = clock.monotonic()
        row: dict[str, object] = {"step": step.name, "title": step.title}
        try:
            check = step.check()
            if check.state == BLOCKED:
                raise HectlError(check.why)
            if check.state in (DONE, SKIPPED):
                row.update(state=check.state, detail=check.why or "nothing to do", seconds=0.0)
            else:
                report({"step": step.name, "title": step.title, "state": "running", "detail": check.why})
                row.update(state="changed", detail=step.apply())
                row["seconds"] = round(clock.monotonic() - t0, 3)
        except HectlError as exc:
            row.update(state="failed", detail=exc.message, seconds=round(clock.monotonic() - t0, 3))
            rows.append(row)
            report(row)
            raise StepFailed(step.name, exc, rows) from exc
        rows.append(row)
        report(row)
    return rows
