"""Events on the real broker become flow runs on the real Prefect server, exactly once."""

from __future__ import annotations

import uuid

from events.codec import encode_binary
from tests.factories import data_event, incident_event, model_event
from tests.routes import started_flow
from tests.support import SessionStack, poll


def test_each_event_type_makes_one_completed_run_with_its_parameters(
    stack: SessionStack, topics: dict[str, str], tmp_path
) -> None:
    dataset = tmp_path / "loans.csv"
    dataset.write_text("id,amount\n1,100\n2,250\n")
    # A version of its own: the session's register is shared, and another module may have registered
    # the factory's default version first (the register then keeps that one, with its event key).
    events = [model_event(version=uuid.uuid4().hex[:8]), data_event(uri=dataset.as_uri()), incident_event()]
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    with stack.router(topics):
        publisher.publish(events[0], mode="structured")
        publisher.publish(events[1], mode="binary")
        publisher.publish(events[2], mode="structured")
        runs = stack.wait_for_runs([e.dedup_key for e in events], states={"Completed"}, timeout=240)
    publisher.close()

    by_key = {r.idempotency_key: r for r in runs}
    assert len(runs) == 3, [(r.flow_name, r.state) for r in runs]
    for event in events:
        run = by_key[event.dedup_key]
        assert run.flow_name == started_flow(event.type)  # the literal table, not ROUTES
        assert run.parameters == {"event": event.model_dump(mode="json")}
        assert run.state == "Completed"
    # Each run is named for what it is about and tagged with its subjects, as a person filters the UI.
    onboarded, checked_run, reported = (by_key[e.dedup_key] for e in events)
    model_version = events[0].data.version
    assert onboarded.name == f"onboard-model · credit-scoring · credit-scoring-model v{model_version}"
    assert {"system:credit-scoring", "dataset:loans"} <= set(onboarded.tags)
    assert checked_run.name == f"check-data-quality · loans {events[1].data.version}"
    assert "dataset:loans" in checked_run.tags
    assert reported.name == "handle-incident · credit-scoring · fundamental_rights · high"
    assert {"system:credit-scoring", f"incident:{events[2].dedup_key}"} <= set(reported.tags)

    # The flows left evidence and their records in the register, the router its receipts.
    register = stack.register()
    with register.reader() as uow:
        records = {e.event_key: e for e in uow.evidence.find() if e.event_key in by_key}
        receipts = {e.key: e for e in uow.events.find() if e.key in by_key}
        version = uow.dataset_versions.one(f"{events[1].data.dataset_id}@{events[1].data.version}")
        model = uow.model_versions.find(event_key=events[0].dedup_key)
        incident = uow.incidents.one(events[2].dedup_key)
        actors = {e.actor for e in uow.audit_entries("evidence")}
    for event in events:
        assert event.dedup_key in records
        assert "A.6.2.8" in records[event.dedup_key].controls
        assert records[event.dedup_key].flow_run_id == by_key[event.dedup_key].id
        assert receipts[event.dedup_key].flow_runs == [by_key[event.dedup_key].id]
        assert receipts[event.dedup_key].type == event.type
    fingerprint = records[events[1].dedup_key].outcome
    assert fingerprint["bytes"] == dataset.stat().st_size and len(fingerprint["sha256"]) == 64
    assert version.content_hash == fingerprint["sha256"] and version.size_bytes == dataset.stat().st_size
    assert [m.version for m in model] == [events[0].data.version]
    assert incident.severity == events[2].data.severity and incident.system == events[2].data.ai_system
    assert any(a.startswith(f"flow:check-data-quality/{by_key[events[1].dedup_key].id}") for a in actors)
    assert register.verify_audit().ok
    api = stack.api()
    response = api.request(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [r.id for r in runs]}}}
    )
    api.close()
    artifacts: dict[str, dict[str, str]] = {}
    descriptions: dict[str, dict[str, str]] = {}
    for a in response.json():
        artifacts.setdefault(a["flow_run_id"], {})[a["key"]] = a["type"]
        descriptions.setdefault(a["flow_run_id"], {})[a["key"]] = a["description"] or ""
    # A summary from every run; the data-quality run adds its expectations table and a Data Docs link.
    from flows.evidence import artifact_key  # imports Prefect: only once the session has pointed it here
    from flows.text import markdown_text

    subjects = {e.dedup_key: e.key for e in events}
    summaries = {run.id: artifact_key(run.flow_name, subjects[k]) for k, run in by_key.items()}
    assert all(artifacts[run_id][key] == "markdown" for run_id, key in summaries.items())
    dq_run = by_key[events[1].dedup_key].id
    assert artifacts[dq_run] == {
        summaries[dq_run]: "markdown",
        f"{summaries[dq_run]}-expectations": "table",
        f"{summaries[dq_run]}-data-docs": "markdown",  # Prefect's link artifacts are markdown
    }
    # Every artifact opens with the run's outcome in one sentence (the UI shows it first).
    onboarding = f"credit-scoring-model v{model_version} of credit-scoring recorded (owner alice)"
    assert descriptions[onboarded.id][summaries[onboarded.id]].startswith(f"{onboarding}; training data")
    checked = f"loans {events[1].data.version} {records[events[1].dedup_key].outcome['verdict']}: "
    assert all(d.startswith(checked) for d in descriptions[dq_run].values()), descriptions[dq_run]
    serious = "serious under Art. 73, report due" if incident.serious else "not serious under Art. 73"
    # Descriptions are Markdown in the UI: the sentence is escaped as text ("fundamental\\_rights").
    triaged = f"{incident.severity.value} fundamental_rights incident on credit-scoring: {serious}"
    assert descriptions[reported.id][summaries[reported.id]].startswith(markdown_text(triaged))

    # Every offset was committed once the runs were accepted.
    assert stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 3


def test_same_event_delivered_three_times_makes_one_run(stack: SessionStack, topics: dict[str, str]) -> None:
    event = incident_event("triple")
    value, headers = encode_binary(event)
    with stack.router(topics):
        stack.publish_raw(topics["AIMS_EVENTS_TOPIC"], [(event.key.encode(), value, headers)] * 3)
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 3, 120, "3 offsets committed")
        runs = stack.wait_for_runs([event.dedup_key])
    assert len(runs) == 1
    api = stack.api()
    assert api.count_runs({"idempotency_key": {"any_": [event.dedup_key]}}) == 1
    api.close()
    with stack.register().reader() as uow:
        assert uow.events.one(event.dedup_key).flow_runs == [runs[0].id]
        assert len(uow.audit_entries("event_received", event.dedup_key)) == 1


def test_an_outcome_event_is_recorded_and_starts_nothing(stack: SessionStack, topics: dict[str, str]) -> None:
    from schemas.events import DataQualityValidatedEvent

    event = DataQualityValidatedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"dq-{topics['AIMS_CONSUMER_GROUP'][-6:]}",
            "source": "urn:aims:tests",
            "data": {"dataset_id": "loans", "version": "v9", "verdict": "passed"},
        }
    )
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    with stack.router(topics) as router:
        publisher.publish(event)
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 1, 120, "its offset committed")
        assert router.stats.dead_lettered == 0
    publisher.close()
    api = stack.api()
    assert api.count_runs({"idempotency_key": {"any_": [event.dedup_key]}}) == 0
    api.close()
    with stack.register().reader() as uow:
        receipt = uow.events.one(event.dedup_key)
    assert receipt.type == event.type and receipt.flow_runs == [] and receipt.data["verdict"] == "passed"
