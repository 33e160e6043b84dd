"""Bursts of data changes are checked once, and events a flow could not send are not lost."""

from __future__ import annotations

import csv
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from connectors.register.outbox import outbox_message
from schemas.events import DataChangedEvent, DataQualityValidatedEvent
from schemas.settings import AimsSettings
from tests.support import SessionStack, poll

DEFAULT_TOPIC = AimsSettings().events_topic
# Long enough for the whole burst to be routed before the first check starts, on a loaded machine too.
WINDOW = 20.0


def loans(path: Path) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["applicant_id", "income", "amount", "term_months", "approved"])
        for i in range(300):
            writer.writerow([i, 20_000 + 137 * i, 1_000 + 53 * i, 12 + 12 * (i % 5), i % 3 != 0])
    return path


def change(dataset: str, version: str, path: Path) -> DataChangedEvent:
    return DataChangedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"burst-{uuid.uuid4().hex[:10]}",
            "source": "urn:aims:tests:burst",
            "data": {
                "dataset_id": dataset,
                "version": version,
                "change_kind": "appended",
                "location": {"uri": path.as_uri()},
            },
        }
    )


def test_a_burst_of_twenty_changes_is_one_check_and_nineteen_superseded(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    dataset = f"burst-{uuid.uuid4().hex[:6]}"
    suite = yaml.safe_load((stack.suites_dir / "loan-applications.yaml").read_text())
    (stack.suites_dir / f"{dataset}.yaml").write_text(yaml.safe_dump({**suite, "dataset": dataset}))
    data = loans(tmp_path / "loans.csv")
    events = [change(dataset, str(v), data) for v in range(1, 21)]
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    for event in events:
        publisher.publish(event)
    with stack.router(topics, coalesce_seconds=WINDOW):
        runs = stack.wait_for_runs([e.dedup_key for e in events], states={"Completed"}, timeout=400)
    publisher.close()
    assert len(runs) == 20  # every change has its run: nothing is dropped on the way

    with stack.register().reader() as uow:
        versions = {v.version: v for v in uow.dataset_versions.find(dataset=dataset)}
        results = [r for r in uow.data_quality.find() if r.dataset_version_id.startswith(f"{dataset}@")]
        evidence = [e for e in uow.evidence.find(flow="check-data-quality") if e.subject == dataset]
    assert [r.dataset_version_id for r in results] == [f"{dataset}@20"]
    assert results[0].verdict == "passed"
    assert versions["20"].status == "accepted"
    superseded = {k: v for k, v in versions.items() if v.status == "superseded"}
    assert sorted(superseded, key=int) == [str(v) for v in range(1, 20)]
    for v in superseded.values():
        # The latest change routed when its run started: a chain of later versions that ends at 20.
        assert int(v.provenance["superseded_by"]["version"]) > int(v.version)
        assert v.location["uri"] == data.as_uri()  # kept with its provenance, not lost
    assert len(evidence) == 20

    validated = stack.read_matching(
        DEFAULT_TOPIC,
        lambda r: bool(r.value) and f'"dataset_id":"{dataset}"'.encode() in r.value.replace(b" ", b""),
        count=20,
    )
    verdicts = sorted(json.loads(r.value)["data"]["verdict"] for r in validated)
    assert verdicts == ["passed"] + ["superseded"] * 19


def test_events_a_run_left_in_the_outbox_are_sent_by_the_router(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    # What a flow run that died between its commit and its send leaves behind.
    event = DataQualityValidatedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"validated:orphan-{uuid.uuid4().hex[:8]}@1",
            "source": "urn:aims:check-data-quality",
            "data": {"dataset_id": "orphan", "version": "1", "verdict": "failed"},
        }
    )
    stale = outbox_message(event, topics["AIMS_EVENTS_TOPIC"]).model_copy(
        update={"created_at": datetime.now(UTC) - timedelta(minutes=5)}
    )
    with stack.register().unit_of_work("test:crashed-run") as uow:
        uow.outbox.add(stale)
    with stack.router(topics, outbox=True):

        def sent() -> bool | None:
            with stack.register().reader() as uow:
                return uow.outbox.one(stale.key).sent_at is not None or None

        def received() -> bool | None:
            with stack.register().reader() as uow:
                return uow.events.get(event.dedup_key) is not None or None

        poll(sent, 60, "the outbox row marked sent")
        # The router consumes its own topic, so the relayed event comes back to it like any other.
        poll(received, 60, "the relayed event received")
    on_topic = [
        json.loads(r.value)
        for r in stack.read_topic(topics["AIMS_EVENTS_TOPIC"], expected=1, timeout=30)
        if r.value
    ]
    assert [e["id"] for e in on_topic] == [event.id]
