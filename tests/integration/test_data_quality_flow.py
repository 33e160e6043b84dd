"""check-data-quality on the real stack: pass, critical fail, drift, warning-only, baseline, bad input,
and the consequences (nonconformity, reassessment requests) exactly once per failing version."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import yaml

from events.producer import EventPublisher
from schemas.events import DataChangedEvent
from schemas.records import AISystem, ModelVersion
from schemas.settings import AimsSettings
from tests.support import SessionStack

DEFAULT_TOPIC = AimsSettings().events_topic


def write_loans(path: Path, *, every: int = 1, income_factor: int = 1, null_ids: int = 0) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["applicant_id", "income", "amount", "term_months", "approved"])
        for i in range(0, 500, every):
            applicant = "" if i < null_ids else i
            writer.writerow(
                [applicant, (20_000 + 137 * i) * income_factor, 1_000 + 53 * i, 12 + 12 * (i % 5), i % 3 != 0]
            )
    return path


def changed(dataset: str, version: str, path: Path) -> DataChangedEvent:
    return DataChangedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"dq-{uuid.uuid4().hex[:10]}",
            "source": "urn:aims:tests:dq",
            "data": {
                "dataset_id": dataset,
                "version": version,
                "change_kind": "appended",
                "location": {"uri": path.as_uri()},
            },
        }
    )


def own_suite(stack: SessionStack, dataset: str) -> None:
    """The shipped loan-applications suite under this test's dataset name."""
    suite = yaml.safe_load((stack.suites_dir / "loan-applications.yaml").read_text())
    suite["dataset"] = dataset
    (stack.suites_dir / f"{dataset}.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))


def outcome_events(stack: SessionStack, prefix: str, expected: int) -> list[dict]:  # type: ignore[type-arg]
    records = stack.read_topic(DEFAULT_TOPIC, expected=10**9, timeout=8)
    found = [json.loads(r.value) for r in records if r.value and prefix.encode() in r.value]
    return found


def run_all(stack: SessionStack, topics: dict[str, str], events: list[DataChangedEvent]) -> None:
    publisher = EventPublisher(stack.bootstrap, topics["AIMS_EVENTS_TOPIC"])
    with stack.router(topics):
        for event in events:
            publisher.publish(event)
            # One at a time: each version's reference is the last version accepted before it.
            stack.wait_for_runs([event.dedup_key], states={"Completed"}, timeout=240)
    publisher.close()


def test_pass_drift_critical_and_warning_with_their_consequences(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    dataset, system = f"loans-{tag}", f"scoring-{tag}"
    own_suite(stack, dataset)
    with stack.register().unit_of_work("test") as uow:
        uow.systems.add(AISystem(name=system, owner="risk", intended_use="loans", risk_tier="high"))
        uow.model_versions.add(
            ModelVersion(
                system=system,
                model_name="gbm",
                version="1",
                source_uri="m:/1",
                submitted_by="ana",
                datasets=[f"{dataset}@v1"],
            )
        )
    events = [
        changed(dataset, "v1", write_loans(tmp_path / "v1.csv")),
        changed(dataset, "v2", write_loans(tmp_path / "v2.csv", income_factor=5)),  # drift only
        changed(dataset, "v3", write_loans(tmp_path / "v3.csv", null_ids=30)),  # critical expectation
        changed(dataset, "v4", write_loans(tmp_path / "v4.csv", every=8)),  # fewer rows: a warning
    ]
    run_all(stack, topics, events)

    with stack.register().reader() as uow:
        results = {r.id.split("@")[1]: r for r in uow.data_quality.find() if r.id.startswith(f"{dataset}@")}
        versions = {v.version: v for v in uow.dataset_versions.find(dataset=dataset)}
        ncs = {n.id for n in uow.nonconformities.find(source="data-quality") if dataset in n.id}
    assert {k: r.verdict for k, r in results.items()} == {
        "v1": "passed",
        "v2": "failed",
        "v3": "failed",
        "v4": "warning",
    }
    assert (
        results["v2"].drift["income"]["level"] == "critical" and results["v2"].drift["income"]["psi"] > 0.25
    )
    assert all(e["success"] for e in results["v2"].expectations)  # it failed on drift alone
    nulls = next(
        e
        for e in results["v3"].expectations
        if e["expectation"] == "expect_column_values_to_not_be_null"
        and e["kwargs"]["column"] == "applicant_id"
    )
    assert not nulls["success"] and nulls["unexpected_count"] == 30
    assert {k: v.status for k, v in versions.items()} == {
        "v1": "accepted",
        "v2": "rejected",
        "v3": "rejected",
        "v4": "accepted",
    }
    assert versions["v1"].profile is not None and versions["v1"].content_hash
    assert ncs == {f"dq:{dataset}@v2", f"dq:{dataset}@v3"}

    validated = outcome_events(stack, f"validated:{dataset}@", 4)
    assert sorted(e["data"]["version"] for e in validated) == ["v1", "v2", "v3", "v4"]
    reassess = outcome_events(stack, f"reassess:{dataset}@", 2)
    assert sorted((e["data"]["reason"], e["id"]) for e in reassess) == [
        ("data_quality_failure", f"reassess:{dataset}@v3:{system}"),
        ("drift", f"reassess:{dataset}@v2:{system}"),
    ]

    # The same failing version announced again: checked again, but nothing opened or requested twice.
    run_all(stack, topics, [changed(dataset, "v3", tmp_path / "v3.csv")])
    assert len(outcome_events(stack, f"reassess:{dataset}@", 2)) == 2
    with stack.register().reader() as uow:
        assert len([n for n in uow.nonconformities.find() if dataset in n.id]) == 2


def test_a_dataset_without_a_suite_gets_a_baseline_then_is_checked_against_it(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    dataset = f"fresh-{uuid.uuid4().hex[:6]}"
    run_all(
        stack,
        topics,
        [
            changed(dataset, "1", write_loans(tmp_path / "1.csv")),
            changed(dataset, "2", write_loans(tmp_path / "2.csv", null_ids=5)),
        ],
    )
    suite = yaml.safe_load((stack.suites_dir / f"{dataset}.yaml").read_text())
    assert suite["status"] == "baseline" and suite["dataset"] == dataset
    with stack.register().reader() as uow:
        assert uow.data_quality.one(f"{dataset}@1").verdict == "baseline"
        second = uow.data_quality.one(f"{dataset}@2")
    assert second.verdict in {"failed", "warning"}
    assert any(not e["success"] and e["kwargs"].get("column") == "applicant_id" for e in second.expectations)


def test_an_unreadable_file_is_a_recorded_finding(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    dataset = f"missing-{uuid.uuid4().hex[:6]}"
    own_suite(stack, dataset)
    run_all(stack, topics, [changed(dataset, "1", tmp_path / "does-not-exist.csv")])
    with stack.register().reader() as uow:
        result = uow.data_quality.one(f"{dataset}@1")
        version = uow.dataset_versions.one(f"{dataset}@1")
    assert result.verdict == "unavailable" and "does-not-exist.csv" in result.statistics["error"]
    assert version.status == "rejected"
