"""A lab whose process is SIGKILLed leaves daemons, mounts, namespaces and files; the next lab frees them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab import cluster as lab_cluster
from lab import reaper

pytestmark = [pytest.mark.integration, pytest.mark.lab]

REPO = Path(__file__).resolve().parents[2]
OWNER = """
import sys, time
sys.path.insert(0, {repo!r})
from lab import cluster
c = cluster.Cluster(2, stallable=True)
c.start()
print(c.base, c.segment.tag, flush=True)
time.sleep(600)
"""


def users(base: str) -> list[int]:
    return sorted(reaper._users([base], []))


def test_a_killed_lab_is_freed_by_the_reaper() -> None:
    reason = lab_cluster.missing(stallable=True)
    if reason:
        pytest.skip(reason)
    owner = subprocess.Popen([sys.executable, "-c", OWNER.format(repo=str(REPO))], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        base, tag = owner.stdout.readline().split()
    finally:
        os.kill(owner.pid, signal.SIGKILL)  # no clean-up at all
        owner.wait(10)
    name = Path(base).name
    left = reaper.claims()[name]
    assert not left["alive"] and len(left["netns"]) == 3 and len(left["dirs"]) == 3  # base + two libvirtds
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert tag in netns and users(base)  # sanlock daemons and the rest still run

    freed = reaper.reap()[name]

    assert any(line.startswith("killed") for line in freed)
    assert tag not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not os.path.exists(f"/sys/class/net/{tag}r")
    assert users(base) == [] and reaper._mounts_under(left["dirs"]) == []
    assert not any(os.path.exists(d) for d in left["dirs"])
    assert name not in reaper.claims()
