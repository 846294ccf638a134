#!/usr/bin/env python3
"""Start-up benchmark of the hectl CLI: fast paths, click path and TAB completion.

Run it with the project's venv interpreter (it imports hectl to build the test domain):

    /work/main/.venv/bin/python bench/bench_cli.py [--runs N] [--json PATH]

1. Builds a real localfs domain in a temporary directory: 250 host records published
   through the public API (varied states, engine up on host 1 only, every host live),
   a config file and the completion cache. Removed at the end (unless --keep).
2. Times every variant as a real process, round-robin in one run, the order shuffled
   each round, so that the noise of this machine hits all variants alike: the bare
   interpreter, ``vm-status --json|--check``, the table, ``--help``, ``__complete``,
   and one TAB through completions/hectl.bash when it exists (one bash process sources
   it once and times the registered function with $EPOCHREALTIME).
3. Reports median/p90 and ratios to the bare interpreter of the same run and checks
   the targets (PASS/MISS). The exit status is 0 either way: this is a benchmark.
4. Profiles imports with ``python -X importtime`` and lists the heavy modules (click,
   typing...) that the fast path imports: there should be none.
5. Writes every figure as JSON to bench/results/bench_cli-<timestamp>.json or --json PATH.

A variant that answers wrongly (exit status, host count, completion values) stops the
run with exit status 2: a fast wrong answer is no result. bench/README.md explains
how to read the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
VENV_BIN = VENV / "bin"
PYTHON = str(VENV_BIN / "python")
HECTL = str(VENV_BIN / "hectl")
DEFAULT_COMPLETION_SCRIPT = REPO / "completions" / "hectl.bash"
RESULTS_DIR = REPO / "bench" / "results"

DEFAULT_HOSTS = 250
ENGINE_HOST = 1  # the one host with the engine up; also "this host" in the config
TAB_DYNAMIC = "TAB vm-status --host-id"
TAB_STATIC = "TAB set-maintenance --mode"
COMPLETE = "__complete host-ids"
# target -> (variant, largest acceptable ratio to the bare interpreter); None: the TAB, or __complete without a script
TARGETS: dict[str, tuple[str | None, float]] = {
    "vm-status --json": ("vm-status --json", 4.0),
    "completion": (None, 4.0),
}
# Modules that the fast path (vm-status --json|--check, __complete) must not import at all.
HEAVY_MODULES = ("click", "pluggy", "tabulate", "importlib.metadata", "dataclasses", "inspect", "typing")


class BenchError(Exception):
    """The benchmark cannot produce a valid result (a wrong answer, a missing tool...)."""


# --- the test domain -------------------------------------------------------------------------

# (state, vm, health, detail, reason) of the hosts other than ENGINE_HOST; none makes --check warn.
OTHER_HOST_STATES = (
    ("EngineDown", "down", "unknown", "", ""),
    ("EngineDown", "down", "unknown", "shut off", ""),
    ("EngineDown", "down", "unknown", "", "engine is up on another host"),
    ("EngineUnexpectedlyDown", "down-unexpected", "bad", "crashed", "engine VM died; retry in 600 s"),
    ("EngineMaybeAway", "unknown", "unknown", "", "waiting for the engine host's next record"),
    ("ReinitializeFSM", "unknown", "unknown", "", "agent restarted"),
    ("EngineStop", "down", "unknown", "shutting down", "giving the engine back to a better host"),
)


def build_domain(base: Path, nhosts: int, seed: int) -> Path:
    """A localfs domain with ``nhosts`` live hosts (ids 1..nhosts), the engine up on ENGINE_HOST; returns its config."""
    try:
        from hectl.clock import SystemClock
        from hectl.context import AppContext
        from hectl.localstate import update_completion_cache
        from hectl.storage import records
        from hectl.storage.domain import init_domain
    except ImportError as exc:
        raise BenchError(f"cannot import hectl ({exc}); run this with {PYTHON}") from None

    root, state = base / "domain", base / "state"
    root.mkdir(parents=True)
    config = base / "hectl.conf"
    # A one-hour liveness window keeps every host live for the whole run, so --check must say OK.
    config.write_text(
        f"[host]\nid = {ENGINE_HOST}\nhostname = {hostname(ENGINE_HOST)}\n\n"
        f"[storage]\ntype = localfs\npath = {root}\ntimeout = 5\n\n"
        f"[paths]\nstate_dir = {state}\n\n"
        "[timeouts]\nliveness_window = 3600\nagent_silent_after = 30\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HECTL_")}
    app = AppContext(config_path=str(config), environ=environ)
    init_domain(app.backend(), app.clock, 5.0)
    store = app.store()
    rng = random.Random(seed)
    now = SystemClock().wall()
    hosts: list[list[object]] = []
    for host_id in range(1, nhosts + 1):
        if host_id == ENGINE_HOST:
            state_name, vm, health, detail, reason = "EngineUp", "up", "good", "running", ""
            score = 3400
        else:
            state_name, vm, health, detail, reason = rng.choice(OTHER_HOST_STATES)
            score = rng.choice((3400, 3400, 3400, 2400, 1800, 0))
        rec = records.HostRecord(
            host_id=host_id,
            seq=rng.randrange(1, 10**6),
            wall_time=now - rng.uniform(0.0, 25.0),
            score=score,
            state=state_name,
            engine=records.EngineStatus(vm, health, detail, reason),
            hostname=hostname(host_id),
        )
        rec = rec._replace(details=records.host_details(rec, (f"bench host {host_id} of {nhosts}",)))
        store.write_host(rec)
        hosts.append([host_id, rec.hostname])
    update_completion_cache(str(state), hosts=hosts)  # exactly what vm-status writes, so it never rewrites it
    return config


def hostname(host_id: int) -> str:
    return f"hv{host_id:04d}.rack{host_id % 12:02d}.dc1.example.com"


def child_env(config: Path, pycache: str | None) -> dict[str, str]:
    """The caller's environment for the children: HECTL_CONFIG set, the venv's bin first on PATH.

    With ``pycache``, the caller's PYTHON* variables are dropped (PYTHONDONTWRITEBYTECODE would make
    every run compile hectl from source) and bytecode is cached under that private prefix, as on an
    installed system, without writing into the source tree.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HECTL_")}
    if pycache is not None:
        env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
        env["PYTHONPYCACHEPREFIX"] = pycache
    env["HECTL_CONFIG"] = str(config)
    env["LC_ALL"] = "C"  # bash's $EPOCHREALTIME uses the locale's decimal point
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # the completion script runs `hectl`
    return env


def editable_finder() -> str | None:
    """The name of a setuptools import-hook editable finder in the venv's site-packages, if there is one.

    ``site`` would import it (and pathlib, re, urllib.parse...) in every process of the venv, including
    ``python -c pass``: the baseline would be inflated (about 2x) and hectl's own imports pre-paid.
    scripts/install.sh installs with ``editable_mode=compat`` (a plain path .pth) to avoid it.
    """
    for site in (VENV / "lib").glob("python3*/site-packages"):
        for f in sorted(site.glob("__editable__*")):
            if "finder" in f.name or (f.suffix == ".pth" and any(ln.startswith("import") for ln in f.read_text().splitlines())):
                return f.name
    return None


# --- validators: a wrong answer stops the benchmark ----------------------------------------------

Check = Callable[[str, int, str, str], None]


def _fail(name: str, why: str, out: str = "", err: str = "") -> None:
    detail = ""
    if err.strip():
        detail += "\n  stderr: " + err.strip()[-800:]
    if out.strip():
        detail += "\n  stdout: " + out.strip()[:400]
    raise BenchError(f"{name}: {why}{detail}")


def check_exit0(name: str, code: int, out: str, err: str) -> None:
    if code != 0:
        _fail(name, f"exit status {code}, expected 0", out, err)


def check_help(name: str, code: int, out: str, err: str) -> None:
    check_exit0(name, code, out, err)
    if "vm-status" not in out:
        _fail(name, "the help does not list vm-status", out, err)


def checks_for(nhosts: int) -> dict[str, Check]:
    """Validators of the outputs that depend on the number of hosts."""

    def vm_status_json(name: str, code: int, out: str, err: str) -> None:
        check_exit0(name, code, out, err)
        try:
            data = json.loads(out)
        except ValueError as exc:
            _fail(name, f"stdout is not JSON ({exc})", out, err)
        hosts = data.get("hosts") if isinstance(data, dict) else None
        if not isinstance(hosts, list) or len(hosts) != nhosts or data["summary"]["hosts"] != nhosts:
            _fail(name, f"the JSON has {len(hosts) if isinstance(hosts, list) else 'no'} hosts, expected {nhosts}", out, err)
        if data["summary"]["engine_up_on"] != [ENGINE_HOST]:
            _fail(name, f"engine_up_on is {data['summary']['engine_up_on']}, expected [{ENGINE_HOST}]", out, err)

    def vm_status_check(name: str, code: int, out: str, err: str) -> None:
        check_exit0(name, code, out, err)
        if not out.startswith("HECTL OK - ") or f" {nhosts}/{nhosts} hosts live" not in out:
            _fail(name, f"expected 'HECTL OK - ... {nhosts}/{nhosts} hosts live'", out, err)

    def vm_status_table(name: str, code: int, out: str, err: str) -> None:
        check_exit0(name, code, out, err)
        if f" {nhosts}/{nhosts} hosts live" not in out or len(out.splitlines()) < nhosts + 2:
            _fail(name, f"the table does not show {nhosts} live hosts", out, err)

    def complete(name: str, code: int, out: str, err: str) -> None:
        check_exit0(name, code, out, err)
        problem = host_ids_problem([line.split("\t", 1)[0] for line in out.splitlines()], nhosts)
        if problem:
            _fail(name, problem, out, err)

    return {"json": vm_status_json, "check": vm_status_check, "table": vm_status_table, "complete": complete}


def host_ids_problem(values: list[str], nhosts: int) -> str | None:
    got = sorted({v.strip() for v in values if v.strip()}, key=lambda s: (len(s), s))
    if got != [str(h) for h in range(1, nhosts + 1)]:
        return f"{len(got)} distinct host ids offered (expected 1..{nhosts}): {values[:5]}"
    return None


def modes_problem(values: list[str]) -> str | None:
    if sorted(v.strip() for v in values) != ["global", "local", "none"]:
        return f"offered {values!r}, expected global, local, none"
    return None


# --- running and timing --------------------------------------------------------------------------


@dataclasses.dataclass
class Variant:
    name: str
    what: str  # one line for humans
    argv: list[str] | None = None  # a process; None: a TAB through the bash driver
    check: Check | None = None
    tab_words: list[str] | None = None  # TAB variants: COMP_WORDS, the last one being completed
    tab_check: Callable[[list[str]], str | None] | None = None  # TAB variants: COMPREPLY -> problem
    wall_ms: list[float] = dataclasses.field(default_factory=list)
    cpu_ms: list[float] = dataclasses.field(default_factory=list)


def spawn_timed(argv: list[str], env: dict[str, str], out_path: str, err_path: str) -> tuple[float, float, int]:
    """Run ``argv`` with stdin /dev/null and stdout/stderr to files: (wall ms, child CPU ms, exit status)."""
    fd_out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, fd_out, 1),
            (os.POSIX_SPAWN_DUP2, fd_err, 2),
        ]
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
    finally:
        os.close(fd_out)
        os.close(fd_err)
    return (t1 - t0) / 1e6, (usage.ru_utime + usage.ru_stime) * 1000.0, os.waitstatus_to_exitcode(status)


# Read by a bash started with `bash -s ERRFILE SCRIPT`; then one `__bench_tab WORD...` line per TAB.
BASH_DRIVER = r"""
set +o history
__bench_err=$1
source "$2" >>"$__bench_err" 2>&1 || { printf 'SOURCE-FAILED\n'; exit 1; }
__bench_fn=
read -ra __bench_spec <<<"$(complete -p hectl 2>/dev/null)"
for ((__i = 0; __i < ${#__bench_spec[@]}; __i++)); do
    [[ ${__bench_spec[__i]} == -F ]] && __bench_fn=${__bench_spec[__i + 1]}
done
[[ -n $__bench_fn ]] || { printf 'NO-FUNCTION\t%s\n' "${__bench_spec[*]}"; exit 1; }
__bench_tab() {
    local -a __w=("$@")
    COMP_WORDS=("${__w[@]}")
    COMP_CWORD=$((${#__w[@]} - 1))
    COMP_LINE="${__w[*]}"
    COMP_POINT=${#COMP_LINE}
    COMP_TYPE=9
    COMP_KEY=9
    COMPREPLY=()
    local __t0=$EPOCHREALTIME
    "$__bench_fn" "${__w[0]}" "${__w[COMP_CWORD]}" "${__w[COMP_CWORD - 1]}" </dev/null >>"$__bench_err" 2>&1
    local __t1=$EPOCHREALTIME
    local __us=$(( (${__t1%.*} - ${__t0%.*}) * 1000000 + 10#${__t1#*.} - 10#${__t0#*.} ))
    local IFS=$'\x1f'
    printf 'TAB\t%s\t%s\n' "$__us" "${COMPREPLY[*]}"
}
printf 'READY\t%s\n' "$__bench_fn"
"""


class BashTab:
    """One bash process that sourced the completion script once; times one TAB per request."""

    def __init__(self, script: Path, env: dict[str, str], err_path: str) -> None:
        bash = shutil.which("bash")
        if bash is None:
            raise BenchError("bash not found")
        self.err_path = err_path
        with open(err_path, "a") as err:
            self.proc = subprocess.Popen(
                [bash, "--norc", "--noprofile", "-s", err_path, str(script)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                text=True,
                bufsize=1,
            )
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(BASH_DRIVER)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().rstrip("\n")
        if not line.startswith("READY\t"):
            self.close()
            raise BenchError(f"bash could not load {script}: {line or 'no answer'}; {self.err_tail()}")
        self.function = line.split("\t", 1)[1]

    def err_tail(self) -> str:
        try:
            text = Path(self.err_path).read_text()[-800:].strip()
        except OSError:
            text = ""
        return f"bash stderr: {text or '(empty)'}"

    def tab(self, words: list[str]) -> tuple[float, list[str]]:
        """(ms, COMPREPLY) of one TAB at the end of ``words``."""
        assert self.proc.stdin and self.proc.stdout
        quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
        self.proc.stdin.write(f"__bench_tab {quoted}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().rstrip("\n")
        parts = line.split("\t", 2)
        if len(parts) < 2 or parts[0] != "TAB":
            raise BenchError(f"the bash completion driver answered {line!r}; {self.err_tail()}")
        reply = parts[2].split("\x1f") if len(parts) > 2 and parts[2] else []
        return int(parts[1]) / 1000.0, reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.write("exit 0\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def run_once(v: Variant, env: dict[str, str], tmp: Path, bash: BashTab | None, record: bool) -> None:
    if v.argv is not None:
        out_path, err_path = str(tmp / "out"), str(tmp / "err")
        wall, cpu, code = spawn_timed(v.argv, env, out_path, err_path)
        if v.check is not None:
            out = Path(out_path).read_text(errors="replace")
            err = Path(err_path).read_text(errors="replace")
            v.check(v.name, code, out, err)
    else:
        assert bash is not None and v.tab_words is not None
        wall, reply = bash.tab(v.tab_words)
        cpu = math.nan  # the TAB runs inside the long-lived bash: no per-TAB rusage
        problem = v.tab_check(reply) if v.tab_check else None
        if problem:
            raise BenchError(f"{v.name}: {problem}; {bash.err_tail()}")
    if record:
        v.wall_ms.append(wall)
        v.cpu_ms.append(cpu)


# --- statistics ---------------------------------------------------------------------------------


def pctl(values: list[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in 0..100."""
    vals = sorted(values)
    return vals[max(0, math.ceil(q / 100.0 * len(vals)) - 1)]


def summarize(v: Variant, ref: Variant) -> dict[str, Any]:
    cpu = [c for c in v.cpu_ms if not math.isnan(c)]
    median, ref_median = statistics.median(v.wall_ms), statistics.median(ref.wall_ms)
    return {
        "what": v.what,
        "argv": v.argv,
        "tab_words": v.tab_words,
        "n": len(v.wall_ms),
        "median_ms": round(median, 3),
        "p90_ms": round(pctl(v.wall_ms, 90), 3),
        "min_ms": round(min(v.wall_ms), 3),
        "max_ms": round(max(v.wall_ms), 3),
        "mean_ms": round(statistics.fmean(v.wall_ms), 3),
        "stdev_ms": round(statistics.stdev(v.wall_ms), 3) if len(v.wall_ms) > 1 else 0.0,
        "cpu_median_ms": round(statistics.median(cpu), 3) if cpu else None,
        "ratio": round(median / ref_median, 3),
        "paired_ratio": round(statistics.median(a / b for a, b in zip(v.wall_ms, ref.wall_ms, strict=True)), 3),
        "over_baseline_ms": round(median - ref_median, 3),
        "samples_ms": [round(x, 3) for x in v.wall_ms],
        "cpu_samples_ms": [round(x, 3) for x in cpu],
    }


# --- import-time profiles -----------------------------------------------------------------------

_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S.*)$")


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int, str]]:
    """(module, self us, cumulative us, depth, imported by) per line of ``-X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if m:
            rows.append((m.group(4).strip(), int(m.group(1)), int(m.group(2)), (len(m.group(3)) - 1) // 2))
    # Lines come in post-order (children first): a module's importer is the next line one level up.
    parents: list[str] = []
    above: dict[int, str] = {}
    for name, _, _, depth in reversed(rows):
        parents.append(above.get(depth - 1, "") if depth else "")
        above[depth] = name
    return [(*row, parent) for row, parent in zip(rows, reversed(parents), strict=True)]


def importtime_profile(argv: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    """Per module, the median self and cumulative ms over ``runs`` runs; the median total."""
    samples: dict[str, dict[str, Any]] = {}
    totals = []
    for _ in range(runs):
        proc = subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120
        )
        rows = parse_importtime(proc.stderr)
        if proc.returncode != 0 or not rows:
            raise BenchError(f"{' '.join(argv)}: exit status {proc.returncode}, {len(rows)} import lines: {proc.stderr[-500:]}")
        totals.append(sum(r[1] for r in rows) / 1000.0)
        seen: dict[str, list[Any]] = {}
        for name, self_us, cum_us, depth, parent in rows:  # a failed import may appear more than once: add up
            acc = seen.setdefault(name, [0.0, 0.0, depth, parent])
            acc[0] += self_us / 1000.0
            acc[1] += cum_us / 1000.0
        for name, (self_ms, cum_ms, depth, parent) in seen.items():
            s = samples.setdefault(name, {"self": [], "cum": [], "depth": depth, "parent": parent})
            s["self"].append(self_ms)
            s["cum"].append(cum_ms)
    modules = {
        name: {
            "self_ms": round(statistics.median(s["self"]), 3),
            "cum_ms": round(statistics.median(s["cum"]), 3),
            "depth": s["depth"],
            "imported_by": s["parent"] or None,
            "seen_in_runs": len(s["self"]),
        }
        for name, s in samples.items()
    }
    return {"argv": argv, "runs": runs, "total_ms": round(statistics.median(totals), 3), "modules": modules}


def print_profile(title: str, prof: dict[str, Any], base: dict[str, Any] | None, top: int, by_cum: bool = True) -> None:
    mods: dict[str, dict[str, Any]] = prof["modules"]
    extra = {k: v for k, v in mods.items() if base is None or k not in base["modules"]}
    print(f"\n  {title}: {' '.join(prof['argv'][1:])}")
    line = f"    total import time {prof['total_ms']:.1f} ms (sum of self times)"
    if base is not None:
        extra_ms = sum(m["self_ms"] for m in extra.values())
        line += f"; {extra_ms:.1f} ms of it in {len(extra)} modules that the bare interpreter does not import"
    print(line)

    def show(rows: list[tuple[str, dict[str, Any]]]) -> None:
        for name, m in rows:
            mark = "" if base is None or name in extra else "  [bare too]"
            print(f"      {name:<34}{m['cum_ms']:>8.2f}{m['self_ms']:>9.2f}  {m['imported_by'] or '(top level)'}{mark}")

    if by_cum:
        print(f"    top {top} by cumulative time:            cum ms  self ms  imported by")
        show(sorted(mods.items(), key=lambda kv: -kv[1]["cum_ms"])[:top])
    if base is not None:
        n = min(top, 10)
        print(f"    top {n} by self time, not imported by the bare interpreter:")
        show(sorted(extra.items(), key=lambda kv: -kv[1]["self_ms"])[:n])


def self_ms_of(prof: dict[str, Any], package: str) -> float:
    mods: dict[str, dict[str, Any]] = prof["modules"]
    return round(sum(float(m["self_ms"]) for n, m in mods.items() if n == package or n.startswith(package + ".")), 3)


# --- main ---------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Start-up benchmark of the hectl CLI (see bench/README.md).")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per variant (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3; at least 1)")
    ap.add_argument("--json", metavar="PATH", help="write the results here (default bench/results/bench_cli-<timestamp>.json)")
    ap.add_argument("--hosts", type=int, default=DEFAULT_HOSTS, help=f"host records to publish (default {DEFAULT_HOSTS})")
    ap.add_argument("--importtime-runs", type=int, default=5, help="runs per -X importtime profile (default 5; 0: none)")
    ap.add_argument("--top", type=int, default=15, help="modules listed per import profile (default 15)")
    ap.add_argument(
        "--completion-script",
        default=str(DEFAULT_COMPLETION_SCRIPT),
        help="bash completion script to time a TAB with (default completions/hectl.bash; 'none': only 'hectl __complete')",
    )
    ap.add_argument(
        "--bytecode",
        choices=("cached", "env"),
        default="cached",
        help="cached (default): the children get no PYTHON* variables and cache bytecode in a private prefix, as "
        "installed; env: keep the caller's PYTHON* variables (with PYTHONDONTWRITEBYTECODE=1 hectl compiles every run)",
    )
    ap.add_argument("--tmpdir", help="where the temporary domain goes (default: $TMPDIR or /tmp)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the host data and of the order of variants")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (its path is printed)")
    args = ap.parse_args()
    if args.runs < 1 or args.warmup < 1 or not 1 <= args.hosts <= 2000:
        ap.error("--runs and --warmup must be >= 1, --hosts in 1..2000")
    return args


def main() -> int:
    args = parse_args()
    for exe in (PYTHON, HECTL):
        if not os.access(exe, os.X_OK):
            print(f"bench_cli: {exe} not found (is the venv built?)", file=sys.stderr)
            return 2
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        print(f"bench_cli: note: running under {sys.executable}; the timed commands use {PYTHON}", file=sys.stderr)
    base = Path(tempfile.mkdtemp(prefix="hectl-bench-", dir=args.tmpdir))
    try:
        return run(args, base)
    except BenchError as exc:
        print(f"\nbench_cli: FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"(kept {base})")
        else:
            shutil.rmtree(base, ignore_errors=True)


def run(args: argparse.Namespace, base: Path) -> int:
    started = datetime.datetime.now()
    load_before = os.getloadavg()
    print(
        f"hectl CLI benchmark: {args.runs} runs per variant, {args.hosts} hosts, {os.cpu_count()} CPUs, load {load_before[0]:.2f}"
    )
    t = time.perf_counter()
    config = build_domain(base / "dom", args.hosts, args.seed)
    print(f"domain: {args.hosts} host records published in {time.perf_counter() - t:.1f} s ({config.parent})")
    tmp = base / "io"
    tmp.mkdir()

    dropped = sorted(k for k in os.environ if k.startswith("PYTHON")) if args.bytecode == "cached" else []
    pycache = str(base / "pycache") if args.bytecode == "cached" else None
    env = child_env(config, pycache)
    if pycache:
        note = f"; not passed on: {', '.join(dropped)}" if dropped else ""
        print(f"bytecode: cached in a private prefix, filled by the warm-up{note}")
    else:
        print(
            f"bytecode: as the environment says ({', '.join(k for k in env if k.startswith('PYTHON')) or 'no PYTHON* variables'})"
        )
    finder = editable_finder()
    if finder:
        print(f"warning: the venv loads the editable-install finder {finder} in every process: the 'bare' baseline is inflated")

    chk = checks_for(args.hosts)
    variants = [
        Variant("bare", "python -c pass: the venv's interpreter, bare (the baseline)", [PYTHON, "-c", "pass"], check_exit0),
        Variant("vm-status --json", "console script; fast path", [HECTL, "vm-status", "--json"], chk["json"]),
        Variant("vm-status --check", "console script; fast path", [HECTL, "vm-status", "--check"], chk["check"]),
        Variant("vm-status (table)", "console script; click path and tabulate", [HECTL, "vm-status"], chk["table"]),
        Variant("--help", "console script; click path", [HECTL, "--help"], check_help),
        Variant(COMPLETE, "console script; as a process, no shell", [HECTL, "__complete", "host-ids", ""], chk["complete"]),
    ]

    script = None if args.completion_script == "none" else Path(args.completion_script)
    bash = None
    if script is not None and script.is_file():
        bash = BashTab(script, env, str(tmp / "bash-err"))
        variants += [
            Variant(
                TAB_DYNAMIC,
                f"one TAB: bash runs {bash.function}, which runs hectl __complete",
                tab_words=["hectl", "vm-status", "--host-id", ""],
                tab_check=lambda reply: host_ids_problem(reply, args.hosts),
            ),
            Variant(
                TAB_STATIC,
                f"one TAB: bash runs {bash.function}, static values",
                tab_words=["hectl", "set-maintenance", "--mode", ""],
                tab_check=modes_problem,
            ),
        ]
        completion_variant = TAB_DYNAMIC
        print(f"completion: one TAB through {script} (function {bash.function}), timed inside one bash process")
    else:
        completion_variant = COMPLETE
        why = "--completion-script none" if script is None else f"{script} does not exist"
        print(f"completion: {why}: timing 'hectl __complete host-ids \"\"' as a process instead (no bash round trip)")

    rng = random.Random(args.seed)
    rounds = args.warmup + args.runs
    t = time.perf_counter()
    try:
        for rnd in range(rounds):
            order = variants[:]
            rng.shuffle(order)
            for v in order:
                run_once(v, env, tmp, bash, record=rnd >= args.warmup)
            if sys.stdout.isatty():
                print(f"\r  round {rnd + 1}/{rounds}", end="", flush=True)
    finally:
        if bash is not None:
            bash.close()
    if sys.stdout.isatty():
        print("\r", end="")
    elapsed = time.perf_counter() - t
    load_after = os.getloadavg()
    print(
        f"timed: {args.runs} rounds (after {args.warmup} warm-up) of {len(variants)} variants "
        f"in {elapsed:.1f} s; load {load_after[0]:.2f}"
    )

    stats = {v.name: summarize(v, variants[0]) for v in variants}
    print(f"\n  {'variant':<30}{'median':>8}{'p90':>8}{'min':>8}{'cpu':>8}{'ratio':>8}{'paired':>8}{'+ms':>8}")
    for v in variants:
        s = stats[v.name]
        cpu = f"{s['cpu_median_ms']:.1f}" if s["cpu_median_ms"] is not None else "-"
        print(
            f"  {v.name:<30}{s['median_ms']:>8.1f}{s['p90_ms']:>8.1f}{s['min_ms']:>8.1f}{cpu:>8}"
            f"{s['ratio']:>8.2f}{s['paired_ratio']:>8.2f}{s['over_baseline_ms']:>+8.1f}"
        )
    print("  (ms; ratio = median / median of 'bare' of this run; paired = median of the per-round ratios;")
    print("   +ms = median minus bare's; cpu = the child's user+sys, none for a TAB in bash)")

    targets = {}
    print("\ntargets (ratio of medians to the bare interpreter of this run; the exit status is 0 either way):")
    for tname, (vname, limit) in TARGETS.items():
        vname = vname or completion_variant
        r = stats[vname]["ratio"]
        verdict = "PASS" if r <= limit else "MISS"
        targets[tname] = {"variant": vname, "ratio": r, "limit": limit, "result": verdict}
        print(f"  {verdict}  {tname:<18} {vname:<26} {r:5.2f} <= {limit:g}")

    importtime: dict[str, Any] = {}
    if args.importtime_runs > 0:
        importtime = run_importtime(args, env)

    result = {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "host": platform.node(),
            "platform": platform.platform(),
            "python": PYTHON,
            "python_version": subprocess.run(
                [PYTHON, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
            ).stdout.strip(),
            "git_head": git_head(),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "runs": args.runs,
            "warmup": args.warmup,
            "hosts": args.hosts,
            "seed": args.seed,
            "elapsed_s": round(elapsed, 1),
            "bytecode": args.bytecode,
            "python_env_not_passed": dropped,
            "editable_finder": finder,
            "completion_mode": "bash-tab" if bash else "subprocess",
            "completion_script": str(script) if bash and script else None,
            "completion_script_sha256": hashlib.sha256(script.read_bytes()).hexdigest() if bash and script else None,
            "completion_function": bash.function if bash else None,
            "p90": "nearest rank",
        },
        "variants": stats,
        "targets": targets,
        "importtime": importtime,
    }
    out = Path(args.json) if args.json else RESULTS_DIR / f"bench_cli-{started.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults: {out}")
    return 0


def run_importtime(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    n = args.importtime_runs
    print(f"\nimport time (python -X importtime running the console script; per module the median of {n} runs; ms)")
    x = ["-X", "importtime"]
    commands = {
        "bare": [PYTHON, *x, "-c", "pass"],
        "vm-status --json": [PYTHON, *x, HECTL, "vm-status", "--json"],
        COMPLETE: [PYTHON, *x, HECTL, "__complete", "host-ids", ""],
        "--help": [PYTHON, *x, HECTL, "--help"],
    }
    profiles = {key: importtime_profile(argv, env, n) for key, argv in commands.items()}
    bare = profiles["bare"]
    print_profile("bare interpreter (site)", bare, None, 6)
    print_profile("vm-status --json (fast path)", profiles["vm-status --json"], bare, args.top)
    print_profile("__complete host-ids (fast path)", profiles[COMPLETE], bare, args.top, by_cum=False)
    print_profile("--help (click path)", profiles["--help"], bare, args.top)
    fast, help_ = profiles["vm-status --json"]["modules"], profiles["--help"]["modules"]
    heavy = {m: [k for k in ("vm-status --json", COMPLETE) if m in profiles[k]["modules"]] for m in HEAVY_MODULES}
    summary = {
        "total_ms": {k: p["total_ms"] for k, p in profiles.items()},
        "hectl_self_ms": {k: self_ms_of(p, "hectl") for k, p in profiles.items() if k != "bare"},
        "heavy_on_fast_path": {m: where for m, where in heavy.items() if where},  # module -> the profiles importing it
        "click_cum_ms_help": help_.get("click", {}).get("cum_ms", 0.0),
        "help_beyond_fast_path_ms": round(sum(m["self_ms"] for k, m in help_.items() if k not in fast), 3),
    }
    print(
        f"\n  hectl's own modules (self times): {summary['hectl_self_ms']['vm-status --json']:.1f} ms in vm-status --json, "
        f"{summary['hectl_self_ms'][COMPLETE]:.1f} ms in __complete"
    )
    found = ", ".join(f"{m} ({', '.join(where)})" for m, where in summary["heavy_on_fast_path"].items())
    print(f"  heavy modules on the fast path: {found or 'none'}")
    print(
        f"  --help imports {summary['help_beyond_fast_path_ms']:.1f} ms more than vm-status --json "
        f"('import click' alone: {summary['click_cum_ms_help']:.1f} ms cumulative)"
    )
    return {"profiles": profiles, "summary": summary}


def git_head() -> str | None:
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if head and dirty else head or None


if __name__ == "__main__":
    sys.exit(main())
