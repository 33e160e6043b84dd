"""The review pack on a seeded register: every 9.3.2 section, and figures equal to SQL over the tables.

The expected figures are counted with SQL straight from the register's tables, not with the pack's
own code, so a wrong filter in either shows up as a difference.
"""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from flows.reviews.pack import Period, RunHistory, gather
from schemas import records as r
from schemas.payloads import RiskLevel
from schemas.review_pack import SECTIONS, HeatMap, TrendChart
from tests.flows.reviews.seeding import END, NOW, START, THIS, Seeded, gather_pack
from tests.resources import example_policy, migrated_register


def test_the_pack_has_every_9_3_2_section_in_order(seeded: Seeded) -> None:
    pack = gather_pack(seeded)
    assert [(s.key, s.clause, s.title) for s in pack.sections] == list(SECTIONS)
    clauses = {s.clause.split()[1] for s in pack.sections}
    assert clauses == {"a)", "b)", "c)", "d)", "e)"}
    assert all(s.summary for s in pack.sections)
    assert [a.email for a in pack.attendees] == [
        a.email for a in example_policy().management_review.attendees
    ]
    assert pack.agenda[0].startswith("Opening") and pack.agenda[-1].startswith("9.3.3")


def test_previous_actions_equal_the_register(seeded: Seeded) -> None:
    s = gather_pack(seeded).section("previous-actions")
    where = f"review_id != '{THIS}'"
    assert s.figures["open"] == seeded.one(
        f"select count(*) from review_action where status='open' and {where}"
    )
    assert s.figures["overdue"] == seeded.one(
        f"select count(*) from review_action where status='open' and due < :today and {where}",
        today=NOW.date().isoformat(),
    )
    for status in ("done", "dropped"):
        assert s.figures[f"{status}_in_period"] == seeded.one(
            f"select count(*) from review_action where status='{status}' and closed_at >= :start "
            f"and closed_at < :end and {where}"
        )


def test_changes_in_issues_equal_the_register(seeded: Seeded) -> None:
    s = gather_pack(seeded).section("issues")
    assert s.figures["systems"] == seeded.one("select count(*) from ai_system")
    assert s.figures["systems_added"] == seeded.one(
        "select count(*) from ai_system where created_at >= :start and created_at < :end"
    )
    retired = seeded.one("select count(*) from ai_system where lifecycle_stage = 'retired'")
    assert s.figures["systems_retired"] == retired
    assert s.figures["tier_changes"] == 1
    # The previous review recorded a policy with two settings since changed.
    assert s.figures["policy_changes"] == 2
    changed = {row[0] for t in s.tables if t.title == "Policy changes" for row in t.rows}
    assert changed == {"management_review.lead_time_days", "risk.appetite"}


def test_interested_parties_equal_the_register(seeded: Seeded) -> None:
    s = gather_pack(seeded).section("interested-parties")
    recorded = seeded.one(
        "select count(*) from interested_party_need where recorded_at >= :start and recorded_at < :end"
    )
    assert s.figures["recorded"] == recorded
    assert bool(s.missing) == (recorded == 0)


def test_nonconformities_and_corrective_actions_equal_the_register(seeded: Seeded) -> None:
    s = gather_pack(seeded).section("performance/nonconformities")
    assert s.figures["opened"] == seeded.one(
        "select count(*) from nonconformity where opened_at >= :start and opened_at < :end"
    )
    assert s.figures["closed"] == seeded.one(
        "select count(*) from nonconformity where closed_at >= :start and closed_at < :end"
    )
    assert s.figures["actions_open"] == seeded.one(
        "select count(*) from corrective_action where status='open'"
    )
    assert s.figures["actions_overdue"] == seeded.one(
        "select count(*) from corrective_action where status='open' and due < :today",
        today=NOW.date().isoformat(),
    )
    assert s.figures["actions_verified"] == seeded.one(
        "select count(*) from corrective_action where verified_at >= :start and verified_at < :end"
    )
    chart = s.charts[0]
    assert isinstance(chart, TrendChart)
    assert sum(v or 0 for v in chart.series[0].values) == s.figures["opened"]


def test_data_quality_equals_the_register(seeded: Seeded) -> None:
    s = gather_pack(seeded).section("performance/data-quality")
    in_period = "checked_at >= :start and checked_at < :end"
    judged = seeded.one(
        f"select count(*) from data_quality_result where verdict != 'baseline' and {in_period}"
    )
    passed = seeded.one(f"select count(*) from data_quality_result where verdict = 'passed' and {in_period}")
    assert s.figures["checks"] == judged
    assert s.figures["passed"] == passed
    assert s.figures["failed"] == seeded.one(
        f"select count(*) from data_quality_result where verdict = 'failed' and {in_period}"
    )
    assert s.figures["pass_rate_percent"] == (round(100 * passed / judged, 1) if judged else None)
    drifted = seeded.column(
        f"select drift from data_quality_result where {in_period} and drift like '%level%' "
        "and drift not like '%\"none\"%'"
    )
    assert s.figures["drift_findings"] == len(drifted)
    assert bool(s.missing) == (judged == 0)


def test_risks_equal_the_register(seeded: Seeded) -> None:
    s = gather_pack(seeded).section("performance/risks")
    assert s.figures["open_risks"] == seeded.one("select count(*) from risk where status != 'closed'")
    for level in RiskLevel:
        assert s.figures[f"residual_{level.value}"] == seeded.one(
            f"select count(*) from risk where status != 'closed' and residual_level = '{level.value}'"
        )
    heat = next(c for c in s.charts if isinstance(c, HeatMap))
    assert sum(map(sum, heat.counts)) == s.figures["open_risks"]
    cells = seeded.column("select likelihood * 10 + impact from risk where status != 'closed'")
    top = len(example_policy().risk.likelihood)
    for cell in set(cells):
        likelihood, impact = divmod(cell, 10)
        assert heat.counts[top - likelihood][impact - 1] == cells.count(cell)
    assert heat.levels[0][-1] == example_policy().risk.level_for(top, len(example_policy().risk.impact)).value


def test_incidents_and_their_clocks_equal_the_register(seeded: Seeded) -> None:
    s = gather_pack(seeded).section("performance/incidents")
    in_period = "detected_at >= :start and detected_at < :end"
    assert s.figures["incidents"] == seeded.one(f"select count(*) from incident where {in_period}")
    assert s.figures["serious"] == seeded.one(f"select count(*) from incident where serious and {in_period}")
    assert s.figures["clocks_met"] == seeded.one(
        f"select count(*) from incident where {in_period} and reported_to_authority_at <= reporting_due_at"
    )
    assert s.figures["clocks_missed"] == seeded.one(
        f"select count(*) from incident where {in_period} and reporting_due_at is not null and "
        "(reported_to_authority_at > reporting_due_at or "
        "(reported_to_authority_at is null and reporting_due_at < :now))",
        now=NOW,
    )
    assert s.figures["open_now"] == seeded.one("select count(*) from incident where status != 'closed'")


def test_approvals_equal_the_register(seeded: Seeded) -> None:
    s = gather_pack(seeded).section("performance/approvals")
    in_period = "requested_at >= :start and requested_at < :end"
    assert s.figures["requested"] == seeded.one(f"select count(*) from approval where {in_period}")
    assert s.figures["expired"] == seeded.one(
        f"select count(*) from approval where status = 'expired' and {in_period}"
    )
    assert s.figures["escalated"] == seeded.one(
        f"select count(*) from approval where escalated_to != '[]' and {in_period}"
    )
    hours = seeded.column(
        "select (julianday(decided_at) - julianday(requested_at)) * 24 from approval where "
        f"status in ('approved', 'rejected') and {in_period}"
    )
    median = s.figures["median_hours_to_decision"]
    if hours:
        assert median == pytest.approx(statistics.median(hours), abs=0.051)
    else:
        assert median is None and s.missing


def test_operations_and_audit(seeded: Seeded) -> None:
    pack = gather_pack(seeded)
    ops = pack.section("performance/operations")
    assert ops.figures["runs"] == len(seeded.runs)
    assert ops.figures["failed"] == sum(run.state in ("Failed", "Crashed") for run in seeded.runs)
    audit = pack.section("performance/audit")
    assert audit.figures["audit_findings"] == seeded.one(
        "select count(*) from nonconformity where source = 'audit' "
        "and opened_at >= :start and opened_at < :end"
    )
    assert audit.figures["audit_log_intact"] == "yes"
    assert audit.figures["audit_log_entries"] == seeded.one("select count(*) from audit_log")
    # The anchor a review publishes: `aims audit verify --anchor SEQ:HASH` checks the log against it.
    head = seeded.one("select seq from audit_head"), seeded.one("select hash from audit_head")
    assert audit.figures["audit_log_anchor"] == f"{head[0]}:{head[1]}"


def test_opportunities_come_from_the_evidence(seeded: Seeded) -> None:
    pack = gather_pack(seeded)
    ideas = pack.section("improvement").findings
    assert pack.section("improvement").figures["opportunities"] == len(ideas)
    failing = seeded.column(
        "select v.dataset from data_quality_result r join dataset_version v on v.id = r.dataset_version_id "
        "where r.verdict = 'failed' and r.checked_at >= :start and r.checked_at < :end"
    )
    for dataset in {d for d in failing if failing.count(d) >= 2}:
        assert any(f"Dataset {dataset} failed {failing.count(dataset)} checks" in idea for idea in ideas)
    failed_flows = {run.flow_name for run in seeded.runs if run.state in ("Failed", "Crashed")}
    for flow in failed_flows:
        assert any(f"Flow {flow} failed" in idea for idea in ideas)


def test_an_unreachable_prefect_and_an_empty_register_are_stated_not_omitted(tmp_path: Path) -> None:
    reg = migrated_register(tmp_path)
    with reg.unit_of_work("test") as uow:
        uow.reviews.add(r.ManagementReview(id=THIS, created_at=NOW))
    with reg.reader() as uow:
        pack = gather(
            uow,
            example_policy(),
            uow.reviews.one(THIS),
            period=Period(START, END),
            meeting_at=NOW,
            now=NOW,
            runs=RunHistory(error="ConnectError: connection refused"),
            audit=None,
        )
    reg.close()
    assert [s.key for s in pack.sections] == [key for key, _, _ in SECTIONS]
    missing = {s.key: " ".join(s.missing) for s in pack.sections}
    assert "connection refused" in missing["performance/operations"]
    assert pack.section("performance/operations").figures["runs"] is None
    for key in (
        "previous-actions",
        "issues",
        "interested-parties",
        "performance/data-quality",
        "performance/risks",
        "performance/approvals",
        "performance/audit",
        "performance/nonconformities",
    ):
        assert missing[key], f"{key} says nothing about its missing data"
    assert pack.section("performance/data-quality").figures["pass_rate_percent"] is None


def test_period_months_cover_the_period() -> None:
    period = Period(datetime(2026, 11, 15, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))
    assert period.months() == ["2026-11", "2026-12", "2027-01"]
    assert Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, 1, tzinfo=UTC)).months() == [
        "2026-03"
    ]
    assert date(2026, 1, 1) not in period
