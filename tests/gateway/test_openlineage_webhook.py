"""OpenLineage run events through the gateway app: each run transition recorded once, the mapped outputs
of a finished run as data-changed events in the outbox, everything else refused with its reason.

In-process (Starlette's test client) on the test register; the real `openlineage-python` client's HTTP
transport (api_key auth, gzip) posts to the app served by uvicorn on loopback. Every refusal is checked
for its status, its reason, and that nothing reached the register or the outbox.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from connectors.register.store import Register
from flows.data_quality.lineage_intake import delivery_key, external_summary
from gateway.app import create_app
from gateway.desk import DecisionDesk
from schemas.events import DataChangedEvent
from schemas.openlineage import EventType
from schemas.settings import AimsSettings
from tests.gateway.served import served
from tests.lineage import ASSERTIONS, PRODUCER, RUN, event_body, lineage_policy, output

KEY = "unit-openlineage-key"
TOPIC = "aims.events"
PATH = "/api/v1/lineage"
CAP = 64 * 1024
POLICY = lineage_policy()


@dataclass
class Lineage:
    http: TestClient
    register: Register
    sent: list[str]
    settings: AimsSettings
    desk: DecisionDesk

    def post(self, body: Any, key: str | None = KEY, **headers: str) -> Any:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.http.post(PATH, content=content, headers={"Content-Type": "application/json", **headers})

    def counts(self) -> tuple[int, int]:
        with self.register.reader() as uow:
            return uow.webhook_deliveries.count(), uow.outbox.count()


@pytest.fixture
def lineage(register: Register) -> Iterator[Lineage]:
    sent: list[str] = []
    desk = DecisionDesk(register, lambda: POLICY, TOPIC, sent.extend, None, None)
    app_settings = AimsSettings(openlineage_api_key=KEY, gateway_max_body_bytes=CAP)  # type: ignore[arg-type]
    with TestClient(create_app(app_settings, desk, time.time)) as http:
        yield Lineage(http, register, sent, app_settings, desk)


def test_a_finished_run_with_a_mapped_output_is_recorded_and_announced(lineage: Lineage) -> None:
    answer = lineage.post(event_body())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "data-changed", "subject": "pipelines/nightly-loans", "checks": 1}
    with lineage.register.reader() as uow:
        row = uow.webhook_deliveries.get(f"openlineage#{RUN}.COMPLETE")
        outbox = uow.outbox.find()
    assert row is not None and row.kind == "openlineage.COMPLETE" and row.sender == "openlineage"
    assert [m.key for m in outbox] == [row.event_key] == lineage.sent
    event = outbox[0].event
    assert event["type"] == "org.aims.data.changed"
    assert {k: event["data"][k] for k in ("dataset_id", "source", "path", "version")} == {
        "dataset_id": "scores.csv",
        "source": "lake",
        "path": "scores.csv",
        "version": RUN,
    }


def test_a_repeated_event_is_answered_and_produces_nothing_more(lineage: Lineage) -> None:
    assert lineage.post(event_body()).status_code == 200
    before = lineage.counts()
    again = lineage.post(event_body())
    # 200, not 409: OpenLineage clients count any other answer as a failed emit of the pipeline.
    assert again.status_code == 200 and again.json()["status"] == "replayed", again.text
    assert lineage.counts() == before


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (event_body("START"), "recorded"),
        (event_body("RUNNING"), "recorded"),
        (event_body("FAIL", run={"runId": RUN, "facets": {"errorMessage": {"message": "boom"}}}), "recorded"),
        (event_body("ABORT"), "recorded"),
        (event_body(None), "recorded"),
        (event_body(outputs=[output("/elsewhere/x.csv")]), "unmapped"),
    ],
    ids=["start", "running", "fail", "abort", "no eventType", "unmapped"],
)
def test_other_events_change_nothing_but_the_record(lineage: Lineage, body: Any, outcome: str) -> None:
    answer = lineage.post(body)
    assert answer.status_code == 200 and answer.json()["status"] == outcome, answer.text
    assert lineage.counts() == (1, 0) and lineage.sent == []
    with lineage.register.reader() as uow:
        (row,) = uow.webhook_deliveries.find(sender="openlineage")
    assert row.event_key is None and row.data["outputs"][0]["namespace"] == "file"
    if outcome == "unmapped":
        assert row.reasons == ["file /elsewhere/x.csv: no openlineage.dataset_locations entry maps it"]


def test_a_dataset_or_job_event_is_answered_and_ignored(lineage: Lineage) -> None:
    dataset_event = {"eventTime": "2026-12-05T12:00:00Z", "producer": PRODUCER, "dataset": output("/x")}
    answer = lineage.post(dataset_event)
    assert answer.status_code == 200 and "ignored" in answer.json()
    assert lineage.counts() == (0, 0)


def _gzipped(body: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("body", "key", "headers", "status", "reason"),
    [
        (event_body(), None, {}, 401, "invalid API key"),
        (event_body(), "wrong-key", {}, 401, "invalid API key"),
        (event_body(), KEY + "x", {}, 401, "invalid API key"),
        (event_body(), None, {"Authorization": f"Basic {KEY}"}, 401, "invalid API key"),
        (event_body(outputs=[output(f"/srv/lake/{'x' * 70_000}.csv")]), KEY, {}, 413, "over"),
        (b"\0" * (CAP + 1), None, {}, 413, "over"),
        (
            gzip.compress(b" " * (CAP + 10)),
            KEY,
            {"Content-Encoding": "gzip"},
            413,
            "decompressed body is over",
        ),
        (b"{not gzip", KEY, {"Content-Encoding": "gzip"}, 400, "not gzip"),
        (_gzipped(event_body())[:-12], KEY, {"Content-Encoding": "gzip"}, 400, "cut short"),
        (json.dumps(event_body()).encode(), KEY, {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        (b"{", KEY, {}, 400, "not JSON"),
        (b"[]", KEY, {}, 400, "no JSON object"),
        ({"eventTime": "2026-12-05T12:00:00Z"}, KEY, {}, 400, "no run, job or dataset"),
        (event_body("FINISHED"), KEY, {}, 400, 'unknown eventType "FINISHED"'),
        (event_body(run={"runId": "not-a-uuid"}), KEY, {}, 400, "run.runId"),
        (event_body(eventTime="2026-12-05T12:00:00"), KEY, {}, 400, "eventTime"),
        (event_body(outputs=[output("/srv/lake/a\x1b[2J.csv")]), KEY, {}, 400, "control characters"),
        (event_body(job={"namespace": "p"}), KEY, {}, 400, "job.name"),
        (json.dumps(event_body()).replace('"inputs": []', '"inputs": NaN').encode(), KEY, {}, 400, "NaN"),
        (
            event_body(outputs=[output("/srv/lake/a.csv", dataQualityMetrics={"rowCount": 2**60})]),
            KEY,
            {},
            400,
            "rowCount",
        ),
        (
            event_body(
                outputs=[
                    output("/srv/lake/a.csv", dataQualityMetrics={"columnMetrics": {"a": {"min": "NaN"}}})
                ]
            ),
            KEY,
            {},
            400,
            "finite",
        ),
        (
            event_body(outputs=[output("/srv/lake/a.csv", dataQualityAssertions={"assertions": "all good"})]),
            KEY,
            {},
            400,
            "assertions",
        ),
    ],
    ids=[
        "no key",
        "wrong key",
        "longer key",
        "basic auth",
        "oversized body",
        "oversized unauthenticated body",
        "gzip bomb",
        "not gzip",
        "truncated gzip",
        "brotli",
        "malformed JSON",
        "no object",
        "no run",
        "unknown eventType",
        "bad run id",
        "naive eventTime",
        "control characters",
        "no job name",
        "NaN",
        "count beyond JSON's integers",
        "NaN as text",
        "malformed assertions facet",
    ],
)
def test_a_bad_delivery_is_refused_with_its_reason_and_nothing_is_recorded(
    lineage: Lineage, body: Any, key: str | None, headers: dict[str, str], status: int, reason: str
) -> None:
    answer = lineage.post(body, key, **headers)
    assert answer.status_code == status, answer.text
    assert reason in answer.json()["error"], answer.json()
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
    assert lineage.counts() == (0, 0) and lineage.sent == []


def test_without_the_key_setting_openlineage_events_are_refused(register: Register) -> None:
    desk = DecisionDesk(register, lambda: POLICY, TOPIC, lambda keys: None, None, None)
    with TestClient(create_app(AimsSettings(), desk, time.time)) as http:
        answer = http.post(PATH, json=event_body(), headers={"Authorization": "Bearer "})
    assert answer.status_code == 503 and "AIMS_OPENLINEAGE_API_KEY" in answer.json()["error"]
    with register.reader() as uow:
        assert uow.webhook_deliveries.count() == 0


def test_the_producers_assertions_are_kept_for_the_check_of_that_version(lineage: Lineage) -> None:
    body = event_body(outputs=[{**output("/srv/lake/loans/2026-12-05.csv"), "inputFacets": ASSERTIONS}])
    assert lineage.post(body).json()["status"] == "data-changed"
    with lineage.register.reader() as uow:
        (message,) = uow.outbox.find()
        event = DataChangedEvent.model_validate(message.event)
        summary = external_summary(uow, event)
        row = uow.webhook_deliveries.get(delivery_key(RUN, EventType.COMPLETE))
    assert (event.data.dataset_id, event.data.path, event.data.row_count) == (
        "loans",
        "loans/2026-12-05.csv",
        500,
    )
    said = f"producer {PRODUCER}, OpenLineage run {RUN}"
    assert summary == {
        "external_assertions": f"2 passed, 1 failed: income_positive(income) ({said})",
        "external_row_count": f"500 ({said})",
    }
    assert row is not None and row.data["outputs"][0]["assertions"][2]["success"] is False


def test_the_real_openlineage_client_posts_through_its_http_transport(lineage: Lineage) -> None:
    """openlineage-python's HttpTransport (api_key auth, gzip) against the app on a real socket."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    app = create_app(lineage.settings.model_copy(update={"gateway_port": 0}), lineage.desk, time.time)
    with served(app, lineage.settings) as port:
        config = HttpConfig.from_dict(
            {
                "type": "http",
                "url": f"http://127.0.0.1:{port}",
                "auth": {"type": "api_key", "apiKey": KEY},
                "compression": "gzip",
            }
        )
        client = OpenLineageClient(transport=HttpTransport(config))
        assertion = dqa.Assertion(assertion="not_null", success=True, column="applicant_id")
        facet = dqa.DataQualityAssertionsDatasetFacet(assertions=[assertion])
        dataset = OutputDataset("file", "/srv/lake/scores.csv", outputFacets={"dataQualityAssertions": facet})
        for state in (RunState.START, RunState.COMPLETE):
            client.emit(
                RunEvent(
                    eventType=state,
                    eventTime="2026-12-05T12:00:00.000Z",
                    run=Run(runId=RUN),
                    job=Job(namespace="pipelines", name="nightly-loans"),
                    producer=PRODUCER,
                    outputs=[dataset],
                )
            )
        refused = OpenLineageClient(
            transport=HttpTransport(HttpConfig.from_dict({"type": "http", "url": f"http://127.0.0.1:{port}"}))
        )
        with pytest.raises(Exception, match="401"):
            refused.emit(
                RunEvent(
                    eventType=RunState.START,
                    eventTime="2026-12-05T12:00:00Z",
                    run=Run(runId=RUN),
                    job=Job(namespace="p", name="j"),
                    producer=PRODUCER,
                )
            )
    with lineage.register.reader() as uow:
        rows = {r.kind: r for r in uow.webhook_deliveries.find(sender="openlineage")}
        assert uow.outbox.count() == 1
    assert set(rows) == {"openlineage.START", "openlineage.COMPLETE"}
    assert rows["openlineage.COMPLETE"].outcome == "data-changed"
    assert rows["openlineage.COMPLETE"].data["outputs"][0]["passed"] == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=16)
datasets = st.fixed_dictionaries(
    {
        "namespace": st.sampled_from(["file", "postgres://db:5432"]) | names,
        "name": st.just("/srv/lake/") | names,
    },
    optional={
        "facets": st.dictionaries(
            st.sampled_from(["version", "dataQualityAssertions", "x"]), json_values, max_size=2
        ),
        "outputFacets": st.fixed_dictionaries(
            {"outputStatistics": st.fixed_dictionaries({"rowCount": st.integers(-2, 10**6)})}
        ),
        # Numbers the register's canonical JSON cannot hold (NaN, infinities, beyond 2**53) included.
        "inputFacets": st.fixed_dictionaries(
            {
                "dataQualityMetrics": st.fixed_dictionaries(
                    {
                        "rowCount": st.integers() | st.floats(),
                        "columnMetrics": st.dictionaries(
                            names, st.fixed_dictionaries({"min": st.floats()}), max_size=2
                        ),
                    }
                )
            }
        ),
    },
)
shaped = st.fixed_dictionaries(
    {
        "eventType": st.sampled_from([*EventType.__members__, "DONE"]),
        "eventTime": st.sampled_from(["2026-12-05T12:00:00Z", "2026-12-05", "yesterday"]),
        "producer": names,
        "run": st.fixed_dictionaries({"runId": st.uuids().map(str) | names}),
        "job": st.fixed_dictionaries({"namespace": names, "name": names}),
    },
    optional={"outputs": st.lists(datasets, max_size=3), "inputs": st.lists(datasets, max_size=2)},
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=shaped | json_values)
def test_any_authenticated_event_is_recorded_once_or_refused_with_nothing_recorded(
    lineage: Lineage, body: Any
) -> None:
    before = lineage.counts()
    answer = lineage.post(body)
    if answer.status_code != 200:
        assert answer.status_code == 400 and answer.json()["error"], answer.text
        assert lineage.counts() == before
        return
    if "ignored" in answer.json():
        assert lineage.counts() == before
        return
    status = answer.json()["status"]
    assert status in {"data-changed", "unmapped", "recorded", "replayed"}, answer.text
    deliveries, outbox = lineage.counts()
    assert deliveries == before[0] + (status != "replayed")
    assert outbox - before[1] <= answer.json().get("checks", 0)
    assert lineage.post(body).json()["status"] == "replayed"  # and only once
    assert lineage.counts() == (deliveries, outbox)
