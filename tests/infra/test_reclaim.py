"""Which claimed runs a worker schedules again (infra.reclaim): only those no worker will ever start."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from infra.reclaim import Claim, abandoned, why

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
AFTER = 120.0
DEAD = Claim(
    run_id=uuid4(), pending=True, since=NOW - timedelta(seconds=300), infrastructure_pid=None, worker="w-dead"
)


def test_a_run_claimed_long_ago_by_a_worker_now_offline_and_never_started_is_abandoned() -> None:
    assert abandoned(DEAD, online={"w-live"}, own=set(), now=NOW, after=AFTER)
    assert abandoned(replace(DEAD, worker=None), online={"w-live"}, own=set(), now=NOW, after=AFTER)


@pytest.mark.parametrize(
    ("change", "because"),
    [
        ({"worker": "w-live"}, "its worker is online and will hand it to a process"),
        ({"infrastructure_pid": "4242"}, "a process has it"),
        ({"pending": False}, "it is Running, Scheduled or over"),
        ({"since": NOW - timedelta(seconds=119)}, "a claim takes seconds; it may be on its way"),
        ({"since": None}, "no state time to judge by"),
    ],
)
def test_a_run_some_process_may_still_start_is_left_alone(change: dict[str, object], because: str) -> None:
    assert not abandoned(replace(DEAD, **change), online={"w-live"}, own=set(), now=NOW, after=AFTER), because


def test_this_workers_own_submissions_are_left_alone() -> None:
    assert not abandoned(DEAD, online=set(), own={DEAD.run_id}, now=NOW, after=AFTER)


def test_the_reason_names_the_dead_worker_and_when_it_claimed() -> None:
    text = why(DEAD, by="w-live")
    assert "'w-dead'" in text and "'w-live'" in text and "02:55:00" in text
