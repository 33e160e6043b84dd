"""OpenLineage in, end to end: the real `openlineage-python` client, the gateway, the router, the worker.

A pipeline's client posts its run events through its own HTTP transport (api_key auth, gzip) to the
gateway's /api/v1/lineage. A finished run whose output lies under the session's files data source
(which the session policy maps for the "file" namespace) starts check-data-quality for that file, and
the producer's data-quality assertions stand in the check's evidence beside its own verdict; START,
FAIL and a finished run whose output no location maps change nothing but the record.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from flows.data_quality.lineage_intake import SOURCE, event_id
from tests.integration.datasets import write_loans
from tests.support import FILES_SOURCE, SessionStack, poll

KEY = "integration-openlineage-key"
DONE = {"Completed"}
PRODUCER = "https://example.com/aims-tests/pipeline"


@pytest.fixture(scope="module")
def router(stack: SessionStack) -> Iterator[Any]:
    with stack.default_topic_router("openlineage") as running:
        yield running


@pytest.fixture(scope="module")
def gateway(stack: SessionStack) -> Iterator[str]:
    """The gateway with the OpenLineage key (the gateway process gets this one's environment)."""
    before = os.environ.get("AIMS_OPENLINEAGE_API_KEY")
    os.environ["AIMS_OPENLINEAGE_API_KEY"] = KEY
    try:
        with stack.gateway("gateway-openlineage") as url:
            yield url
    finally:
        if before is None:
            os.environ.pop("AIMS_OPENLINEAGE_API_KEY", None)
        else:
            os.environ["AIMS_OPENLINEAGE_API_KEY"] = before


def client(url: str) -> Any:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    config = HttpConfig.from_dict(
        {"type": "http", "url": url, "auth": {"type": "api_key", "apiKey": KEY}, "compression": "gzip"}
    )
    return OpenLineageClient(transport=HttpTransport(config))


def emit(url: str, state: str, run_id: str, outputs: list[Any], job: str = "nightly-loans") -> None:
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    client(url).emit(
        RunEvent(
            eventType=RunState[state],
            eventTime="2026-12-05T12:00:00.000Z",
            run=Run(runId=run_id),
            job=Job(namespace="aims-tests", name=job),
            producer=PRODUCER,
            outputs=outputs,
        )
    )


def file_output(path: str, assertions: Sequence[tuple[str, bool, str | None]] = ()) -> Any:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

    facets: dict[str, Any] = {"outputStatistics": stats.OutputStatisticsOutputDatasetFacet(rowCount=500)}
    if assertions:
        facets["dataQualityAssertions"] = dqa.DataQualityAssertionsDatasetFacet(
            assertions=[dqa.Assertion(assertion=a, success=ok, column=c) for a, ok, c in assertions]
        )
    return OutputDataset("file", path, outputFacets=facets)


def deliveries(stack: SessionStack, run_id: str) -> dict[str, Any]:
    with stack.register().reader() as uow:
        return {
            d.kind: d for d in uow.webhook_deliveries.find(sender="openlineage") if d.data["run_id"] == run_id
        }


def test_a_finished_run_of_the_real_client_starts_a_check_of_its_mapped_output(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    root = stack.data_root
    assert root is not None, f"the session has no {FILES_SOURCE} source"
    (root / "lineage").mkdir(exist_ok=True)
    path = write_loans(root / "lineage" / f"loans-{uuid.uuid4().hex[:8]}.csv")
    run_id = str(uuid.uuid4())
    checked = [("not_null", True, "applicant_id"), ("income_under_1m", False, "income")]
    emit(gateway, "START", run_id, [file_output(str(path))])
    emit(gateway, "COMPLETE", run_id, [file_output(str(path), checked)])
    key = f"{SOURCE}#{event_id(run_id, 'file', str(path))}"
    stack.wait_for_runs([key], states=DONE, timeout=300)
    recorded = deliveries(stack, run_id)
    assert recorded["openlineage.COMPLETE"].outcome == "data-changed"
    assert recorded["openlineage.START"].outcome == "recorded"
    inside = str(path.relative_to(root))
    dataset = inside.replace("/", ".")  # a folder reads as '.' in the dataset id (it names the suite)
    with stack.register().reader() as uow:
        evidence = uow.evidence.get(key, "check-data-quality")
        version = uow.dataset_versions.find(dataset=dataset, version=run_id)
    assert evidence is not None and len(version) == 1, (evidence, version)
    summary = evidence.outcome
    # The producer's verdict stands beside the project's own, never instead of it.
    assert summary["verdict"] in {"baseline", "passed", "warning", "failed"}
    assert summary["external_assertions"].startswith("1 passed, 1 failed: income_under_1m(income)")
    assert PRODUCER in summary["external_assertions"] and run_id in summary["external_assertions"]
    assert summary["row_count"] == 500 and summary["source"] == f"source: {FILES_SOURCE}, path: {inside}"


def test_start_fail_and_unmapped_outputs_change_nothing_but_the_record(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    root = stack.data_root
    assert root is not None
    path = write_loans(root / f"failed-{uuid.uuid4().hex[:8]}.csv")
    failed, unmapped = str(uuid.uuid4()), str(uuid.uuid4())
    emit(gateway, "START", failed, [file_output(str(path))])
    emit(gateway, "FAIL", failed, [file_output(str(path))])
    emit(gateway, "COMPLETE", unmapped, [file_output("/nowhere/mapped.csv")], job="side-job")
    poll(lambda: len(deliveries(stack, failed)) == 2 or None, 60, "the START and FAIL of the failed run")
    done = poll(lambda: deliveries(stack, unmapped) or None, 60, "the COMPLETE of the unmapped run")
    assert done["openlineage.COMPLETE"].outcome == "unmapped"
    assert "no openlineage.dataset_locations entry maps it" in done["openlineage.COMPLETE"].reasons[0]
    assert {d.outcome for d in deliveries(stack, failed).values()} == {"recorded"}
    with stack.register().reader() as uow:
        staged = [
            m.key
            for m in uow.outbox.find()
            if m.key.startswith((f"{SOURCE}#{failed}", f"{SOURCE}#{unmapped}"))
        ]
    assert staged == []
    listed = stack.aims("lineage", "--outcome", "unmapped")
    assert listed.returncode == 0, listed.stderr
    assert "side-job" in listed.stdout and "/nowhere/mapped.csv" in listed.stdout
