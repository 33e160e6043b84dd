"""Which systems the daily schedule finds due for their planned risk reassessment (8.2)."""

from __future__ import annotations

from datetime import date

import pytest

from schemas.records import AISystem, LifecycleStage

DAY = date(2026, 6, 1)


def system(stage: LifecycleStage = LifecycleStage.deployed) -> AISystem:
    return AISystem(name="s", owner="o", intended_use="u", lifecycle_stage=stage)


@pytest.mark.parametrize(
    ("stage", "reviews", "expected"),
    [
        (LifecycleStage.deployed, [date(2026, 5, 31)], "2026-05-31"),
        (LifecycleStage.deployed, [DAY], "2026-06-01"),  # due on the day itself
        (LifecycleStage.deployed, [date(2026, 6, 2)], None),
        (LifecycleStage.deployed, [date(2026, 9, 1), date(2026, 5, 1)], "2026-05-01"),  # the earliest counts
        (LifecycleStage.development, [], "never assessed"),
        (LifecycleStage.deployed, [None], "no review date"),
        (LifecycleStage.retired, [date(2020, 1, 1)], None),
        (LifecycleStage.retired, [], None),
    ],
)
def test_due_review(stage: LifecycleStage, reviews: list[date | None], expected: str | None) -> None:
    from flows.risk.schedule_risk_reviews import due_review

    assert due_review(system(stage), reviews, DAY) == expected


def test_the_schedules_are_valid_crons() -> None:
    from prefect.client.schemas.schedules import CronSchedule

    from flows.approvals import chase_approvals
    from flows.freshness import collect_evidence
    from flows.incidents import watch_incident_clocks
    from flows.risk import schedule_risk_reviews
    from infra.deployments import schedules

    assert schedules() == {
        "schedule-risk-reviews": schedule_risk_reviews.SCHEDULE,
        "chase-approvals": chase_approvals.SCHEDULE,
        "watch-incident-clocks": watch_incident_clocks.SCHEDULE,
        "collect-evidence": collect_evidence.SCHEDULE,
    }
    for cron in schedules().values():
        # what Prefect itself accepts for a deployment's cron (no random or hashed expressions)
        assert CronSchedule(cron=cron).cron == cron


def test_risk_reviews_run_once_a_day() -> None:
    from flows.risk.schedule_risk_reviews import SCHEDULE

    minute, hour, *rest = SCHEDULE.split()
    assert rest == ["*", "*", "*"] and 0 <= int(minute) < 60 and 0 <= int(hour) < 24


def test_approvals_are_chased_every_hour_of_every_day() -> None:
    from flows.approvals.chase_approvals import SCHEDULE

    minute, *rest = SCHEDULE.split()
    # reminders and expiries fall due at night and at weekends too; the minutes are Prefect's to check
    assert rest == ["*", "*", "*", "*"]
    assert minute
