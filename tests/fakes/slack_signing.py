"""Build interaction requests exactly as Slack sends them to an app's Request URL.

Why: the app under test must verify `X-Slack-Signature` on the raw body and parse `payload=<json>`;
tests need requests that pass (and, tampered with, fail) the same check `slack_sdk.signature` makes.
The payload shape follows `../shared/specs/slack/samples/block_actions_bolt-python_test.json`; the body
encoding is bolt-python's own test encoding, `"payload=" + quote(json.dumps(payload))`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

__all__ = [
    "DEFAULT_API_APP_ID",
    "DEFAULT_BOT_ID",
    "DEFAULT_TEAM_DOMAIN",
    "DEFAULT_TEAM_ID",
    "VERIFICATION_TOKEN",
    "block_actions_payload",
    "post_interaction",
    "sign",
    "signed_interaction_request",
]

DEFAULT_TEAM_ID = "T0AIMS"
DEFAULT_TEAM_DOMAIN = "aims-test"
DEFAULT_API_APP_ID = "A0AIMSAPP1"
DEFAULT_BOT_ID = "B0AIMSBOT1"
# The legacy verification token Slack still puts in every payload; apps must not rely on it.
VERIFICATION_TOKEN = "aims-legacy-verification-token"
DECISION_BLOCK_ID = "decision"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """`v0=<hex HMAC-SHA256(secret, "v0:<ts>:<raw body>")>`, over the raw bytes, before any decoding."""
    base = b"v0:" + str(int(timestamp)).encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def _action_ts() -> str:
    return f"{time.time():.6f}"


def _find_element(blocks: list[dict[str, Any]] | None, action_id: str) -> tuple[str | None, dict[str, Any]]:
    """The block_id and element carrying `action_id`, so the payload matches the message it came from."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                block_id = block.get("block_id")
                return (block_id if isinstance(block_id, str) else None), element
    return None, {}


def block_actions_payload(
    *,
    user_id: str,
    user_name: str,
    team_id: str = DEFAULT_TEAM_ID,
    channel_id: str,
    message_ts: str,
    action_id: str,
    value: str,
    reason: str | None = None,
    response_url: str,
    trigger_id: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    channel_name: str | None = None,
    message_text: str = "",
    api_app_id: str = DEFAULT_API_APP_ID,
    bot_id: str = DEFAULT_BOT_ID,
    bot_user_id: str | None = None,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
) -> dict[str, Any]:
    """A `block_actions` payload for a button click on a bot message, as Slack delivers it.

    The button's `block_id`, text and style come from `blocks` when the clicked element is found there
    (as they would from the real message); otherwise the block is "decision" and the text is the value.
    A `reason` is the value of a plain_text_input at `state.values["reason"]["reason_input"]`.
    """
    found_block_id, element = _find_element(blocks, action_id)
    button_text = element.get("text") if isinstance(element.get("text"), dict) else None
    action: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "block_id": found_block_id or DECISION_BLOCK_ID,
        "text": dict(button_text) if button_text else {"type": "plain_text", "text": value, "emoji": True},
        "value": value,
        "action_ts": _action_ts(),
    }
    if isinstance(element.get("style"), str):
        action["style"] = element["style"]
    values: dict[str, Any] = {}
    if reason is not None:
        values["reason"] = {"reason_input": {"type": "plain_text_input", "value": reason}}
    message: dict[str, Any] = {
        "type": "message",
        "user": bot_user_id or "U0AIMSBOT1",
        "ts": message_ts,
        "bot_id": bot_id,
        "app_id": api_app_id,
        "text": message_text,
        "team": team_id,
        "blocks": list(blocks or []),
    }
    if channel_name is None:
        channel_name = "directmessage" if channel_id.startswith("D") else "aims-approvals"
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}",
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message,
        "state": {"values": values},
        "response_url": response_url,
        "actions": [action],
    }


def signed_interaction_request(
    payload: dict[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of an interaction POST; `timestamp` defaults to now (pass an old one to test
    the 5-minute replay window)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    body = ("payload=" + quote(json.dumps(payload))).encode("utf-8")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(secret, body, ts),
    }
    return body, headers


def post_interaction(
    url: str, payload: dict[str, Any], secret: str, *, timestamp: int | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """POST a signed interaction to the app's Request URL like Slack does; (status, body), errors included.

    Slack gives the app 3 s to answer; pass `timeout=3.0` to hold the app to that.
    """
    body, headers = signed_interaction_request(payload, secret, timestamp=timestamp)
    headers = {**headers, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
