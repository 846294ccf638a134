"""Text from shared-storage records reaches no terminal, log, mail or Nagios raw (issue 8).

Records are forged CRC-valid with hectl.storage.records on a real localfs domain, as any host (or anyone
who can write the metadata file) could write them; then the real CLI runs and every output is
looked at.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import Domain, run_hectl
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from hectl import output, text
from hectl.errors import LockHeld
from hectl.storage import records

EVIL = "a\x1b]0;pwned\x07b\rc\u202ed\x9be|f"
SEEN = "a\\x1b]0;pwned\\x07b\\rc\\u202ed\\x9be|f"  # how it shows: every character visible
NEWLINE_HOST = "h2\nHECTL OK - all fine"


def raw_controls(out: str) -> list[str]:
    """Characters of ``out`` that a terminal would act on, besides the newlines between lines."""
    return [c for c in out if not c.isprintable() and c != "\n"]


@pytest.fixture
def forged(domain: Domain) -> Domain:
    """Host 2 with a newline in its hostname and escapes in its engine detail, reason and details;
    host 3 named with escapes and stamped a year ahead; global maintenance set by and for escapes."""
    domain.publish(1, vm="up", health="good")
    domain.publish(2, hostname=NEWLINE_HOST, detail=EVIL, reason=EVIL, details=(EVIL, "x" * 3000))
    domain.publish(3, hostname=f"h3{EVIL}", vm="up", health="good", wall_time=time.time() + 365 * 86400)
    domain.store().write_global(records.GlobalRecord(seq=1, maintenance=True, reason=EVIL, set_by=EVIL, set_at=time.time()))
    return domain


def test_escape() -> None:
    assert text.escape("h1.example ünïcode 日本") == "h1.example ünïcode 日本"
    assert text.escape(EVIL) == SEEN
    assert text.escape("\0\t\n\x7f\x85\xa0\u200b\u2028\u2066\ufeff\U000e0001") == (
        "\\x00\\t\\n\\x7f\\x85\\xa0\\u200b\\u2028\\u2066\\ufeff\\U000e0001"
    )
    assert text.escape(text.escape(EVIL)) == SEEN  # idempotent: layers may escape again


def test_nagios_line_is_one_bounded_line_with_whole_perfdata() -> None:
    perf = "live_hosts=1;;;0 time=0.1s"
    line = text.nagios_line("HECTL OK", ["x|y\n" * 2000, "second"], "1/1 hosts live", perf, limit=300)
    assert len(line.encode()) <= 300 and line.isprintable() and line.endswith(f"…; 1 more; 1/1 hosts live | {perf}")
    assert line.startswith("HECTL OK - x/y\\nx/y")
    many = text.nagios_line("HECTL WARNING", [f"host {i} ünïcode-stale" for i in range(1000)], "0/1000 hosts live", perf)
    assert len(many.encode()) <= text.NAGIOS_LIMIT < len(many.encode()) + 30
    assert many.endswith(f" more; 0/1000 hosts live | {perf}") and "host 0 ünïcode-stale; host 1 " in many
    assert text.nagios_line("LIVELINESS OK", ["fine"], perf="t=1s") == "LIVELINESS OK - fine | t=1s"


def test_vm_status_table(forged: Domain) -> None:
    res = run_hectl(["vm-status"], env=forged.env)
    assert res.returncode == 0, res.stderr
    assert raw_controls(res.stdout) == []
    assert f"set by {SEEN} at" in res.stdout and f"reason: {SEEN} !!" in res.stdout
    (row2,) = [line for line in res.stdout.splitlines() if line.startswith("2 ")]
    assert "h2\\nHECTL OK - all fine" in row2 and "(a\\x1b]0;pwned\\x07b\\rc\\u202ed\\x9be|f)" in row2
    (row3,) = [line for line in res.stdout.splitlines() if line.startswith("3 ")]
    assert f"h3{SEEN}" in row3 and row3.endswith("STALE: clock-skew")


def test_vm_status_json_is_ascii_and_keeps_the_text(forged: Domain) -> None:
    for args in (["vm-status", "--json"], ["vm-status", "--format", "json"]):
        res = run_hectl(args, env=forged.env)
        assert res.returncode == 0 and res.stdout.isascii(), res.stderr
        data = json.loads(res.stdout)
        hosts = {h["host_id"]: h for h in data["hosts"]}
        assert hosts[2]["hostname"] == NEWLINE_HOST and hosts[2]["engine"]["reason"] == EVIL  # JSON keeps the data exact
        assert (hosts[3]["live"], hosts[3]["stale_reason"], hosts[3]["age_s"]) == (False, "clock-skew", None)
        assert hosts[3]["clock_skew_s"] > 364 * 86400 and data["summary"]["engine_up_on"] == [1]


def test_vm_status_check(forged: Domain) -> None:
    for args in (["vm-status", "--check"], ["-q", "vm-status", "--check", "--host-id", "2", "--host-id", "3"]):
        res = run_hectl(args, env=forged.env)
        assert res.returncode == 1, res.stdout + res.stderr  # WARNING: global maintenance, clock skew
        (line,) = res.stdout.splitlines()
        assert res.stdout == line + "\n" and line.isprintable() and line.count("|") == 1
        assert "h3a\\x1b]0;pwned\\x07b\\rc\\u202ed\\x9be/f) clock 31536" in line
    res = run_hectl(["vm-status", "--check", "--json"], env=forged.env)
    assert res.stdout.isascii() and json.loads(res.stdout)["line"].isprintable()


def test_check_of_a_dead_host_stamped_in_the_future_is_critical(domain: Domain) -> None:
    domain.publish(1)
    domain.publish(2, vm="up", health="good", wall_time=time.time() + 365 * 86400)
    res = run_hectl(["vm-status", "--check"], env=domain.env)
    assert res.returncode == 2 and res.stdout.startswith("HECTL CRITICAL - engine not up on any live host"), res.stdout


def test_check_of_garbage_metadata_is_one_bounded_line(domain: Domain) -> None:
    garbage = bytes(range(256)) * (records.METADATA_SIZE // 256 + 1)
    with open(domain.app().backend().paths().metadata, "r+b") as f:
        f.write(garbage[: records.METADATA_SIZE])  # every slot corrupt: the line used to be 47 KB
    res = run_hectl(["vm-status", "--check"], env=domain.env)
    (line,) = res.stdout.splitlines()
    assert res.returncode == 2 and len(line.encode()) <= text.NAGIOS_LIMIT, len(line)
    assert " more; 0/2000 hosts live | live_hosts=0;;;0 stale_hosts=2000;;;0 problem_slots=2000;;;0 " in line


def test_explain(forged: Domain) -> None:
    res = run_hectl(["explain"], env=forged.env)
    assert res.returncode == 0 and raw_controls(res.stdout) == [], res.stderr
    (row2,) = [line for line in res.stdout.splitlines() if line.startswith("2 ")]
    (row3,) = [line for line in res.stdout.splitlines() if line.startswith("3 ")]
    assert "h2\\nHECTL OK - all fine" in row2 and f"h3{SEEN}" in row3 and " clock-skew " in row3


def test_metrics_labels_are_escaped_and_parse(forged: Domain) -> None:
    res = run_hectl(["metrics"], env=forged.env)
    assert res.returncode == 0 and raw_controls(res.stdout) == [], res.stderr
    families = {f.name: list(f.samples) for f in text_string_to_metric_families(res.stdout)}
    names = {s.labels["host_id"]: s.labels["hostname"] for s in families["hectl_host_live"]}
    assert names == {"1": "host1.example", "2": "h2\\nHECTL OK - all fine", "3": f"h3{SEEN}"}
    live = {s.labels["host_id"]: s.value for s in families["hectl_host_live"]}
    assert live == {"1": 1.0, "2": 1.0, "3": 0.0}


def test_completion_offers_escaped_hostnames(forged: Domain) -> None:
    assert run_hectl(["vm-status", "--json"], env=forged.env).returncode == 0  # fills the completion cache
    res = run_hectl(["__complete", "host-ids", ""], env=forged.env)
    assert res.returncode == 0 and raw_controls(res.stdout.replace("\t", "")) == []
    assert res.stdout.splitlines() == ["1\thost1.example", "2\th2\\nHECTL OK - all fine", f"3\th3{SEEN}"]


def test_error_messages_quoting_a_record_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse() -> int:  # as vm-start refuses: "the engine VM runs on host 2 (<its hostname>) per its record"
        raise LockHeld(f"the engine VM runs on host 2 (h2{EVIL}) per its record", hint=EVIL)

    assert output.run(refuse, lambda: 0) == 5
    output.warn(f"host 2 ({EVIL})", quiet=False)
    output.note(f"host 2 ({EVIL})", quiet=False)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"hectl: error: the engine VM runs on host 2 (h2{SEEN}) per its record",
        f"hectl: hint: {SEEN}",
        f"hectl: warning: host 2 ({SEEN})",
        f"hectl: host 2 ({SEEN})",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["vm-status", "--check", "--host-id", "x"],  # the fast path hands this to click
        ["vm-status", "--check", "--host-id", "0"],
        ["vm-status", "--check", "--bogus"],
        ["vm-status", "--check", "--timeout", "0"],
        ["vm-status", "--check", "--format", "yaml"],
        ["--bogus", "vm-status", "--check"],
        ["check-liveliness", "--nagios", "--timeout", "x"],
        ["check-liveliness", "--nagios", "--bogus"],
    ],
)
def test_usage_errors_of_nagios_checks_are_unknown(args: list[str], domain: Domain) -> None:
    res = run_hectl(args, env=domain.env)
    prefix = "HECTL" if "vm-status" in args else "LIVELINESS"
    assert res.returncode == 3, res.stdout + res.stderr
    (line,) = res.stdout.splitlines()
    assert line.startswith(f"{prefix} UNKNOWN - usage: ") and line.isprintable() and "|" not in line
    res = run_hectl([*args, "--json"], env=domain.env)
    assert res.returncode == 3 and json.loads(res.stdout)["status"] == "UNKNOWN"


def test_usage_errors_without_check_stay_exit_2(domain: Domain) -> None:
    res = run_hectl(["vm-status", "--host-id", "x"], env=domain.env)
    assert res.returncode == 2 and res.stdout == "" and res.stderr.startswith("hectl vm-status: error: ")


@pytest.mark.parametrize("reason", ["a\x1b]0;x\x07", "cr\r", "bidi\u202e", "csi\x9b", "zw\u200b", "ls\u2028"])
def test_set_maintenance_refuses_control_and_bidi_characters(reason: str, domain: Domain) -> None:
    res = run_hectl(["set-maintenance", "--mode", "global", "--reason", reason], env=domain.env)
    assert res.returncode == 2 and "one line of printable text" in res.stderr and raw_controls(res.stderr) == []
    assert run_hectl(["vm-status", "--json"], env=domain.env).stdout.count('"active":false') == 1


def test_set_maintenance_accepts_a_pipe(domain: Domain) -> None:
    res = run_hectl(["set-maintenance", "--mode", "global", "--reason", "upgrade | phase 2"], env=domain.env)
    assert res.returncode == 0, res.stderr
    line = run_hectl(["vm-status", "--check"], env=domain.env).stdout
    assert "(upgrade / phase 2)" in line and line.count("|") == 1
