"""A fake ``Hypervisor`` for unit tests (the real one is exercised in tests/virt/)."""

from __future__ import annotations

from collections.abc import Callable

from hectl.vm.hypervisor import Graphics, MigrationProgress, MigrationRequest, MigrationResult, VMInfo


class FakeHypervisor:
    """Records what was asked and plays a VM that obeys (``guest_obeys_shutdown``) or fails to start (``start_error``)."""

    uri = "test:///fake"

    def __init__(self, state: str = "down") -> None:
        self.state = state
        self.calls: list[tuple[str, object]] = []
        self.start_error: Exception | None = None
        self.guest_obeys_shutdown = True
        self.password = ""
        self.spec_version = -1  # of the running VM
        self.pid = 0
        self.xml = ""
        self.migrate_error: Exception | None = None

    def info(self, name: str) -> VMInfo:
        graphics = Graphics("vnc", "127.0.0.1", 5900) if self.state != "down" else None
        running = self.state != "down"
        return VMInfo(
            self.state,
            "fake",
            accel="tcg" if running else "",
            graphics=graphics,
            spec_version=self.spec_version if running else -1,
            pid=self.pid if running else 0,
        )

    def start(self, xml: str, *, paused: bool, timeout: float) -> None:
        self.calls.append(("start", (paused, timeout)))
        self.xml = xml
        if self.start_error is not None:
            raise self.start_error
        self.state = "paused" if paused else "up"

    def resume(self, name: str) -> None:
        self.calls.append(("resume", name))
        self.state = "up"

    def shutdown(self, name: str) -> None:
        self.calls.append(("shutdown", name))
        if self.guest_obeys_shutdown:
            self.state = "down"

    def poweroff(self, name: str) -> None:
        self.calls.append(("poweroff", name))
        self.state = "down"

    def migrate(self, name: str, request: MigrationRequest, progress: Callable[[MigrationProgress], None]) -> MigrationResult:
        self.calls.append(("migrate", request))
        progress(MigrationProgress("copying", 0.0, 100.0, 256.0))
        if self.migrate_error is not None:
            raise self.migrate_error
        progress(MigrationProgress("switching", 1.0, 0.0, 256.0))
        self.state = "down"
        return MigrationResult(1.5, 120, 80.0)

    def set_console_password(self, name: str, password: str, valid_to: str) -> Graphics:
        self.calls.append(("password", valid_to))
        self.password = password
        return Graphics("vnc", "127.0.0.1", 5900)

    def close(self) -> None:
        pass
