"""Who sent a request: Slack's, Jira's and MLflow's signatures, checked before anything else is read."""

from __future__ import annotations

import base64
import hashlib
import hmac

SLACK_WINDOW = 300  # seconds: Slack's own replay window


def slack_signature_ok(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> bool:
    """Slack's v0 scheme: HMAC-SHA256 of "v0:<ts>:<raw body>", and the timestamp within 5 minutes."""
    if not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > SLACK_WINDOW:
        return False
    base = b"v0:" + str(ts).encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def jira_signature_ok(secret: str, body: bytes, signature: str | None) -> bool:
    """Jira's admin-webhook scheme: `sha256=<hex HMAC-SHA256(secret, raw body)>`; no time in it."""
    if not signature or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def jira_timestamp_fresh(timestamp_ms: int | None, now: float, window: float) -> bool:
    """Whether a signed Jira webhook's own `timestamp` (epoch ms) is within `window` s of now, both ways.

    Jira's signature covers the raw body only; no header of the delivery is signed, and Slack's kind
    of signed timestamp header does not exist. The body's `timestamp` (epoch milliseconds in the
    webhook contract, ../shared/specs/CONTRACTS.md) is inside what is signed, so a replayed body keeps
    its old stamp and a forger cannot refresh it without the secret. A seen-delivery cache keyed by
    `X-Atlassian-Webhook-Identifier` was the alternative: that header is not in our contract and,
    being outside the HMAC, a replayer rewrites it at will, so it proves nothing. Retries resend the
    same body for up to 30 minutes (Atlassian's retry policy), so the window must be wider than that;
    a duplicate inside it is one decision anyway (the desk keys deliveries by changelog id).
    A webhook without a timestamp cannot be placed in time and is refused.
    """
    if timestamp_ms is None:
        return False
    return abs(now - timestamp_ms / 1000) <= window


MLFLOW_SIGNATURE_VERSION = "v1"


def mlflow_signature_ok(
    secret: str, delivery_id: str | None, timestamp: str | None, body: bytes, signature: str | None
) -> bool:
    """MLflow 3.x's scheme (Standard Webhooks style): `X-MLflow-Signature` is
    `v1,<base64 HMAC-SHA256(secret, "<delivery id>.<timestamp>.<raw body>")>`.

    The delivery id and timestamp headers are inside what is signed, so neither can be rewritten to
    dodge the replay window or the seen-delivery check. Standard Webhooks allows several signatures
    separated by spaces (a secret being rotated); any one of them that matches will do. MLflow sends
    no signature at all for a webhook created without a secret: that is refused like a bad one.
    """
    if not delivery_id or not timestamp or not signature:
        return False
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    found = False
    for candidate in signature.split(" "):
        version, _, value = candidate.partition(",")
        # Every candidate is compared, so the time taken does not say which one matched.
        if version == MLFLOW_SIGNATURE_VERSION and hmac.compare_digest(expected, value):
            found = True
    return found


def mlflow_timestamp_fresh(timestamp: str | None, now: float, window: float) -> bool:
    """Whether `X-MLflow-Timestamp` (epoch seconds, signed) is within `window` s of now, both ways.

    MLflow's retries of one delivery resend its first timestamp, so the window must outlast them
    (3 retries with 1-4 s backoff and a 30 s timeout each, by default).
    """
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now - int(timestamp)) <= window
