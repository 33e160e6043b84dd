"""Deliveries a real MLflow 3.17.2 server sent (tests/fakes/samples/mlflow/deliveries.json).

Recorded by record_deliveries.py through MLflow's own client, so the signature check, the parser and
the intake are tested against what MLflow really sends wherever no MLflow server is started; and the
tests' delivery builder (tests/fakes/mlflow_signing.py) is checked against MLflow's own signatures.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flows.models.mlflow_intake import Onboarding, intake
from gateway.mlflow_hooks import Refusal, read_delivery
from schemas.mlflow import Delivery, ModelVersionCreated, VersionFacts
from tests.fakes.mlflow_signing import SAMPLES, lower, recorded, sign
from tests.resources import example_policy

SAMPLED = recorded()
DELIVERIES: list[dict[str, Any]] = SAMPLED["deliveries"]
WINDOW = 300


def stamp(sample: dict[str, Any]) -> int:
    return int(lower(sample["headers"])["x-mlflow-timestamp"])


def kind(sample: dict[str, Any]) -> str:
    body = json.loads(sample["body"])
    return f"{body['entity']}.{body['action']}"


def test_every_event_the_webhook_subscribed_to_was_recorded() -> None:
    assert sorted(kind(s) for s in DELIVERIES) == sorted(
        [
            "registered_model.created",
            "model_version.created",
            "model_version_tag.set",
            "model_version_tag.deleted",
            "model_version_alias.created",
            "model_version_alias.deleted",
        ]
    )


@pytest.mark.parametrize("sample", DELIVERIES, ids=kind)
def test_a_recorded_delivery_is_read_when_signed_with_the_webhooks_secret(sample: dict[str, Any]) -> None:
    headers, body = lower(sample["headers"]), sample["body"].encode()
    got = read_delivery(SAMPLED["secret"], headers, body, stamp(sample), WINDOW)
    assert isinstance(got, Delivery), got
    assert f"{got.entity.value}.{got.action.value}" == kind(sample)
    assert got.delivery_id == headers["x-mlflow-delivery-id"]


@pytest.mark.parametrize("sample", DELIVERIES, ids=kind)
def test_our_builder_signs_exactly_as_mlflow_did(sample: dict[str, Any]) -> None:
    headers = lower(sample["headers"])
    assert (
        sign(
            SAMPLED["secret"], headers["x-mlflow-delivery-id"], headers["x-mlflow-timestamp"], sample["body"]
        )
        == (headers["x-mlflow-signature"])
    )


@pytest.mark.parametrize("sample", DELIVERIES, ids=kind)
def test_a_recorded_delivery_is_refused_with_another_secret_or_replayed_late(sample: dict[str, Any]) -> None:
    headers, body = lower(sample["headers"]), sample["body"].encode()
    assert read_delivery("not-the-secret", headers, body, stamp(sample), WINDOW) == Refusal(
        401, "invalid signature"
    )
    late = read_delivery(SAMPLED["secret"], headers, body, stamp(sample) + WINDOW + 1, WINDOW)
    assert isinstance(late, Refusal) and "stale" in late.reason


def test_the_recorded_new_version_onboards_under_the_example_policy() -> None:
    (sample,) = [s for s in DELIVERIES if kind(s) == "model_version.created"]
    got = read_delivery(
        SAMPLED["secret"], lower(sample["headers"]), sample["body"].encode(), stamp(sample), WINDOW
    )
    assert isinstance(got, Delivery) and isinstance(got.data, ModelVersionCreated)
    rest = json.loads((SAMPLES / "rest.json").read_text())
    version = rest["model_version"]["model_version"]
    assert (version["name"], version["version"], version["run_id"]) == (
        got.data.name,
        got.data.version,
        got.data.run_id,
    )
    facts = VersionFacts(user_id=version.get("user_id"))
    result = intake(got.data, facts, example_policy().mlflow)
    assert isinstance(result, Onboarding), result
    # The example policy maps credit-scoring; MLflow without authentication names no user.
    assert (result.payload.ai_system, result.payload.owner) == ("credit-scoring", "ml-platform")
