"""What a lab leaves when its process dies without cleaning up (SIGKILL, a CI timeout), and freeing it.

A lab claims what it creates in ``/run/hectl-lab/<name>.json``: its owner (pid and start time, so that a reused
pid does not count), its directories, network namespaces and root-side links. ``reap()`` frees what dead owners
claimed: every process in those namespaces or using those directories (cwd, argv or ``SANLOCK_RUN_DIR``),
every mount under the directories (deepest first), the namespaces, links and directories. ``python -m
lab.reaper`` lists the claims (``status``) or reaps them (``reap``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.net import netns_etc

REGISTRY = Path(os.environ.get("HECTL_LAB_REGISTRY", "/run/hectl-lab"))


def started(pid: int) -> str:
    """The start time of ``pid`` (clock ticks since boot, as /proc shows it), '' when it does not run (or is a
    zombie): with the pid, it tells a process from a later one that got the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    return "" if fields[0] == "Z" else fields[19]


def claim(name: str, dirs: Sequence[str] = (), netns: Sequence[str] = (), links: Sequence[str] = ()) -> None:
    """Record (or update) what lab ``name``, owned by this process, has created."""
    REGISTRY.mkdir(mode=0o755, parents=True, exist_ok=True)
    doc = {"owner": os.getpid(), "started": started(os.getpid()), "dirs": list(dirs), "netns": list(netns),
           "links": list(links)}  # fmt: skip
    tmp = REGISTRY / f".{name}.tmp"
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, REGISTRY / f"{name}.json")


def release(name: str) -> None:
    """Lab ``name`` has cleaned up after itself."""
    (REGISTRY / f"{name}.json").unlink(missing_ok=True)


def claims() -> dict[str, dict[str, Any]]:
    """Every recorded lab, with ``alive``: whether its owner still runs."""
    out = {}
    for path in sorted(REGISTRY.glob("*.json")) if REGISTRY.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(path.read_text())
            doc["alive"] = bool(doc["started"]) and started(int(doc["owner"])) == doc["started"]
            out[path.stem] = doc
    return out


def _users(dirs: list[str], netns: list[str]) -> set[int]:
    pids: set[int] = set()
    for ns in netns:
        res = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30)
        pids.update(int(p) for p in res.stdout.split())
    marks = [d.encode() for d in dirs]
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            seen = Path(f"/proc/{entry}/cmdline").read_bytes() + Path(f"/proc/{entry}/environ").read_bytes()
            seen += os.readlink(f"/proc/{entry}/cwd").encode()
            if any(m in seen for m in marks):
                pids.add(int(entry))
    return pids


def _mounts_under(dirs: list[str]) -> list[str]:
    targets = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            target = line.split()[4].replace("\\040", " ")
            if any(target == d or target.startswith(d + "/") for d in dirs):
                targets.append(target)
    return sorted(set(targets), key=len, reverse=True)


def free(doc: dict[str, Any]) -> list[str]:
    """Free everything one claim names; what was freed, in words."""
    done = []
    pids = _users(doc["dirs"], doc["netns"])
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # a stopped process dies only once it runs
            os.kill(pid, signal.SIGKILL)
    if pids:
        done.append(f"killed {len(pids)} processes")
        deadline = time.monotonic() + 10
        while any(started(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
    for target in _mounts_under(doc["dirs"]):
        subprocess.run(["umount", "-l", target], capture_output=True, timeout=30)
        done.append(f"unmounted {target}")
    for link in doc["links"]:
        if os.path.exists(f"/sys/class/net/{link}"):
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=30)
            done.append(f"removed link {link}")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout.split()
    for ns in doc["netns"]:
        if ns in listed:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
            done.append(f"removed netns {ns}")
        shutil.rmtree(netns_etc(ns), ignore_errors=True)
    for d in doc["dirs"]:
        if os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)
            done.append(f"removed {d}")
    return done


def reap() -> dict[str, list[str]]:
    """Free the leftovers of every lab whose owner is gone; by lab, what was freed."""
    out = {}
    for name, doc in claims().items():
        if not doc["alive"]:
            out[name] = free(doc)
            release(name)
    return out


def main(argv: list[str]) -> int:
    if argv[1:] == ["status"]:
        for name, doc in claims().items():
            state = "running" if doc["alive"] else "owner gone (python -m lab.reaper reap frees it)"
            print(f"{name}: pid {doc['owner']} {state}; dirs {' '.join(doc['dirs'])}; netns {' '.join(doc['netns'])}")
        return 0
    if argv[1:] == ["reap"]:
        for name, done in reap().items():
            print(f"{name}: {'; '.join(done) or 'nothing left'}")
        return 0
    print("usage: python -m lab.reaper status|reap", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
