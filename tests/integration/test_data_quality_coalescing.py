"""Bursts of data changes are checked once, and events a flow could not send are not lost."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.prefect_runs import SUPERSEDED_RECORDED as RECORDED
from connectors.prefect_runs import PrefectLauncher
from connectors.register.outbox import outbox_message
from schemas.events import DataQualityValidatedEvent
from schemas.settings import AimsSettings
from tests.integration.datasets import data_change, with_suite_of, write_loans
from tests.support import SessionStack, poll

DEFAULT_TOPIC = AimsSettings().events_topic
# Long enough for the whole burst to be routed before the first check starts, on a loaded machine too.
WINDOW = 20.0


def twenty_changes(
    stack: SessionStack, topics: dict[str, str], dataset: str, tmp_path: Path
) -> tuple[Path, list[str]]:
    """Twenty changes of `dataset` (with a suite) published at once: its data file, their keys."""
    with_suite_of(stack, dataset)
    data = write_loans(tmp_path / "loans.csv")
    events = [data_change(dataset, str(v), data) for v in range(1, 21)]
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    for event in events:
        publisher.publish(event)
    publisher.close()
    return data, [e.dedup_key for e in events]


def test_a_burst_of_twenty_changes_is_one_check_and_nineteen_superseded_most_without_a_run(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    dataset = f"burst-{uuid.uuid4().hex[:6]}"
    data, keys = twenty_changes(stack, topics, dataset, tmp_path)
    with stack.router(topics, coalesce_seconds=WINDOW):
        runs = stack.wait_for_runs(keys, states={"Completed", RECORDED}, timeout=400)
    assert len(runs) == 20  # every change has its run: nothing is dropped on the way
    # The router stood each run down when the next change came (well before it was due), and the
    # check recorded it: a superseded change costs no flow run of its own. One routed too slowly to
    # be stood down in time still runs, finds the later one and records itself.
    states = Counter(r.state for r in runs)
    assert states[RECORDED] >= 15 and states[RECORDED] + states["Completed"] == 20, states

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


def test_a_router_stands_down_a_superseded_run_due_within_seconds_while_no_worker_holds_it(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    # A window of 10 s: every run is due within seconds when the next change comes (at 10,000
    # changes over 200 datasets, routed at 4.5/s, a dataset's next change came 44 s into a 60 s
    # window). Still Scheduled, it is nobody's yet: a worker that read it meanwhile is refused
    # Pending for a Cancelled run (Prefect's PreventPendingTransitions).
    dataset = f"soon-{uuid.uuid4().hex[:6]}"
    _, keys = twenty_changes(stack, topics, dataset, tmp_path)
    with stack.router(topics, coalesce_seconds=10.0) as router:
        runs = stack.wait_for_runs(keys, states={"Completed", RECORDED}, timeout=400)
        stood_down = router.stats.stood_down
    assert len(runs) == 20
    assert stood_down >= 15, f"the router stood down {stood_down} of 19 superseded runs"
    states = Counter(r.state for r in runs)
    assert states[RECORDED] >= 15 and states[RECORDED] + states["Completed"] == 20, states
    with stack.register().reader() as uow:
        versions = uow.dataset_versions.find(dataset=dataset)
    assert sorted((v.version for v in versions), key=int) == [str(v) for v in range(1, 21)]


class NeverStandsDown(PrefectLauncher):
    """A router that stands nothing down: as when a worker held each run already, or the router that
    started it died or lost its partition."""

    async def stand_down(self, run_id: uuid.UUID, message: str) -> bool:
        return False


def test_when_the_router_stands_nothing_down_the_first_superseded_run_stands_down_the_rest(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    dataset = f"slow-{uuid.uuid4().hex[:6]}"
    _, keys = twenty_changes(stack, topics, dataset, tmp_path)
    with stack.router(topics, coalesce_seconds=WINDOW, launcher=NeverStandsDown):
        runs = stack.wait_for_runs(keys, states={"Completed", RECORDED}, timeout=400)
    assert len(runs) == 20
    # The worker takes a few runs at once (the pool's limit); the first of them to find itself
    # superseded stands down every other change still waiting, and records it. Without that, all 20
    # ran (19 of them only to find a later change).
    states = Counter(r.state for r in runs)
    assert states[RECORDED] >= 10 and states[RECORDED] + states["Completed"] == 20, states

    with stack.register().reader() as uow:
        versions = {v.version: v for v in uow.dataset_versions.find(dataset=dataset)}
        results = [r for r in uow.data_quality.find() if r.dataset_version_id.startswith(f"{dataset}@")]
        evidence = [e for e in uow.evidence.find(flow="check-data-quality") if e.subject == dataset]
    assert [r.dataset_version_id for r in results] == [f"{dataset}@20"]
    superseded = {k: v for k, v in versions.items() if v.status == "superseded"}
    assert sorted(superseded, key=int) == [str(v) for v in range(1, 20)]
    assert all(int(v.provenance["superseded_by"]["version"]) > int(v.version) for v in superseded.values())
    assert len(evidence) == 20


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
