"""`aims status` during faults: it answers within its deadline and says "unknown" when it cannot know.

No broker or Prefect server here: a closed loopback port stands for a service that is down (refused),
a listening socket that never answers for one that hangs. Router heartbeats are files in the state
folder, in the format the router writes (`<state>/routers/router-<name>.json`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aims import status
from tests.aims.status.probes import (
    HOST,
    beating,
    dead_pid,
    kafka_up,
    run_status,
    status_json,
    whole_status,
    write_beat,
)

# -- routers -----------------------------------------------------------------------------------


def test_each_router_state_has_its_line(state: Path) -> None:
    routers = state / "routers"
    now = time.time()
    write_beat(routers, "a-routing", partitions=[0, 1])
    write_beat(routers, "b-routing", partitions=[2, 3], in_flight=2)
    write_beat(routers, "c-idle", partitions=[], assigned=False, state="idle")
    write_beat(
        routers,
        "d-holding",
        partitions=[],
        state="holding",
        holding_on="prefect",
        last_error="503 database is locked",
    )
    write_beat(routers, "e-stale", host="elsewhere", at=now - 60, pid=12345)
    write_beat(routers, "f-joining", partitions=[], assigned=False, state="joining")

    listed, removed = status.read_routers(routers, now, HOST)

    assert removed == []
    by_name = {r["name"]: r for r in listed}
    assert {n: r["condition"] for n, r in by_name.items()} == {
        "a-routing": "routing",
        "b-routing": "routing",
        "c-idle": "idle",
        "d-holding": "holding",
        "e-stale": "stale",
        "f-joining": "idle",
    }
    assert [n for n, r in by_name.items() if r["alive"]] == ["a-routing", "b-routing"]
    text = status.render(whole_status(listed))
    assert (
        "Routers   2 routing (partitions 0-3), 1 holding (on prefect), 2 idle (no partitions), 1 stale;"
        " 3 in the consumer group"
    ) in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert "routing" in lines["a-routing"] and "partitions 0-1" in lines["a-routing"]
    assert "partitions 2-3, 2 in flight" in lines["b-routing"]
    assert "idle" in lines["c-idle"] and "no partitions" in lines["c-idle"]
    assert "HOLDING" in lines["d-holding"]
    assert "on prefect, last error: 503 database is locked" in lines["d-holding"]
    assert "last beat 60 s ago; unknown whether it is alive (host elsewhere" in lines["e-stale"]
    assert "joining the consumer group" in lines["f-joining"]


def test_the_summary_of_one_router_that_routes(state: Path) -> None:
    write_beat(state / "routers", "only", partitions=[0, 1, 2, 3])
    listed, _ = status.read_routers(state / "routers", time.time(), HOST)
    text = status.render(whole_status(listed, kafka_up(group_members=1)))
    assert "Routers   1 routing (partitions 0-3); 1 in the consumer group" in text


def test_a_router_without_partitions_is_not_alive(
    state: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reported: "alive" for a router that holds no partitions."""
    with beating(state / "routers", "idle-one", partitions=[], assigned=False, state="idle"):
        _, data = status_json(monkeypatch, capsys, closed_port, closed_port)
        _, text = run_status(monkeypatch, capsys, closed_port, closed_port)
    [router] = data["routers"]
    assert router["alive"] is False
    assert router["condition"] == "idle"
    assert "Routers   0 routing, 1 idle (no partitions);" in text


def test_the_heartbeat_of_a_dead_router_is_removed_and_not_listed(
    state: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reported: dead routers' heartbeats are listed forever."""
    routers = state / "routers"
    gone = write_beat(routers, "killed", pid=dead_pid())  # a fresh beat: killed a moment ago
    stale_gone = write_beat(routers, "long-gone", pid=dead_pid(), at=time.time() - 3600)
    write_beat(routers, "running")
    _, data = status_json(monkeypatch, capsys, closed_port, closed_port)
    assert [r["name"] for r in data["routers"]] == ["running"]
    assert not gone.exists() and not stale_gone.exists()
    assert sorted(data["routers_removed"]) == ["killed", "long-gone"]


def test_a_stale_beat_from_another_host_is_listed_then_forgotten(state: Path) -> None:
    routers = state / "routers"
    now = time.time()
    # Its pid means nothing here: another host's process cannot be looked up, so the file stays.
    recent = write_beat(routers, "away", host="other-host", pid=dead_pid(), at=now - 120)
    old = write_beat(routers, "away-long", host="other-host", at=now - status.HEARTBEAT_FORGET_SECONDS - 1)
    listed, removed = status.read_routers(routers, now, HOST)
    assert [(r["name"], r["condition"], r["alive"]) for r in listed] == [("away", "stale", False)]
    assert removed == [] and recent.exists() and old.exists()


def test_heartbeats_of_older_routers_lack_the_new_fields(state: Path) -> None:
    """Before the rewrite a heartbeat had no host, partitions, state or holding_on."""
    routers = state / "routers"
    old_format = {"host": ..., "partitions": ..., "state": ..., "holding_on": ..., "in_flight": ...}
    write_beat(routers, "old", **old_format, waiting_subjects=..., holding=False)
    write_beat(routers, "old-holding", **old_format, holding=True, last_error="prefect: 503")
    write_beat(routers, "old-dead", **old_format, pid=dead_pid())  # no host: this host, so pid is checked
    listed, removed = status.read_routers(routers, time.time(), HOST)
    by_name = {r["name"]: r for r in listed}
    assert removed == ["old-dead"]
    assert by_name["old"]["condition"] == "unknown" and by_name["old"]["partitions"] is None
    assert by_name["old-holding"]["condition"] == "holding"
    assert not any(r["alive"] for r in listed)  # partitions unknown: not known to be routing
    text = status.render(whole_status(listed))
    assert "0 routing, 1 holding (on unknown), 1 with partitions unknown;" in text
    assert "on unknown, last error: prefect: 503" in text


def test_an_unreadable_heartbeat_is_listed_as_such(state: Path) -> None:
    (state / "routers" / "router-garbled.json").write_bytes(b"\xff{not json")
    listed, _ = status.read_routers(state / "routers", time.time(), HOST)
    assert [(r["name"], r["condition"], r["alive"]) for r in listed] == [("garbled", "unreadable", False)]
    assert "1 unreadable" in status.render(whole_status(listed))


def test_partition_ranges() -> None:
    assert status._ranges([3, 0, 1, 2, 5, 7, 8]) == "0-3, 5, 7-8"
    assert status._ranges([]) == ""


_numbers = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.just(10**400),  # JSON integers have no bound
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=30), _numbers),
        "pid": st.one_of(_numbers, st.just(os.getpid())),
        "host": st.one_of(st.just(HOST), st.text(max_size=10), _numbers),
        "at": st.one_of(_numbers, st.floats(min_value=-30, max_value=30).map(lambda d: 1_000_000.0 + d)),
        "assigned": _numbers,
        "partitions": st.one_of(_numbers, st.lists(st.one_of(st.integers(-3, 50), _numbers), max_size=5)),
        "state": st.one_of(st.sampled_from(["routing", "holding", "idle", "joining"]), _numbers),
        "holding_on": st.one_of(st.sampled_from(["prefect", "kafka", "register"]), _numbers),
        "holding": _numbers,
        "in_flight": _numbers,
        "waiting_subjects": _numbers,
        "consumed": _numbers,
        "routed": _numbers,
        "dead_lettered": _numbers,
        "last_error": st.one_of(st.text(max_size=40), _numbers),
        "extra": st.recursive(_numbers, lambda inner: st.lists(inner, max_size=3), max_leaves=5),
    },
)
_contents = st.one_of(
    st.binary(max_size=200),
    _fields.map(lambda d: json.dumps(d).encode()),  # NaN and Infinity included, as json.dumps writes them
    st.recursive(_numbers, lambda inner: st.lists(inner, max_size=3), max_leaves=5).map(
        lambda v: json.dumps(v).encode()
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_contents)
def test_no_heartbeat_crashes_the_status_or_passes_for_alive(content: bytes) -> None:
    now = 1_000_000.0
    with tempfile.TemporaryDirectory() as folder:
        routers = Path(folder)
        (routers / "router-x.json").write_bytes(content)
        listed, _ = status.read_routers(routers, now, HOST)
        text = status.render(whole_status(listed))
        json.dumps(listed, allow_nan=False)  # the --json document stays strict JSON
    assert "Routers   " in text
    for router in listed:
        if not router["alive"]:
            continue
        beat = json.loads(content)
        at, partitions = beat["at"], beat["partitions"]
        assert isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at)
        assert abs(now - at) < status.HEARTBEAT_STALE_SECONDS
        assert isinstance(partitions, list) and partitions
        assert all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in partitions)
