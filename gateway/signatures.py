"""Who sent a request: Slack's and Jira's signatures, checked on the raw body before anything else."""

from __future__ import annotations

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
