"""The fault benchmark's pure parts: the worker's memory read from /proc, and lost/doubled counting.

The benchmark's figures are only as good as these: a process tree that misses the flow-run processes
reports a worker far smaller than it is, and a count that lets a doubled run pass hides the bug the
fault run exists to catch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import process_tree, tree_memory
from bench.faults import make_events, tally

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux /proc")


def _vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
def grandchild() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A child that starts a grandchild and waits: (the child, the grandchild's pid)."""
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None
    grandchild_pid = int(child.stdout.readline())
    try:
        yield child, grandchild_pid
    finally:
        os.kill(grandchild_pid, 9)
        child.kill()
        child.wait(10)


def test_the_tree_of_this_process_holds_its_children_and_their_children(
    grandchild: tuple[subprocess.Popen[bytes], int],
) -> None:
    child, grandchild_pid = grandchild
    tree = process_tree(os.getpid())
    assert tree[0] == os.getpid()
    assert child.pid in tree and grandchild_pid in tree
    memory = tree_memory(os.getpid())
    assert memory.processes >= 3
    # Each member's resident memory counts: at least this process's own and its two Pythons' worth.
    own = _vm_rss_kb(os.getpid()) * 1024
    assert memory.rss_bytes >= own + _vm_rss_kb(child.pid) * 1024
    assert 0 < memory.pss_bytes <= memory.rss_bytes


def test_a_subtree_leaves_out_its_parent_and_an_exited_unreaped_child_counts_as_gone() -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.05)
    try:
        assert zombie.pid not in process_tree(os.getpid())
        assert process_tree(zombie.pid) == []
        assert tree_memory(zombie.pid).processes == 0
    finally:
        zombie.wait(10)


def test_a_process_that_is_gone_has_an_empty_tree() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait(30)
    assert process_tree(done.pid) == []
    assert tree_memory(done.pid).rss_bytes == 0


def test_tally_finds_the_lost_and_the_doubled_and_ignores_other_runs() -> None:
    keys = ["s#1", "s#2", "s#3", "s#4"]
    counted = tally(keys, ["s#1", "s#2", "s#2", "s#4", "s#4", "s#4", "other#9", None])
    assert counted.events == 4
    assert counted.runs == 6  # runs of these events only
    assert counted.lost == ["s#3"]
    assert counted.duplicated == {"s#2": 2, "s#4": 3}


def test_tally_of_exactly_one_run_each_is_clean() -> None:
    counted = tally(["a#1", "a#2"], ["a#2", "a#1"])
    assert (counted.lost, counted.duplicated, counted.runs) == ([], {}, 2)


def test_events_are_unique_spread_over_the_subjects_and_start_one_flow_each(tmp_path: Path) -> None:
    from bench.router import templates
    from events.routing import routes_for

    events = make_events(templates(tmp_path), 120, "t-floor1", subjects=40)
    assert len({e.dedup_key for e in events}) == 120
    assert len({e.type for e in events}) == 3
    # 3 kinds × 40 subjects: every kind reaches every subject.
    assert len({(e.type, e.key) for e in events}) == 120
    assert all(len(routes_for(e.type)) == 1 for e in events)
    versions = [getattr(e.data, "version", None) for e in events]
    known = [v for v in versions if v is not None]
    assert len(known) == len(set(known)) == 80  # model and dataset versions, each new
