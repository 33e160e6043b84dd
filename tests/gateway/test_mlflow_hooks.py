"""MLflow deliveries: authenticated, placed in time and parsed, or refused with their reason.

Each refusal is checked for its reason and for the status that carries it; the property tests make
sure no body or header, however hostile, gets past the signature or crashes the parser.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mlflow_hooks import Ignored, Refusal, read_delivery
from gateway.signatures import mlflow_signature_ok, mlflow_timestamp_fresh
from schemas.mlflow import (
    Delivery,
    MlflowAction,
    MlflowEntity,
    ModelVersionAliasCreated,
    ModelVersionCreated,
)
from tests.fakes.mlflow_signing import delivery, lower, sign

SECRET = "unit-mlflow-secret"
NOW = 1_800_000_000
WINDOW = 300
CREATED = {
    "name": "credit-scoring",
    "version": "3",
    "source": "mlflow-artifacts:/1/abc/artifacts/model",
    "run_id": "0123456789abcdef0123456789abcdef",
    "tags": {"team": "risk-ml"},
    "description": "third candidate",
}


def read(body: bytes, headers: dict[str, str], now: float = NOW) -> Delivery | Ignored | Refusal:
    return read_delivery(SECRET, lower(headers), body, now, WINDOW)


def test_a_signed_model_version_created_is_read_with_its_data() -> None:
    body, headers = delivery(SECRET, "model_version", "created", CREATED, now=NOW)
    got = read(body, headers)
    assert isinstance(got, Delivery), got
    assert (got.entity, got.action) == (MlflowEntity.model_version, MlflowAction.created)
    assert got.delivery_id == headers["X-MLflow-Delivery-Id"]
    assert got.data == ModelVersionCreated.model_validate(CREATED)


def test_fields_mlflow_adds_are_tolerated() -> None:
    data = {**CREATED, "aliases": ["x"], "workspace_note": 1}
    raw = json.loads(delivery(SECRET, "model_version", "created", data, now=NOW)[0])
    raw["workspace"] = "team-a"
    body = json.dumps(raw)
    headers = {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": str(NOW),
        "X-MLflow-Signature": sign(SECRET, "d-1", str(NOW), body),
    }
    got = read(body.encode(), headers)
    assert isinstance(got, Delivery) and got.workspace == "team-a", got


def test_a_wrong_secret_is_an_invalid_signature() -> None:
    body, headers = delivery("another-secret", "model_version", "created", CREATED, now=NOW)
    assert read(body, headers) == Refusal(401, "invalid signature")


def test_a_missing_signature_is_an_invalid_signature() -> None:
    # MLflow sends none for a webhook created without a secret.
    body, headers = delivery(SECRET, "model_version", "created", CREATED, now=NOW)
    del headers["X-MLflow-Signature"]
    assert read(body, headers) == Refusal(401, "invalid signature")


def test_every_signed_part_is_bound_to_the_signature() -> None:
    body, headers = delivery(SECRET, "model_version", "created", CREATED, now=NOW)
    tampered_body = body.replace(b"credit-scoring", b"credit-scorinG")
    assert read(tampered_body, headers) == Refusal(401, "invalid signature")
    for header, value in (("X-MLflow-Delivery-Id", "another-id"), ("X-MLflow-Timestamp", str(NOW + 1))):
        assert read(body, headers | {header: value}) == Refusal(401, "invalid signature"), header


def test_a_stale_or_future_timestamp_is_refused_as_such_once_the_signature_holds() -> None:
    for skew in (-WINDOW - 1, WINDOW + 1):
        body, headers = delivery(SECRET, "model_version", "created", CREATED, now=NOW + skew)
        got = read(body, headers)
        assert isinstance(got, Refusal) and got.status == 401 and "stale" in got.reason, got
    for skew in (-WINDOW, WINDOW):
        body, headers = delivery(SECRET, "model_version", "created", CREATED, now=NOW + skew)
        assert isinstance(read(body, headers), Delivery)


def test_an_unknown_entity_is_refused_by_name_and_a_prompt_is_ignored() -> None:
    body, headers = delivery(SECRET, "experiment", "created", {"name": "x"}, now=NOW)
    got = read(body, headers)
    assert isinstance(got, Refusal) and got.status == 400, got
    assert '"experiment.created"' in got.reason
    # An alias "set" is in MLflow's action list but never sent for aliases (3.17: created, deleted).
    body, headers = delivery(SECRET, "model_version_alias", "set", {"name": "m", "alias": "a"}, now=NOW)
    assert isinstance(read(body, headers), Refusal)
    body, headers = delivery(SECRET, "prompt", "created", {"name": "p", "tags": {}}, now=NOW)
    got = read(body, headers)
    assert isinstance(got, Ignored) and got.entity == "prompt", got


def test_a_control_character_in_a_name_is_refused_with_where_it_is() -> None:
    data = {**CREATED, "name": "credit\x1b[2Jscoring"}
    body, headers = delivery(SECRET, "model_version", "created", data, now=NOW)
    got = read(body, headers)
    assert isinstance(got, Refusal) and got.status == 400, got
    assert got.reason.startswith("model_version.created data: name:"), got.reason
    assert "\x1b" not in got.reason


def test_a_delivery_id_that_is_no_plain_id_is_refused_though_signed() -> None:
    body, headers = delivery(SECRET, "model_version", "created", CREATED, now=NOW, delivery_id="a b\n")
    got = read(body, headers)
    assert isinstance(got, Refusal) and got.status == 400 and "delivery id" in got.reason, got


def test_an_alias_delivery_reads_as_its_shape() -> None:
    data = {"name": "credit-scoring", "alias": "production", "version": "3"}
    body, headers = delivery(SECRET, "model_version_alias", "created", data, now=NOW)
    got = read(body, headers)
    assert isinstance(got, Delivery) and got.data == ModelVersionAliasCreated(**data), got


# -- properties --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
entities = st.sampled_from([*MlflowEntity, "prompt", "experiment", ""]).map(str)
actions = st.sampled_from([*MlflowAction, "exceeded", ""]).map(str)


@settings(max_examples=300)
@given(entities, actions, json_values)
def test_any_signed_body_is_read_or_refused_with_400_never_raises(
    entity: str, action: str, data: Any
) -> None:
    body, headers = delivery(SECRET, entity, action, data, now=NOW)
    got = read(body, headers)
    assert isinstance(got, Delivery | Ignored) or (isinstance(got, Refusal) and got.status == 400), got


shaped = st.fixed_dictionaries(
    {
        "name": st.text(min_size=0, max_size=300),
        "version": st.one_of(st.text(max_size=20), st.integers()),
        "source": st.text(max_size=50),
        "run_id": st.none() | st.text(max_size=70),
        "tags": st.dictionaries(st.text(max_size=300), st.text(max_size=30), max_size=3),
        "description": st.none() | st.text(max_size=30),
    }
)


@settings(max_examples=300)
@given(shaped)
def test_model_version_created_shapes_are_read_only_when_valid(data: dict[str, Any]) -> None:
    body, headers = delivery(SECRET, "model_version", "created", data, now=NOW)
    got = read(body, headers)
    if isinstance(got, Delivery):
        assert isinstance(got.data, ModelVersionCreated)
        assert got.data.version.isdigit() and got.data.name == got.data.name.strip()
    else:
        assert (
            isinstance(got, Refusal) and got.status == 400 and got.reason.startswith("model_version.created")
        )


@given(st.binary(max_size=300), st.text(max_size=60), st.text(max_size=20), st.text(max_size=60))
def test_no_unsigned_request_gets_past_the_signature(
    body: bytes, delivery_id: str, stamp: str, sig: str
) -> None:
    headers = {"x-mlflow-delivery-id": delivery_id, "x-mlflow-timestamp": stamp, "x-mlflow-signature": sig}
    assert read_delivery(SECRET, headers, body, NOW, WINDOW) == Refusal(401, "invalid signature")


@given(st.text(max_size=20))
def test_a_timestamp_is_fresh_only_as_plain_digits_within_the_window(stamp: str) -> None:
    fresh = mlflow_timestamp_fresh(stamp, NOW, WINDOW)
    assert fresh == (
        stamp.isascii() and stamp.isdigit() and len(stamp) <= 12 and abs(NOW - int(stamp)) <= WINDOW
    )


def test_any_one_of_several_signatures_will_do() -> None:
    body = '{"a": 1}'
    good = sign(SECRET, "d", "1", body)
    assert mlflow_signature_ok(SECRET, "d", "1", body.encode(), f"v1,bm90aGluZw== {good}")
    assert not mlflow_signature_ok(SECRET, "d", "1", body.encode(), good.replace("v1,", "v2,"))
