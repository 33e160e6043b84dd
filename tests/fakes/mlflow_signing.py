"""Build webhook deliveries exactly as MLflow 3.x sends them (mlflow/webhooks/delivery.py, 3.17.2).

Why: the gateway must verify `X-MLflow-Signature` over the delivery id, the timestamp and the raw
body; tests need deliveries that pass (and, tampered with, fail) that check without an MLflow server.
The body is `json.dumps({"entity", "action", "timestamp", "data"})` with json's defaults (ASCII only,
", " and ": " separators), as MLflow writes it. The samples recorded from a real server
(tests/fakes/samples/mlflow/deliveries.json) check this builder and the gateway against each other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent / "samples" / "mlflow"


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """MLflow's `_generate_hmac_signature`: v1,<base64 HMAC-SHA256 of "<id>.<ts>.<body>">."""
    signed = f"{delivery_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def body_of(entity: str, action: str, data: Any, at: datetime | None = None) -> str:
    return json.dumps(
        {
            "entity": entity,
            "action": action,
            "timestamp": (at or datetime.now(UTC)).isoformat(),
            "data": data,
        }
    )


def delivery(
    secret: str,
    entity: str,
    action: str,
    data: Any,
    *,
    now: float | None = None,
    delivery_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A signed delivery: its raw body and its headers, as MLflow's session posts them."""
    stamp = int(time.time() if now is None else now)
    delivery_id = delivery_id or str(uuid.uuid4())
    body = body_of(entity, action, data, datetime.fromtimestamp(stamp, UTC))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": str(stamp),
        "X-MLflow-Signature": sign(secret, delivery_id, str(stamp), body),
    }
    return body.encode(), headers


def recorded() -> dict[str, Any]:
    """The deliveries a real MLflow server sent (record_deliveries.py), with their webhook's secret."""
    samples: dict[str, Any] = json.loads((SAMPLES / "deliveries.json").read_text())
    return samples


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
