"""The sentence each run's artifacts open with: the outcome a person reads first in the Prefect UI.

The flow modules import Prefect: their headlines are imported inside the tests that need them, so
collecting the suite leaves Prefect unimported (tests/suite/test_collection.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flows.data_quality.views import check_headline
from flows.models.mlflow_writeback import write_back_headline
from schemas.events import APPROVAL_REQUESTED, DATA_CHANGED
from schemas.payloads import ApprovalOutcome
from schemas.records import ApprovalDecision
from tests.factories import make_event

CHECKED = {"dataset": "loans", "version": "v7", "evaluated": 14}


def test_a_check_says_its_verdict_and_what_failed() -> None:
    assert check_headline(CHECKED, "passed") == "loans v7 passed: every expectation met"
    failed = check_headline(
        CHECKED,
        "failed",
        ["expect_column_values_to_not_be_null(income)", "expect_column_values_to_be_between(age)"],
        ["expect_column_mean_to_be_between(amount)"],
        ["income", "age", "country", "term"],
    )
    assert (
        failed
        == "loans v7 failed: 2 critical expectations failed; 1 warning; drift in income, age, country …"
    )
    provisional = check_headline({**CHECKED, "provisional": "yes"}, "warning", [], ["w"])
    assert provisional == "loans v7 warning: 1 warning; provisional until the drafted suite is accepted"
    baseline = check_headline(CHECKED, "baseline")
    assert baseline == "loans v7 baseline: its profile drafted the baseline suite"
    unreadable = check_headline({**CHECKED, "finding": "the file is not readable"}, "failed")
    assert unreadable == "loans v7 failed: the file is not readable"
    superseded = check_headline({**CHECKED, "superseded_by": "loans@v8"}, "superseded")
    assert superseded == "loans v7 superseded by a later change of the same burst: not checked"


def test_a_check_that_could_not_read_its_data_says_why() -> None:
    # Fresh-clone CI: a check whose data was unavailable failed its run (KeyError 'verdict') when it
    # came to its headline; its findings carry no verdict of their own.
    from flows.data_quality.check_data_quality import assess, headline_of
    from schemas.policy import DataQuality

    event = make_event(DATA_CHANGED)
    checked = {
        "named": {"source": "lake", "path": "x.csv"},
        "unavailable": "no such file in data source 'lake'",
    }
    judged = assess(event, checked, DataQuality())
    assert headline_of(judged) == "loans v2 failed: no such file in data source 'lake'"


def test_an_assessment_says_its_highest_risk_and_whether_it_blocks() -> None:
    from flows.risk.reassess_risk import risk_headline

    outcome: dict[str, Any] = {
        "ai_system": "credit-scoring",
        "highest_inherent": "high",
        "highest_residual": "medium",
        "gated": "fairness",
        "blocked": True,
        "approval_id": "ap-1",
    }
    assert risk_headline(outcome) == (
        "credit-scoring: highest residual risk medium (inherent high); past the gate: fairness;"
        " deployment blocked until approval ap-1 is granted"
    )
    calm = {**outcome, "gated": "none", "blocked": False, "approval_id": None}
    assert risk_headline(calm) == "credit-scoring: highest residual risk medium (inherent high); not blocked"


def test_an_incident_says_its_severity_and_its_clock() -> None:
    from flows.incidents.handle_incident import incident_headline

    outcome: dict[str, Any] = {
        "ai_system": "credit-scoring",
        "severity": "high",
        "category": "health_and_safety",
        "serious_art73": True,
        "reporting_due_at": "2026-12-20T10:00:00+00:00",
        "jira_issue": "AIMS-7",
        "slack_ts": "1.2",
        "extraordinary_review": None,
    }
    assert incident_headline(outcome) == (
        "high health_and_safety incident on credit-scoring: serious under Art. 73, report due"
        " 2026-12-20T10:00:00+00:00; Jira AIMS-7; Slack alert posted"
    )
    minor = {**outcome, "serious_art73": False, "jira_issue": None, "slack_ts": None}
    assert (
        incident_headline(minor)
        == "high health_and_safety incident on credit-scoring: not serious under Art. 73"
    )


def test_an_approval_says_its_outcome_and_who_decided() -> None:
    from flows.approvals.request_approval import approval_headline

    event = make_event(APPROVAL_REQUESTED)
    at = datetime(2026, 12, 5, tzinfo=UTC)
    decided = [
        ApprovalDecision(
            approval_id="ap-1", decided_by=who, channel="slack", decision="approve", decided_at=at
        )
        for who in ("carol@example.com", "dan@example.com")
    ]
    assert approval_headline(event, ApprovalOutcome.approved, decided) == (
        "risk-acceptance for credit-scoring (high risk) approved:"
        " carol@example.com approve via slack, dan@example.com approve via slack"
    )
    assert approval_headline(event, ApprovalOutcome.expired, []).endswith("expired: nobody decided")


def test_onboarding_and_write_back_say_what_they_did() -> None:
    from flows.models.onboard_model import onboarding_headline

    model = {
        "ai_system": "credit-scoring",
        "model": "m v3",
        "owner": "alice",
        "provenance_complete": False,
        "datasets_without_version": "bureau",
    }
    assert onboarding_headline(model) == (
        "m v3 of credit-scoring recorded (owner alice); provenance incomplete (datasets without version:"
        " bureau); risk reassessment requested"
    )
    written = {
        "ai_system": "credit-scoring",
        "versions": ["m/1", "m/2"],
        "cleared": ["m/2"],
        "tags_set": ["m/2 aims.approval"],
        "aliases_changed": ["m@champion → 2"],
    }
    assert write_back_headline(written) == (
        "credit-scoring: 1 of 2 MLflow version(s) cleared; 1 tag(s) set, alias m@champion → 2"
    )
