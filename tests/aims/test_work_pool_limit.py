"""How many runs the worker lets run at once, and how many flow-run processes that allows.

The pool side (created with the setting's limit, a team's limit and pause kept across restarts,
Prefect's enforcement during a burst) runs against a real Prefect server in
tests/integration/test_worker.py.
"""

from __future__ import annotations

import pytest

from aims.cli import main


@pytest.mark.parametrize(
    ("pool_limit", "own_limit", "expected"),
    [
        (None, None, None),  # nothing limits the runs
        (4, None, 4),  # the pool's limit (AIMS_WORK_POOL_CONCURRENCY, or the team's in Prefect)
        (None, 3, 3),  # `aims worker --limit 3` on a pool without a limit
        (4, 2, 2),  # --limit only ever lowers the pool's limit for this worker
        (2, 4, 2),  # and never raises it
        (0, None, 0),  # a pool limit of 0 lets no run start
    ],
)
def test_runs_at_once_is_the_lower_of_the_pools_limit_and_the_workers(
    pool_limit: int | None, own_limit: int | None, expected: int | None
) -> None:
    from infra.warm_worker import runs_at_once

    assert runs_at_once(pool_limit, own_limit) == expected


def test_flow_run_processes_are_bounded_by_the_runs_at_once_plus_the_spares() -> None:
    from infra.warm_worker import WarmProcessWorker

    bounded = WarmProcessWorker("aims", spares=3, gx_spares=1, limit=4)
    assert bounded.runs_at_once == 4
    assert bounded.max_processes == 4 + 3 + 1
    assert WarmProcessWorker("aims", spares=3, gx_spares=0, limit=2).max_processes == 2 + 3
    # Until the pool's limit is read, a worker without --limit knows of no bound.
    assert WarmProcessWorker("aims", spares=3, gx_spares=1).max_processes is None


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_worker_refuses_a_limit_below_one(
    limit: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert main(["worker", "--limit", limit]) == 2
    assert f"--limit {limit}: expected 1 or more runs at once" in capsys.readouterr().err
