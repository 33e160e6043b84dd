"""reassess-risk on the real stack, from each of its triggers: a new model version, a failed data-quality
check, an incident, the schedule and a person; one approval per assessment however often it is asked.

The flows announce their requests on the default events topic, so this module's router routes that
topic, from its end: earlier tests filled it with events of their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from events.producer import EventPublisher
from flows.risk.scoring import CATEGORY_NAMES
from schemas.events import RiskReassessmentRequestedEvent
from schemas.records import AISystem, Risk, RiskAssessment
from schemas.settings import AimsSettings
from tests.factories import incident_event, model_event
from tests.integration.datasets import changed, own_suite, trained_on, write_loans
from tests.support import SessionStack, poll

DEFAULT_TOPIC = AimsSettings().events_topic
DONE = {"Completed"}


@pytest.fixture(scope="module")
def router(stack: SessionStack) -> Iterator[Any]:
    with stack.default_topic_router("risk") as running:
        yield running


@pytest.fixture
def publisher(stack: SessionStack) -> Iterator[EventPublisher]:
    publisher = stack.publisher(DEFAULT_TOPIC)
    yield publisher
    publisher.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assessments(stack: SessionStack, system: str) -> list[RiskAssessment]:
    with stack.register().reader() as uow:
        return uow.assessments.find(system=system, order_by="assessed_at")


def topic_events(
    stack: SessionStack, match: Callable[[dict[str, Any]], bool], count: int = 1
) -> list[dict[str, Any]]:
    """The events on the topic that `match`, once exactly `count` of them are there."""

    def matches(record: Any) -> bool:
        return bool(record.value) and match(json.loads(record.value))

    return [json.loads(r.value) for r in stack.read_matching(DEFAULT_TOPIC, matches, count, timeout=60)]


def with_id(prefix: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: str(e.get("id", "")).startswith(prefix)


def onboard_request_key(system: str, version: str = "1") -> str:
    return f"urn:aims:onboard-model#reassess:{system}/{system}-model/{version}"


def test_new_model_version_gets_an_assessment_an_impact_task_and_one_approval(
    stack: SessionStack, router: Any, publisher: EventPublisher
) -> None:
    system = unique("lending")
    event = model_event(system)
    publisher.publish(event)
    runs = stack.wait_for_runs([event.dedup_key, onboard_request_key(system)], states=DONE, timeout=300)
    run = next(r for r in runs if r.flow_name == "reassess-risk")

    [assessment] = assessments(stack, system)
    with stack.register().reader() as uow:
        risks = uow.risks.find(system=system)
        versions = [v for r in risks for v in uow.risk_versions.find(risk_id=r.id)]
        impact = uow.impact_assessments.one(f"ia:{system}/{system}-model/1")
        approvals = uow.approvals.find(system=system)
        actors = {e.actor for e in uow.audit_entries("risk_version")} | {
            e.actor for e in uow.audit_entries("approval", approvals[0].id)
        }
    assert assessment.reason == "new_model_version" and assessment.flow_run_id == run.id
    assert sorted(r.category for r in risks) == sorted(CATEGORY_NAMES)
    assert {v.version for v in versions} == {1} and all(v.rationale for v in versions)
    assert impact.status == "open" and impact.due is not None
    # High tier (impact 4 of 5) and baseline likelihood 2: at least medium everywhere, above appetite.
    assert assessment.highest_inherent == "high" and set(assessment.gated) == set(CATEGORY_NAMES)
    [approval] = approvals
    assert approval.id == assessment.approval_id and approval.status == "pending"
    assert approval.risk_level == "high" and approval.approver_group == "model-risk,compliance"
    assert approval.quorum == 2 and approval.due_at is not None
    assert approval.context["submitted_by"] == "alice"
    assert assessment.blocked
    assert f"flow:reassess-risk/{run.id}" in actors

    [assessed] = topic_events(stack, with_id(f"assessed:{assessment.id}"))
    assert assessed["data"]["blocked"] is True and assessed["data"]["approval_id"] == approval.id
    assert {r["category"]: r["inherent"] for r in assessed["data"]["risks"]}["transparency"] == "high"

    pending = stack.aims("approvals", "--status", "pending", "--json")
    assert pending.returncode == 0, pending.stderr
    assert approval.id in {a["id"] for a in json.loads(pending.stdout)}

    api = stack.api()
    try:
        found = api.request(
            "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run.id]}}}
        ).json()
    finally:
        api.close()
    [table] = [a for a in found if a["type"] == "markdown"]
    assert "Heat map" in table["data"] and "transparency" in table["data"] and approval.id in table["data"]


def test_an_incident_delivered_three_times_requests_one_approval_and_history_keeps_every_version(
    stack: SessionStack, router: Any, publisher: EventPublisher
) -> None:
    system = unique("scoring")
    onboard = model_event(system)
    publisher.publish(onboard)
    stack.wait_for_runs([onboard_request_key(system)], states=DONE, timeout=300)

    incident = incident_event(system)  # high, fundamental rights: evidence of a fairness risk
    for _ in range(3):
        publisher.publish(incident)
    request_key = f"urn:aims:handle-incident#reassess:{incident.dedup_key}"
    stack.wait_for_runs([request_key], states=DONE, timeout=300)
    # The same request once more, past the router's dedupe: the flow itself must not assess twice.
    [request] = [
        RiskReassessmentRequestedEvent.model_validate(e)
        for e in topic_events(stack, with_id(f"reassess:{incident.dedup_key}"))
    ]
    again = unique("again")
    stack.launch("reassess-risk/aims", {"event": request.model_dump(mode="json")}, again)
    stack.wait_for_runs([again], states=DONE, timeout=180)

    from flows.risk.reassess_risk import (
        assessment_id,  # imports Prefect: only once the session points it here
    )

    first, second = assessments(stack, system)
    assert second.id == assessment_id(request) and second.reason == "incident"
    with stack.register().reader() as uow:
        approvals = uow.approvals.find(system=system, order_by="requested_at")
        fairness = uow.risk_versions.find(risk_id=f"{system}:fairness", order_by="version")
        risk = uow.risks.one(f"{system}:fairness")
    assert [a.subject for a in approvals] == [f"risk-assessment:{first.id}", f"risk-assessment:{second.id}"]
    assert second.gated == ["fairness"] and second.approval_id == approvals[1].id
    assert approvals[1].context["risks"][0]["why"] == "rose from medium to high"
    assert [(v.version, v.inherent_level, v.assessment_id) for v in fairness] == [
        (1, "medium", first.id),
        (2, "high", second.id),
    ]
    assert risk.version == 2 and risk.inherent_level == "high"
    assert any(incident.dedup_key in step["evidence"] for step in fairness[1].rationale)
    topic_events(stack, with_id(f"assessed:{second.id}"), count=1)

    shown = stack.aims("risks", "show", system, "--json")
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)["history"][f"{system}:fairness"]
    assert [v["version"] for v in history] == [1, 2]


def test_a_failed_data_quality_check_reassesses_the_systems_trained_on_the_data(
    stack: SessionStack, router: Any, publisher: EventPublisher, tmp_path: Path
) -> None:
    dataset, system = unique("loans"), unique("underwriting")
    own_suite(stack, dataset)
    trained_on(stack, system, dataset, tier="limited")
    good, bad = (
        changed(dataset, "v1", write_loans(tmp_path / "v1.csv")),
        changed(dataset, "v2", write_loans(tmp_path / "v2.csv", null_ids=40)),
    )
    publisher.publish(good)
    stack.wait_for_runs([good.dedup_key], states=DONE, timeout=300)
    publisher.publish(bad)
    request_key = f"urn:aims:check-data-quality#reassess:{dataset}@v2:{system}"
    stack.wait_for_runs([bad.dedup_key, request_key], states=DONE, timeout=300)

    [assessment] = assessments(stack, system)
    assert assessment.reason in {"data_quality_failure", "drift"} and assessment.evidence == f"{dataset}@v2"
    assert assessment.inputs["checks"] == 2 and assessment.inputs["failed_checks"] == [f"{dataset}@v2"]
    with stack.register().reader() as uow:
        version = uow.risk_versions.one(f"{system}:data_quality@v1")
    # 1 of 2 checks failed (50 %): +3 on the baseline 2; limited tier: impact 2.
    assert (version.likelihood, version.impact, version.inherent_level) == (5, 2, "high")
    assert any("1 of 2 checks failed" in step["evidence"] for step in version.rationale)


def test_the_schedule_requests_only_systems_that_are_due_and_a_person_can_ask_any_time(
    stack: SessionStack, router: Any
) -> None:
    today = datetime.now(UTC).date()
    due, later, retired = unique("due"), unique("later"), unique("retired")
    with stack.register().unit_of_work("test") as uow:
        for name, stage in ((due, "deployed"), (later, "deployed"), (retired, "retired")):
            uow.systems.add(
                AISystem(name=name, owner="o", intended_use="u", risk_tier="minimal", lifecycle_stage=stage)
            )
        for name, review in ((due, today - timedelta(days=1)), (later, today + timedelta(days=30))):
            uow.risks.add(
                Risk(
                    id=f"{name}:drift",
                    system=name,
                    category="drift",
                    title="t",
                    owner="o",
                    likelihood=2,
                    impact=1,
                    inherent_level="low",
                    residual_level="low",
                    next_review=review,
                )
            )
    schedule = unique("schedule")
    stack.launch(
        "schedule-risk-reviews/aims", {"as_of": today.isoformat(), "systems": [due, later, retired]}, schedule
    )
    stack.wait_for_runs([schedule], states=DONE, timeout=180)
    key = f"urn:aims:schedule-risk-reviews#scheduled:{due}:{today.isoformat()}"
    stack.wait_for_runs([key], states=DONE, timeout=300)
    # Exactly one request among the three systems: for the one that is due.
    [requested] = topic_events(
        stack,
        lambda e: (
            with_id("scheduled:")(e)
            and today.isoformat() in e["id"]
            and e["data"].get("ai_system") in {due, later, retired}
        ),
    )
    assert requested["data"]["ai_system"] == due
    [assessment] = assessments(stack, due)
    assert assessment.reason == "scheduled"
    with stack.register().reader() as uow:
        assert uow.risks.one(f"{due}:drift").next_review == today + timedelta(days=180)
        assert uow.risk_versions.count(risk_id=f"{due}:drift") == 1
    assert assessments(stack, later) == [] and assessments(stack, retired) == []

    # A person asks for the one that is not due.
    asked = stack.aims("risks", "reassess", later, "--by", "carol", "--note", "supplier changed")
    assert asked.returncode == 0, asked.stderr
    [manual] = poll(lambda: assessments(stack, later), 300, "the manual reassessment")
    assert manual.reason == "manual" and manual.evidence == "cli:carol"
    [request] = topic_events(stack, lambda e: f"{e.get('source')}#{e.get('id')}" == manual.trigger)
    assert request["data"]["details"] == {"requested_by": "carol", "note": "supplier changed"}
    assert request["subject"] == later and f"event {request['id']}" in asked.stdout
    # Minimal tier, no evidence against it: every risk low, nothing to approve, nothing blocked.
    assert manual.highest_inherent == "low" and manual.approval_id is None and not manual.blocked


def test_a_request_for_a_system_not_in_the_inventory_is_recorded_and_assesses_nothing(
    stack: SessionStack, router: Any, publisher: EventPublisher
) -> None:
    ghost = unique("ghost")
    request = RiskReassessmentRequestedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": unique("req"),
            "source": "urn:aims:tests",
            "data": {"ai_system": ghost, "reason": "manual", "evidence": "cli:test"},
        }
    )
    publisher.publish(request)
    stack.wait_for_runs([request.dedup_key], states=DONE, timeout=300)
    with stack.register().reader() as uow:
        evidence = uow.evidence.one(request.dedup_key, "reassess-risk")
        assert uow.risks.find(system=ghost) == []
    assert evidence.outcome["assessed"] is False and "inventory" in evidence.outcome["why"]
    assert assessments(stack, ghost) == []
