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
    if not signature or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
