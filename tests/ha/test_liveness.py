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
