"""The one renderer: commands return an ``Output``; this module turns it into text or JSON.

Also the one place where an exception becomes a message on stderr and an exit
code (``run``), shared by the click CLI and the fast paths. Text views and
messages show every string escaped (``hectl.text``): hostnames, reasons and
details come from shared storage. Imports stay light: tabulate is loaded only
when a table is drawn.
"""

from __future__ import annotations

import json
import sys

from hectl.errors import ExitCode, HectlError
from hectl.text import escape, escape_data

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, TextIO

FORMATS = ("table", "json")

# Every JSON output kind and its schema version (docs/schemas/<kind>.schema.json). Adding a field keeps the
# version; renaming, removing or changing the meaning of one bumps it. Each JSON document starts with
# "schema": "hectl.<kind>/<version>" and "schema_version": <version>.
SCHEMA_VERSIONS: dict[str, int] = {
    "vm-status": 1,
    "check": 1,
    "explain": 1,
    "set-maintenance": 1,
    "plugins": 1,
    "vm-action": 1,
    "vm-migrate": 1,
    "liveliness": 1,
    "console-password": 1,
    "vm-config": 1,
    "cluster-config": 1,
    "deploy": 1,
    "repair": 1,
    "simulate": 1,
    "storage-check": 1,
    "storage-connect": 1,
    "fence-check": 1,
    "fence-off": 1,
    "error": 1,
}


class Output:
    """What a command produced: ``kind`` selects the text view; ``data`` is the JSON form."""

    __slots__ = ("data", "exit_code", "fmt", "kind", "quiet_text")

    def __init__(self, kind: str, data: object, fmt: str = "table", exit_code: int = 0, quiet_text: bool = False) -> None:
        self.kind = kind
        self.data = data
        self.fmt = fmt
        self.exit_code = exit_code
        self.quiet_text = quiet_text  # text output is informational only: suppressed by -q


def render(out: Output, pretty: bool = False) -> str:
    """Text for stdout ('' for nothing). JSON is indented when ``pretty`` (a terminal), else one line."""
    if out.fmt == "json":
        version = SCHEMA_VERSIONS[out.kind]
        doc = {"schema": f"hectl.{out.kind}/{version}", "schema_version": version, **out.data}  # type: ignore[dict-item]
        if pretty:
            return json.dumps(doc, indent=2) + "\n"
        return json.dumps(doc, separators=(",", ":")) + "\n"  # 4x faster than indented
    if out.kind == "text":  # already text of its own format (OpenMetrics, the console log)
        return str(out.data["text"])  # type: ignore[index]
    data = escape_data(out.data)  # strings from storage never reach a terminal raw (hectl.text)
    view = _TEXT_VIEWS.get(out.kind)
    return view(data) if view else f"{data}\n"


def emit(out: Output, quiet: bool) -> int:
    if not (quiet and out.quiet_text and out.fmt != "json"):
        text = render(out, pretty=sys.stdout.isatty())
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
    return out.exit_code


def error_text(exc: HectlError) -> str:
    return f"hectl: error: {escape(exc.message)}" + (f"\nhectl: hint: {escape(exc.hint)}" if exc.hint else "")


def emit_error(code: int, message: str, hint: str | None = None) -> None:
    """An error as a JSON document on stdout (with --json; stderr still gets its line)."""
    try:
        name = ExitCode(code).name
    except ValueError:
        name = ExitCode.FAILED.name
    error = {"code": code, "name": name, "message": message, "hint": hint}
    try:
        emit(Output("error", {"error": error}, "json"), quiet=False)
    except OSError:  # stdout is gone: stderr has the message
        return


def is_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether ``stream`` is the journal stream systemd named in ``$JOURNAL_STREAM`` ("DEVICE:INODE")."""
    import os

    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return environ.get("JOURNAL_STREAM") == f"{st.st_dev}:{st.st_ino}"


def _for_stderr(text: str, priority: int) -> str:
    """``text`` with every line prefixed ``<priority>`` when stderr is the journal (sd-daemon(3)), else as is."""
    import os

    return "\n".join(f"<{priority}>{line}" for line in text.split("\n")) if is_journal(sys.stderr, os.environ) else text


def run(fn: Callable[[], int], verbose: Callable[[], int], as_json: Callable[[], bool] = lambda: False) -> int:
    """Call ``fn``; map every exception to a one-line message and an exit code.

    When ``as_json()`` (--json was given), the error is also printed on stdout as a JSON "error" document.
    """
    try:
        return fn()
    except HectlError as exc:
        if verbose():
            import traceback

            traceback.print_exc()
        print(_for_stderr(error_text(exc), 3), file=sys.stderr)  # err
        if as_json():
            emit_error(int(exc.exit_code), exc.message, exc.hint)
        return int(exc.exit_code)
    except KeyboardInterrupt as exc:  # hectl.errors.Interrupted says which signal and what it left behind
        message = getattr(exc, "message", "")
        hint = getattr(exc, "hint", None)
        print("hectl: interrupted" + (f": {message}" if message else ""), file=sys.stderr)
        if hint:
            print(f"hectl: hint: {hint}", file=sys.stderr)
        code = 128 + getattr(exc, "signum", int(ExitCode.INTERRUPTED) - 128)
        if as_json():
            emit_error(code, "interrupted" + (f": {message}" if message else ""), hint)
        return code
    except BrokenPipeError:  # the reader went away (`hectl ... | head`): not worth a message
        _stdout_to_devnull()
        return int(ExitCode.FAILED)
    except StdoutError as exc:  # closed, or a full disk: not a bug
        _stdout_to_devnull()
        print(f"hectl: error: cannot write the output to stdout: {exc.strerror}", file=sys.stderr)
        return int(ExitCode.FAILED)
    except Exception as exc:
        message = f"hectl: internal error: {type(exc).__name__}: {escape(str(exc))}"
        if verbose():
            import traceback

            traceback.print_exc()
        else:
            message += " (a bug: rerun with -v for the traceback)"
        print(_for_stderr(message, 2), file=sys.stderr)  # crit
        if as_json():
            emit_error(
                int(ExitCode.INTERNAL), f"internal error: {type(exc).__name__}: {exc}", "a bug: rerun with -v for the traceback"
            )
        return int(ExitCode.INTERNAL)


class StdoutError(OSError):
    """stdout refused the output (closed, disk full, I/O error): the user's redirection, not a bug."""


class _GuardedStdout:
    """sys.stdout whose write errors are ``StdoutError``; a closed stdout (None) refuses every write."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)

    def isatty(self) -> bool:
        return self._stream is not None and bool(self._stream.isatty())

    def write(self, text: str) -> int:
        return int(self._guarded("write", text))

    def flush(self) -> None:
        if self._stream is not None:  # nothing was written to a closed stdout
            self._guarded("flush")

    def _guarded(self, method: str, *args: object) -> Any:
        if self._stream is None:
            import errno

            raise StdoutError(errno.EBADF, "stdout is closed")
        try:
            return getattr(self._stream, method)(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutError(exc.errno, exc.strerror or str(exc)) from None


def guard_stdout() -> None:
    """Make every later write to stdout fail as ``StdoutError`` (``run`` maps it to one line and exit 1)."""
    if sys.stdout is None:
        _stdout_to_devnull()  # keep fd 1 from being reused by the next open()
    sys.stdout = _GuardedStdout(sys.stdout)


def _stdout_to_devnull() -> None:
    """Point fd 1 at /dev/null, so that the flush at interpreter exit neither fails nor prints a traceback."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)


def warn(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"hectl: warning: {escape(message)}", file=sys.stderr)


def note(message: str, quiet: bool) -> None:
    """Progress on stderr (stdout stays the command's result)."""
    if not quiet:
        print(f"hectl: {escape(message)}", file=sys.stderr, flush=True)


class WaitProgress:
    """A long wait on stderr: on a terminal one status line updated in place, else a line every ``every`` seconds.

    Called with what is awaited, the seconds elapsed (from the caller's clock) and the limit; ``done`` clears
    the terminal line. Silent when ``quiet``.
    """

    def __init__(self, stream: TextIO, quiet: bool, every: float = 5.0) -> None:
        self.stream = stream
        self.quiet = quiet
        self.every = every
        self.tty = stream.isatty()
        self.last: float | None = None  # elapsed at the last line written
        self.shown = False  # a terminal status line is on screen

    def __call__(self, what: str, elapsed: float, limit: float) -> None:
        if self.quiet:
            return
        line = f"hectl: waiting for {what}: {elapsed:.0f} s of {limit:g} s"
        if self.tty:
            self.stream.write(f"\r\x1b[K{line}")  # carriage return, erase the line, rewrite it
            self.shown = True
        elif self.last is None or elapsed - self.last >= self.every:
            self.stream.write(line + "\n")
            self.last = elapsed
        else:
            return
        self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


# --- text views ------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[object]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _short(text: str, limit: int = 40) -> str:
    """Keep table cells narrow (--json has the full text)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _vm_status_text(data: Any) -> str:
    lines: list[str] = []
    g = data["global_maintenance"]
    if g["active"]:
        until = f"expires {g['expires_at']}" if g["expires_at"] else "NO EXPIRY"
        lines += [
            "!! GLOBAL MAINTENANCE: the HA agents will not start, stop or move the engine !!",
            f"!! set by {g['set_by']} at {g['set_at']}, {until}" + (f"; reason: {g['reason']}" if g["reason"] else "") + " !!",
            "",
        ]
    elif g["expired"]:
        lines += [f"(global maintenance expired at {g['expires_at']}; no longer in force)", ""]
    if g["record"] not in ("valid", "empty"):
        lines += [f"!! global record {g['record']} ({g.get('problem', '')}): maintenance state unknown !!", ""]
    if (data.get("cluster_config") or {}).get("problem"):
        lines += [f"!! cluster configuration: {data['cluster_config']['problem']} !!", ""]
    rows = []
    for h in data["hosts"]:
        eng = h["engine"]
        engine = "-"
        if eng:  # e.g. "up/good [running, tcg]"
            engine = f"{eng['vm']}/{eng['health']}" + (f" [{_short(eng['detail'], 24)}]" if eng["detail"] else "")
            engine += f" ({_short(eng['reason'])})" if eng["reason"] else ""
        maint = "-" if h["local_maintenance"] is None else ("yes" if h["local_maintenance"] else "no")
        if h.get("local_maintenance_pending") is not None:
            maint += f" (-> {'yes' if h['local_maintenance_pending'] else 'no'}, pending)"
        status = "live" if h["live"] else f"STALE: {h['stale_reason']}"
        if h["problem"]:
            status += f" ({h['problem']})"
        age = "-" if h["age_s"] is None else f"{h['age_s']:.0f}s"
        rows.append(
            [
                f"{h['host_id']}{'*' if h['this_host'] else ''}",
                _dash(h["hostname"]),
                _dash(h["state"]),
                _dash(h["score"]),
                engine,
                maint,
                age,
                status,
            ]
        )
    lines.append(_table(rows, ["id", "hostname", "state", "score", "engine", "local-maint", "age", "status"]))
    for h in data["hosts"]:
        for f in h.get("fencing", ()):
            verb = "fenced" if f["result"] == "confirmed" else "FAILED to fence"
            lines.append(f"host {f['by_host_id']} {verb} host {f['host_id']} at {f['at']}: {f['reason']}")
    s = data["summary"]
    agent = data["local_agent"]
    agent_text = {"running": "running", "silent": "SILENT", "absent": "not running"}[agent["status"]]
    st = data["storage"]
    lines += [
        "",
        f"* this host. {s['live']}/{s['hosts']} hosts live; engine up on: " + (", ".join(map(str, s["engine_up_on"])) or "none"),
        f"liveness judged by: {data['liveness']['source']} (window {data['liveness']['window_s']:g}s); local agent: {agent_text}",
        f"storage: {st.get('type', '?')} {st.get('root', '')}, read {st['read_ms']:.1f} ms"
        + ("" if st["direct_io"] else ", buffered I/O (O_DIRECT refused)"),
    ]
    if st.get("problem"):
        lines.append(f"!! {st['problem']} !!")
    return "\n".join(lines) + "\n"


def _check_text(data: Any) -> str:
    return str(data["line"]) + "\n"


def _maintenance_text(data: Any) -> str:
    if not data["changes"]:
        return f"no change: maintenance mode '{data['mode']}' was already in effect\n"
    out = []
    for c in data["changes"]:
        scope = "global maintenance" if c["scope"] == "global" else f"local maintenance of host {c['host_id']}"
        state = "ON" if c["new_mode"] != "none" else "OFF"
        line = f"{scope}: {state}"
        if c["new_mode"] != "none":
            line += f" (expires {c['expires_at']})" if c["expires_at"] else " (no expiry)"
            if c["reason"]:
                line += f"; reason: {c['reason']}"
        out.append(line)
    if data.get("storage_action"):
        out.append(f"storage: {data['storage_action']}")
    return "\n".join(out) + "\n"


def _plugins_text(data: Any) -> str:
    rows = [[p["name"], p["kind"], _dash(p["version"]), ", ".join(p["hooks"]) or "-", _dash(p["error"])] for p in data["plugins"]]
    text = _table(rows, ["plugin", "kind", "version", "hooks", "error"])
    backends = [[b["name"], b["plugin"]] for b in data["backends"]]
    return text + "\n\n" + _table(backends, ["backend", "from plugin"]) + "\n"


def _storage_check_text(data: Any) -> str:
    st = data["storage"]
    lines = [f"storage {st['type']} at {st.get('root', '?')}: {data['status'].upper()}"]
    for f in data["findings"]:
        lines.append(f"  [{f['severity'].upper():4}] {f['what']}")
        if f["why"]:
            lines.append(f"         why: {f['why']}")
        if f["fix"]:
            lines.append(f"         fix: {f['fix']}")
    s = data["sanlock"]
    lines.append(
        f"sanlock at io_timeout {s['io_timeout']:g} s: renews every {s['renew']:g} s, warns after {s['warn']:g} s, "
        f"kills the engine VM after {s['kill']:g} s, frees its leases {s['dead']:g} s after the last renewal"
    )
    if not data["stalls"]:
        lines.append("stalls: none reported by the backend")
    fo = data["failover"]
    lines.append(
        f"failover after the engine host dies: the engine VM starts elsewhere after {fo['min_s']:g}-{fo['max_s']:g} s, "
        f"then boots to healthy (the agent gives it up to {fo['boot_limit_s']:g} s, [ha] starting)"
    )
    return "\n".join(lines) + "\n"


def _fence_check_text(data: Any) -> str:
    rows = [
        [d["host_id"], _short(d["device"]), "yes" if d["works"] else "NO", d["power"], _short(d["problem"], 60) or "-"]
        for d in data["devices"]
    ]
    state = "enabled" if data["enabled"] else "disabled ([fencing] enabled = no)"
    return _table(rows, ["host", "device", "works", "power", "problem"]) + f"\nfencing by the agents: {state}\n"


def _fence_off_text(data: Any) -> str:
    line = f"host {data['host_id']} is off: {data['device']} confirmed it in {data['elapsed_s']:.1f} s"
    if data["host_id_freed"]:
        return line + "; its sanlock host id is free, so its leases can be taken now\n"
    return line + f"; its sanlock host id was not freed ({data['free_problem']}): its leases free up after host_dead_seconds\n"


def _storage_connect_text(data: Any) -> str:
    st = data["storage"]
    where = f"{st['type']} at {st.get('root', '?')}"
    if data["changed"]:
        return f"{data['action']}ed {where}\n"
    state = "connected" if data["connected"] else "not connected"
    return f"{data['action']}: nothing to do, {where} is {state}\n"


def _explain_text(data: Any) -> str:
    a = data["agent"]
    lines = [f"host {data['host_id']} ({data['hostname']})"]
    if data["score"] is None:
        lines.append(f"local agent {a['status']}: no state, score or timers to explain (is 'hectl ha run' running?)")
    else:
        lines.append(f"state {a['state']} for {a['state_age_s']:.0f} s: {a['reason']}")
        lines.append(f"score {data['score']['total']}:")
        lines += [f"  {term}" for term in data["score"]["terms"]]
        lines.append("timers:" if data["timers"] else "timers: none running")
        lines += [f"  in {t['in_s']:.0f} s: {t['then']}" for t in data["timers"]]
        st = data["storage"] or {}
        read = f"read {st['read_ms']:.1f} ms" if st.get("read_ok") else f"read FAILED: {st.get('read_error', '?')}"
        write = f"write {st['write_ms']:.1f} ms" if st.get("write_ok") else f"write FAILED: {st.get('write_error', '?')}"
        lines.append(f"storage (last cycle): {read}, {write}" + ("" if st.get("direct_io", True) else ", buffered I/O"))
        if st.get("metadata_problem"):
            lines.append(f"storage problem: {st['metadata_problem']}")
    vm = data["vm"]
    engine = vm["engine"]
    if engine:
        lines.append(f"engine VM here: {engine['vm']}, health {engine['health']} ({_dash(engine['detail'])})")
    lines.append(f"accelerator for a start here: {vm['accelerator']} ({vm['accelerator_reason']})")
    if data["global_maintenance"]:
        lines.append("GLOBAL MAINTENANCE is on: the agents leave the engine alone")
    for f in data["fencing"]:
        verb = "fenced" if f["result"] == "confirmed" else "FAILED to fence"
        lines.append(f"host {f['by_host_id']} {verb} host {f['host_id']} at {f['at']}: {f['reason']}")
    rows = [
        [
            h["host_id"],
            _dash(h["hostname"]),
            _dash(h["state"]),
            _dash(h["score"]),
            h["record"],
            _dash(h["record_age_s"]),
            h["sanlock"],
        ]
        for h in data["hosts"]
    ]
    window = f"record (changes within {data['liveness_window_s']:g} s?)"
    lines += ["", _table(rows, ["id", "hostname", "state", "score", window, "age", "sanlock host-id lease"])]
    lines += [f"host {h['host_id']} is ineligible: {h['score_ignored']}" for h in data["hosts"] if h.get("score_ignored")]
    return "\n".join(lines) + "\n"


def _liveliness_text(data: Any) -> str:
    if data["healthy"]:
        return f"engine healthy: {data['detail']} (HTTP {data['status']} in {data['elapsed']:.3f} s from {data['url']})\n"
    return f"engine NOT healthy: {data['detail']} ({data['url']}, after {data['elapsed']:.3f} s)\n"


def _vm_action_text(data: Any) -> str:
    words = {
        "started": "started",
        "already-running": "was already running",
        "resumed": "was paused and now runs again",
        "requested": "asked to shut down (ACPI power button)",
        "shut-down": "shut down by the guest",
        "forced": "did not shut down in time and was powered off",
        "powered-off": "powered off",
    }
    line = f"engine VM {data['vm']} {words.get(data['result'], data['result'])} on host {data['host_id']}"
    if data["action"] == "start":
        line += f" ({data.get('accel') or '?'}{', paused' if data['paused'] else ''}; state {data['state']}"
        line += ", healthy)" if data.get("healthy") else ")"
    return f"{line} in {data['elapsed_s']:.1f} s\n"


def _vm_migrate_text(data: Any) -> str:
    downtime = "unknown" if data["downtime_ms"] is None else f"{data['downtime_ms']} ms"
    line = f"engine VM {data['vm']} migrated from host {data['host_id']} to host {data['to_host_id']} ({data['to_hostname']})"
    line += f" in {data['migration_s']:.1f} s, paused {downtime}"
    if any(p["phase"] == "healthy" for p in data["phases"]):
        line += "; taken over and healthy"
    return f"{line}; {data['elapsed_s']:.1f} s in all\n"


def _console_password_text(data: Any) -> str:
    return f"console password set for {data['vm']}: connect to {data['address']} before {data['expires_at']}\n"


def _vm_config_text(data: Any) -> str:
    rows = [[key, "" if value is None else value] for key, value in data["spec"].items()]
    text = _table(rows, ["key", "value"]) + "\n"
    for problem in data.get("problems", []):
        text += f"problem: {problem}\n"
    return text


def _cluster_config_text(data: Any) -> str:
    rows = [[f"{section}.{key}", value] for section, keys in data["sections"].items() for key, value in keys.items()]
    signed = f", signed with cluster key {data['key_id']}" if data.get("key_id") else ""
    return f"cluster configuration version {data['version']}{signed}\n" + (_table(rows, ["key", "value"]) + "\n" if rows else "")


def _deploy_text(data: Any) -> str:
    rows = [
        [row["step"], row["state"], _dash(row.get("seconds")), _short(str(row.get("detail") or ""), 70)] for row in data["steps"]
    ]
    text = _table(rows, ["step", "state", "seconds", "detail"]) + "\n"
    if data["result"] != "planned":
        text += f"{data['mode']}: {data['result']}" + (f" in {data['seconds']:.1f} s" if "seconds" in data else "") + "\n"
    return text


def _repair_text(data: Any) -> str:
    facts = ", ".join(f"{k} {v}" for k, v in data.items() if k not in ("action", "done", "audit_problem"))
    head = "done" if data["done"] else "would do (add --yes to do it)"
    return f"{data['action']}: {head}: {facts}\n" + (f"warning: {data['audit_problem']}\n" if data.get("audit_problem") else "")


def _simulate_text(data: Any) -> str:
    return "\n".join(data["lines"]) + "\n"


_TEXT_VIEWS: dict[str, Callable[[Any], str]] = {
    "simulate": _simulate_text,
    "explain": _explain_text,
    "text": lambda data: data["text"],
    "vm-status": _vm_status_text,
    "check": _check_text,
    "set-maintenance": _maintenance_text,
    "plugins": _plugins_text,
    "vm-action": _vm_action_text,
    "vm-migrate": _vm_migrate_text,
    "liveliness": _liveliness_text,
    "console-password": _console_password_text,
    "vm-config": _vm_config_text,
    "cluster-config": _cluster_config_text,
    "deploy": _deploy_text,
    "repair": _repair_text,
    "storage-check": _storage_check_text,
    "storage-connect": _storage_connect_text,
    "fence-check": _fence_check_text,
    "fence-off": _fence_off_text,
}
