"""MLflow webhooks through the gateway app: each delivery recorded once, its events in the outbox.

In-process (Starlette's test client) on the test register; MLflow's REST API is a recording fake of
the `VersionFactsSource` Protocol (the real server is in the integration test). Every refusal is
checked for its status, its reason, and that nothing reached the register or the outbox.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from connectors.mlflow_registry import RegistryUnavailable
from connectors.register.store import Register
from gateway.app import create_app
from gateway.desk import DecisionDesk
from schemas.mlflow import LoggedDataset, VersionFacts
from schemas.policy import Policy
from schemas.settings import AimsSettings
from tests.fakes.mlflow_signing import delivery

SECRET = "unit-mlflow-secret"
TOPIC = "aims.events"
RUN = "0123456789abcdef0123456789abcdef"
CREATED = {
    "name": "credit-scoring",
    "version": "3",
    "source": f"mlflow-artifacts:/1/{RUN}/artifacts/model",
    "run_id": RUN,
    "tags": {},
    "description": "third candidate",
}


@dataclass
class FakeRegistry:
    """`VersionFactsSource`: answers with `facts`, or raises `down` while it is set."""

    facts_given: VersionFacts
    down: Exception | None = None
    asked: list[tuple[str, str, str | None]] = field(default_factory=list)

    def facts(self, name: str, version: str, run_id: str | None) -> VersionFacts:
        self.asked.append((name, version, run_id))
        if self.down is not None:
            raise self.down
        return self.facts_given


@dataclass
class Hooked:
    http: TestClient
    register: Register
    registry: FakeRegistry
    sent: list[str]

    def post(self, body: bytes, headers: dict[str, str]) -> Any:
        return self.http.post("/mlflow/webhook", content=body, headers=headers)

    def counts(self) -> tuple[int, int]:
        with self.register.reader() as uow:
            return uow.webhook_deliveries.count(), uow.outbox.count()


FACTS = VersionFacts(
    user_id="li.wei@northwind.example",
    datasets=[
        LoggedDataset(name="loans", digest="a1b2", source_uri="demo-data/loans.csv", context="training")
    ],
)


@pytest.fixture
def hooked(register: Register, policy: Policy) -> Iterator[Hooked]:
    sent: list[str] = []
    registry = FakeRegistry(FACTS)
    desk = DecisionDesk(register, lambda: policy, TOPIC, sent.extend, None, None, registry)
    settings = AimsSettings(mlflow_webhook_secret=SECRET, gateway_max_body_bytes=64 * 1024)  # type: ignore[arg-type]
    with TestClient(create_app(settings, desk, time.time)) as http:
        yield Hooked(http, register, registry, sent)


def test_a_new_version_of_a_mapped_model_is_recorded_and_announced(hooked: Hooked) -> None:
    body, headers = delivery(SECRET, "model_version", "created", CREATED)
    answer = hooked.post(body, headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "onboarded", "subject": "credit-scoring/3"}
    assert hooked.registry.asked == [("credit-scoring", "3", RUN)]
    with hooked.register.reader() as uow:
        row = uow.webhook_deliveries.get(f"mlflow#{headers['X-MLflow-Delivery-Id']}")
        outbox = uow.outbox.find()
    assert row is not None and row.outcome == "onboarded" and row.ai_system == "credit-scoring"
    assert [m.key for m in outbox] == [row.event_key] == hooked.sent
    event = outbox[0].event
    assert event["type"] == "org.aims.model.version.registered"
    assert event["data"]["owner"] == "li.wei@northwind.example"
    assert event["data"]["training_datasets"] == [{"dataset_id": "loans", "version": "a1b2"}]


def test_a_replayed_delivery_id_is_refused_and_produces_nothing(hooked: Hooked) -> None:
    body, headers = delivery(SECRET, "model_version", "created", CREATED)
    assert hooked.post(body, headers).status_code == 200
    before = hooked.counts()
    answer = hooked.post(body, headers)
    assert answer.status_code == 409 and "replayed delivery id" in answer.json()["error"]
    assert hooked.counts() == before


@pytest.mark.parametrize(
    ("spoil", "status", "reason"),
    [
        (lambda b, h: (b, h | {"X-MLflow-Signature": "v1,AAAA"}), 401, "invalid signature"),
        (lambda b, h: (b + b" ", h), 401, "invalid signature"),
        (
            lambda b, h: delivery(SECRET, "model_version", "created", CREATED, now=time.time() - 3600),
            401,
            "stale",
        ),
        (lambda b, h: delivery(SECRET, "experiment", "created", {"name": "x"}), 400, "unknown entity"),
        (
            lambda b, h: delivery(SECRET, "model_version", "created", {**CREATED, "version": "v3"}),
            400,
            "version",
        ),
    ],
    ids=["wrong signature", "body changed", "stale timestamp", "unknown entity", "bad version"],
)
def test_a_bad_delivery_is_refused_with_its_reason_and_nothing_is_recorded(
    hooked: Hooked, spoil: Any, status: int, reason: str
) -> None:
    body, headers = spoil(*delivery(SECRET, "model_version", "created", CREATED))
    answer = hooked.post(body, headers)
    assert answer.status_code == status, answer.text
    assert reason in answer.json()["error"]
    assert hooked.counts() == (0, 0) and hooked.sent == [] and hooked.registry.asked == []


def test_an_oversized_body_is_refused_before_it_is_read(hooked: Hooked) -> None:
    data = {**CREATED, "description": "x" * (70 * 1024)}
    answer = hooked.post(*delivery(SECRET, "model_version", "created", data))
    assert answer.status_code == 413, answer.text
    assert hooked.counts() == (0, 0)


def test_without_the_secret_setting_mlflow_deliveries_are_refused(register: Register, policy: Policy) -> None:
    desk = DecisionDesk(register, lambda: policy, TOPIC, lambda keys: None, None, None)
    with TestClient(create_app(AimsSettings(), desk, time.time)) as http:
        answer = http.post("/mlflow/webhook", content=b"{}")
    assert answer.status_code == 503 and "AIMS_MLFLOW_WEBHOOK_SECRET" in answer.json()["error"]


def test_a_model_nobody_maps_is_kept_as_an_unmapped_candidate(hooked: Hooked) -> None:
    hooked.registry.facts_given = VersionFacts()
    body, headers = delivery(SECRET, "model_version", "created", {**CREATED, "name": "side-project"})
    answer = hooked.post(body, headers)
    assert answer.json() == {"status": "unmapped", "subject": "side-project/3"}
    with hooked.register.reader() as uow:
        (row,) = uow.webhook_deliveries.find(outcome="unmapped")
        assert uow.outbox.count() == 0
    assert row.reasons[0].startswith("no AI system") and row.ai_system is None


def test_mlflow_down_is_answered_503_so_its_retry_of_the_same_delivery_is_taken(hooked: Hooked) -> None:
    hooked.registry.down = RegistryUnavailable("MLflow could not be reached: ConnectError")
    body, headers = delivery(SECRET, "model_version", "created", CREATED)
    assert hooked.post(body, headers).status_code == 503
    assert hooked.counts() == (0, 0)
    hooked.registry.down = None
    answer = hooked.post(body, headers)  # MLflow's retry: the same delivery id, body and stamp
    assert answer.status_code == 200 and answer.json()["status"] == "onboarded", answer.text


def test_a_deployment_alias_on_an_unassessed_version_reports_an_incident(hooked: Hooked) -> None:
    hooked.post(*delivery(SECRET, "model_version", "created", CREATED))
    alias = {"name": "credit-scoring", "alias": "production", "version": "3"}
    answer = hooked.post(*delivery(SECRET, "model_version_alias", "created", alias))
    assert answer.json()["status"] == "deployed-without-approval", answer.text
    with hooked.register.reader() as uow:
        (row,) = uow.webhook_deliveries.find(outcome="deployed-without-approval")
        incident = next(m.event for m in uow.outbox.find() if m.key == row.event_key)
    assert row.reasons == ["version credit-scoring/credit-scoring/3 has no risk assessment"]
    assert incident["type"] == "org.aims.incident.reported"
    assert incident["data"]["ai_system"] == "credit-scoring" and incident["data"]["severity"] == "high"


def test_other_aliases_and_tags_are_recorded_only(hooked: Hooked) -> None:
    for entity, action, data in [
        ("model_version_alias", "created", {"name": "credit-scoring", "alias": "candidate", "version": "3"}),
        ("model_version_alias", "deleted", {"name": "credit-scoring", "alias": "candidate"}),
        ("model_version_tag", "set", {"name": "credit-scoring", "version": "3", "key": "k", "value": "v"}),
        ("model_version_tag", "deleted", {"name": "credit-scoring", "version": "3", "key": "k"}),
        ("registered_model", "created", {"name": "credit-scoring", "tags": {}, "description": None}),
    ]:
        answer = hooked.post(*delivery(SECRET, entity, action, data))
        assert answer.json()["status"] == "recorded", (entity, action, answer.text)
    assert hooked.counts() == (5, 0)


def test_a_prompt_delivery_is_answered_and_ignored(hooked: Hooked) -> None:
    answer = hooked.post(*delivery(SECRET, "prompt", "created", {"name": "p", "tags": {}}))
    assert answer.status_code == 200 and "ignored" in answer.json()
    assert hooked.counts() == (0, 0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
model_entities = st.sampled_from(
    ["model_version", "model_version_tag", "model_version_alias", "registered_model"]
)
model_actions = st.sampled_from(["created", "set", "deleted", "updated"])
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
shaped = st.fixed_dictionaries(
    {"name": names, "version": st.from_regex(r"\A[0-9]{1,3}\Z") | names},
    optional={
        "source": names,
        "run_id": st.none() | st.just(RUN),
        "alias": names,
        "key": names,
        "value": names,
        "tags": st.dictionaries(names, names, max_size=2),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entity=model_entities, action=model_actions, data=shaped | json_values)
# Found by this test on PostgreSQL: a NUL in a tag reached the register's JSONB and failed the write (500).
@example(
    entity="model_version_tag", action="set", data={"name": "m", "version": "1", "key": "\x00", "value": "v"}
)
@example(
    entity="model_version",
    action="created",
    data={"name": "m", "version": "1", "source": "s3://x\x00", "run_id": RUN, "description": "a\x00"},
)
def test_any_signed_delivery_is_recorded_once_or_refused_with_nothing_recorded(
    hooked: Hooked, entity: str, action: str, data: Any
) -> None:
    before = hooked.counts()
    body, headers = delivery(SECRET, entity, action, data)
    answer = hooked.post(body, headers)
    if answer.status_code == 200:
        assert answer.json()["status"] in {"onboarded", "unmapped", "recorded", "deployed-without-approval"}
        assert hooked.counts()[0] == before[0] + 1
        assert hooked.post(body, headers).status_code == 409  # and only once
    else:
        assert answer.status_code == 400 and answer.json()["error"], answer.text
        assert hooked.counts() == before
