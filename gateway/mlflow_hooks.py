"""MLflow webhooks in: a delivery is authenticated, placed in time and parsed, or refused with its reason.

Order matters (DESIGN.md, "every inbound webhook authenticated before anything is produced"):
the body cap applies before this module sees anything (gateway/limits.py); then the signature
over the delivery id, the timestamp and the raw body; then the signed timestamp against the replay
window; only then is the body parsed, and only a parsed delivery reaches the seen-delivery check
(by `X-MLflow-Delivery-Id`, which MLflow keeps across its retries of one delivery) and the intake.
An unauthenticated request learns nothing but "invalid signature": not whether its stamp was
stale, nor what was wrong with its body.

Pure: no I/O, no clock (the caller gives `now`), nothing logged, the secret only compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import ValidationError

from gateway.signatures import mlflow_signature_ok, mlflow_timestamp_fresh
from schemas.mlflow import IGNORED_ENTITIES, PAYLOADS, Delivery, Envelope, MlflowAction, MlflowEntity

DELIVERY_ID_HEADER: Final = "x-mlflow-delivery-id"
TIMESTAMP_HEADER: Final = "x-mlflow-timestamp"
SIGNATURE_HEADER: Final = "x-mlflow-signature"

# MLflow sends uuid4s; anything else that is short and plain is taken, as another sender may differ.
_DELIVERY_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# How much of a validation error goes back to the sender (it is MLflow, or someone with the secret).
_ERROR_CHARS: Final = 300


@dataclass(frozen=True)
class Refusal:
    """Why a delivery was not taken, and the HTTP status that says so. Nothing was produced."""

    status: int
    reason: str


@dataclass(frozen=True)
class Ignored:
    """An authenticated delivery of an MLflow entity that is no model version (a prompt, a budget)."""

    delivery_id: str
    entity: str
    action: str


def read_delivery(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, window: float
) -> Delivery | Ignored | Refusal:
    """The delivery these headers and body make, an ignored one, or the refusal with its reason.

    `headers` is looked up by lower-case name (Starlette's headers are case-blind already).
    """
    delivery_id = headers.get(DELIVERY_ID_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not mlflow_signature_ok(secret, delivery_id, timestamp, body, headers.get(SIGNATURE_HEADER)):
        return Refusal(401, "invalid signature")
    assert delivery_id is not None  # the signature covers it, so it was there
    if not mlflow_timestamp_fresh(timestamp, now, window):
        return Refusal(401, "stale timestamp: outside the replay window")
    if not _DELIVERY_ID.match(delivery_id):
        return Refusal(400, "the delivery id is not a plain id (letters, digits, '-', '_'; up to 128)")
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        return Refusal(400, f"not an MLflow webhook body: {_errors(exc)}")
    if envelope.entity in IGNORED_ENTITIES:
        return Ignored(delivery_id, envelope.entity, envelope.action)
    try:
        entity, action = MlflowEntity(envelope.entity), MlflowAction(envelope.action)
        shape = PAYLOADS[entity, action]
    except (ValueError, KeyError):
        # Quoted as JSON, so whatever the sender put there is shown, never interpreted.
        shown = json.dumps(f"{envelope.entity}.{envelope.action}")
        return Refusal(400, f"unknown entity or action {shown}: not an MLflow model-registry event")
    try:
        data = shape.model_validate(envelope.data)
    except ValidationError as exc:
        return Refusal(400, f"{entity.value}.{action.value} data: {_errors(exc)}")
    return Delivery(
        delivery_id=delivery_id,
        entity=entity,
        action=action,
        timestamp=envelope.timestamp,
        workspace=envelope.workspace,
        data=data,
    )


def _errors(exc: ValidationError) -> str:
    """Where and what, without the input (it may be large, or steer a terminal)."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)[:_ERROR_CHARS]
