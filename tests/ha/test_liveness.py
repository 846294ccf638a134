"""Record timing on the local monotonic clock: global maintenance expiry never reads a wall clock."""

from __future__ import annotations

from hectl.ha.liveness import MaintenanceClock
from hectl.storage.records import GlobalRecord

SET_AT = 1_800_000_000.0
TTL = GlobalRecord(seq=4, maintenance=True, set_at=SET_AT, expires_at=SET_AT + 300)


def test_the_ttl_runs_from_the_first_read_on_the_monotonic_clock() -> None:
    clock = MaintenanceClock()
    assert clock.in_force(TTL, 50.0)  # first read: 300 s from here, whatever any wall clock says
    assert clock.in_force(TTL, 349.9) and clock.remaining(349.9) == 300 - 299.9
    assert not clock.in_force(TTL, 350.0)


def test_a_new_record_restarts_the_count_and_off_is_off() -> None:
    clock = MaintenanceClock()
    clock.in_force(TTL, 0.0)
    renewed = TTL._replace(seq=5, set_at=SET_AT + 200, expires_at=SET_AT + 500)
    assert clock.in_force(renewed, 299.0) and clock.in_force(renewed, 598.0) and not clock.in_force(renewed, 599.0)
    assert not clock.in_force(renewed._replace(seq=6, maintenance=False, expires_at=None), 600.0)
    assert clock.remaining(600.0) is None


def test_no_expiry_and_impossible_ttls() -> None:
    clock = MaintenanceClock()
    forever = TTL._replace(expires_at=None)
    assert clock.in_force(forever, 0.0) and clock.in_force(forever, 1e9) and clock.remaining(1e9) is None
    assert not MaintenanceClock().in_force(TTL._replace(expires_at=SET_AT - 1), 0.0)  # expires before it was set


def test_a_restarted_agent_resumes_its_predecessors_count_but_never_extends_it() -> None:
    clock = MaintenanceClock()
    clock.resume(4, 120.0)  # the previous agent on this boot would have ended it at 120
    assert clock.in_force(TTL, 100.0) and clock.remaining(100.0) == 20.0 and not clock.in_force(TTL, 120.0)
    other = MaintenanceClock()
    other.resume(3, 120.0)  # about an older record: ignored
    assert other.in_force(TTL, 100.0) and other.remaining(100.0) == 300.0
    late = MaintenanceClock()
    late.resume(4, 10_000.0)  # never later than a full TTL from now
    assert late.remaining(0.0) is None and late.in_force(TTL, 100.0) and late.remaining(100.0) == 300.0
