"""The dashboard's figures are the register's: counted here again with SQL, on registers seeded at
random, and the SLA and Art. 73 states of items placed at known points of their limits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from connectors.prefect_api import FlowRunView
from connectors.register.store import Register
from flows.dashboard.gather import FRESHNESS_NOTE
from flows.reviews.pack_common import RunHistory
from schemas.catalogue import load_catalogue
from tests.flows.dashboard.seeding import NOW, seeded_dashboard


def one(reg: Register, sql: str, **params: Any) -> Any:
    with reg.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_counts_are_the_registers(tmp_path: Path, seed: int) -> None:
    reg, board = seeded_dashboard(tmp_path, seed)
    try:
        c = board.counts
        assert c.open_approvals == one(reg, "select count(*) from approval where status = 'pending'")
        assert c.open_approvals == len(board.approvals)
        assert c.open_incidents == one(reg, "select count(*) from incident where status != 'closed'")
        assert c.open_incidents == len(board.incidents)
        assert c.open_risks == one(reg, "select count(*) from risk where status != 'closed'")
        assert c.open_risks == sum(sum(row) for row in board.heat_map.counts)
        datasets = one(
            reg,
            "select count(*) from (select name from dataset union select dataset from dataset_version)",
        )
        assert c.datasets == datasets == len(board.data_quality)
        checks = one(reg, "select count(*) from data_quality_result")
        assert sum(t.checks for t in board.data_quality) == checks
        assert c.controls == len(load_catalogue().controls) == len(board.controls)
        assert c.controls_with_evidence == sum(x.evidence_count > 0 for x in board.controls) > 0
        # Without Prefect, the failed work is the register's refused attempts of the last 7 days.
        since = (NOW - timedelta(days=7)).strftime("%Y-%m-%d %H:%M:%S")
        refused = one(
            reg, "select count(*) from approval_decision where accepted = 0 and decided_at >= :s", s=since
        ) + one(reg, "select count(*) from incident_update where accepted = 0 and at >= :s", s=since)
        assert board.failed.source == "register" and c.failed_runs == refused == 2
        assert board.freshness_note == FRESHNESS_NOTE
        # Judged by the policy: nothing implements A.2.3, the SoA excludes A.10.4, and a control with
        # evidence is fresh or stale by its own maximum age.
        status = {x.id: x for x in board.controls}
        assert status["A.2.3"].status == "missing" and status["A.10.4"].status == "excluded"
        assert status["A.7.4"].max_age_days == 30 and status["A.2.4"].max_age_days == 365
        for x in board.controls:
            if x.evidence_count and x.status != "excluded":
                assert x.age_days is not None
                assert x.status == ("fresh" if x.age_days < x.max_age_days else "stale"), x
    finally:
        reg.close()


def test_approvals_are_measured_against_their_sla_and_clocks_against_art_73(tmp_path: Path) -> None:
    reg, board = seeded_dashboard(tmp_path, 1)
    reg.close()
    states = {a.id: a.state for a in board.approvals}
    assert states["sla-within"] == "within"
    assert states["sla-due-soon"] == "due-soon"
    assert states["sla-overdue"] == "overdue"
    overdue = next(a for a in board.approvals if a.id == "sla-overdue")
    assert overdue.sla_hours == 48 and overdue.age_hours == 72.0
    assert board.counts.overdue_approvals >= 1
    clocks = {i.id: i for i in board.incidents}
    assert clocks["clock-running"].clock == "running" and clocks["clock-running"].hours_left == 120.0
    assert clocks["clock-late"].clock == "overdue" and clocks["clock-late"].state == "overdue"
    assert board.counts.overdue_clocks == sum(i.clock == "overdue" for i in board.incidents) >= 1
    # The nearest deadline first: the overdue clock leads the list.
    assert board.incidents[0].hours_left is not None and board.incidents[0].hours_left < 0


def test_failed_runs_come_from_prefect_when_it_answered(tmp_path: Path) -> None:
    runs = [
        FlowRunView(f"r{n}", f"run-{n}", "check-data-quality", state, None, {}, NOW.isoformat(), None)
        for n, state in enumerate(["Failed", "Crashed", "Completed", "TimedOut"])
    ]
    reg, board = seeded_dashboard(tmp_path, 2, prefect=RunHistory(runs=runs))
    reg.close()
    assert board.failed.source == "prefect" and board.failed.prefect == "reachable"
    assert [x.state for x in board.failed.items] == ["Failed", "Crashed", "TimedOut"]
    assert board.counts.failed_runs == 3


def test_prefect_unknown_says_why_and_lists_the_register_instead(tmp_path: Path) -> None:
    reg, board = seeded_dashboard(tmp_path, 2, prefect=RunHistory(error="ConnectError: refused"))
    reg.close()
    assert board.failed.source == "register"
    assert board.failed.prefect == "unknown: ConnectError: refused"
    assert {x.what for x in board.failed.items} == {"approval decision", "incident update"}
