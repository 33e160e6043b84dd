"""The Slack fake, driven by the real slack_sdk clients over HTTP, and the interaction-signing helpers.

Why: other tests trust the fake to answer as Slack does; these tests pin that behaviour against the client
code (WebClient, its retry handlers, WebhookClient, SocketModeClient, SignatureVerifier) that production
code runs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack import SlackFake
from tests.fakes.slack_signing import (
    block_actions_payload,
    post_interaction,
    sign,
    signed_interaction_request,
)

# Vendored from ../shared/specs/slack/samples (see samples/slack/README.md): always here, never skipped.
SAMPLES = Path(__file__).resolve().parent / "samples" / "slack"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "*Approve* model v2?"}},
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "approve",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve", "emoji": True},
            },
            {
                "type": "button",
                "action_id": "reject",
                "value": "reject",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Reject", "emoji": True},
            },
        ],
    },
]


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as running:
        yield running
        assert running.errors == []


@pytest.fixture
def client(fake: SlackFake) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.base_url)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One keep-alive client for raw requests: building an httpx client costs more than a request."""
    with httpx.Client() as client:
        yield client


def _error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


# ---------------------------------------------------------------------------- Web API basics


def test_auth_test_names_the_bot_and_team(client: WebClient, fake: SlackFake) -> None:
    data = client.auth_test().data
    assert isinstance(data, dict)
    assert data["ok"] is True
    assert data["team_id"] == "T0AIMS"
    assert data["user_id"] == fake.bot_user_id and data["bot_id"] == fake.bot_id
    assert data["url"].startswith("https://")
    method, _params, headers = fake.calls[0]
    assert method == "auth.test"
    assert headers["Authorization"] == f"Bearer {fake.bot_token}"
    assert "slackclient/3" in headers["User-Agent"]


def test_root_base_url_and_token_form_field_are_accepted(fake: SlackFake, http: httpx.Client) -> None:
    """CONTRACTS.md points base_url at the server root; Slack also takes `token` as a form field."""
    assert WebClient(token=fake.bot_token, base_url=fake.url + "/").auth_test()["ok"] is True
    answer = http.post(f"{fake.base_url}auth.test", data={"token": fake.bot_token}).json()
    assert answer["ok"] is True


def test_get_with_query_params(fake: SlackFake, http: httpx.Client) -> None:
    """AsyncWebClient honours GET; the fake answers GET like POST."""
    uid = fake.add_user("gil@example.com")
    answer = http.get(
        f"{fake.base_url}users.lookupByEmail",
        params={"email": "gil@example.com"},
        headers={"Authorization": f"Bearer {fake.bot_token}"},
    ).json()
    assert answer["ok"] is True and answer["user"]["id"] == uid


def test_bad_or_missing_token(fake: SlackFake) -> None:
    with pytest.raises(SlackApiError) as wrong:
        WebClient(token="xoxb-wrong", base_url=fake.base_url).auth_test()
    assert wrong.value.response.status_code == 200
    assert _error(wrong) == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=fake.base_url).chat_postMessage(channel="#general", text="x")
    assert _error(missing) == "not_authed"
    with pytest.raises(SlackApiError) as app_token:
        WebClient(token=fake.app_token, base_url=fake.base_url).auth_test()
    assert _error(app_token) == "not_allowed_token_type"
    assert fake.messages == []
    assert len(fake.calls) == 3


def test_unknown_method(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.frobnicate", json={"channel": "#general"})
    assert _error(excinfo) == "unknown_method"


def test_lookup_by_email(client: WebClient, fake: SlackFake) -> None:
    uid = fake.add_user("Ana.Silva@example.com", name="ana")
    user = client.users_lookupByEmail(email="ana.silva@example.com")["user"]
    assert user["id"] == uid and uid.startswith("U")
    assert user["name"] == "ana" and user["deleted"] is False and user["is_bot"] is False
    assert user["profile"]["email"] == "Ana.Silva@example.com"
    assert user["team_id"] == fake.team_id
    with pytest.raises(SlackApiError) as excinfo:
        client.users_lookupByEmail(email="nobody@example.com")
    assert _error(excinfo) == "users_not_found"
    with pytest.raises(ValueError):
        fake.add_user("ana.silva@example.com")


def test_conversations_open_is_stable(client: WebClient, fake: SlackFake) -> None:
    uid = fake.add_user("bo@example.com")
    first = client.conversations_open(users=uid).data
    second = client.conversations_open(users=[uid]).data
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["channel"]["id"].startswith("D")
    assert "already_open" not in first
    assert second["channel"]["id"] == first["channel"]["id"]
    assert second["no_op"] is True and second["already_open"] is True
    assert fake.dm_channel(uid) == first["channel"]["id"]
    full = client.conversations_open(users=uid, return_im=True)["channel"]
    assert full["is_im"] is True and full["user"] == uid


def test_conversations_open_errors(client: WebClient, fake: SlackFake) -> None:
    gone = fake.add_user("gone@example.com", deleted=True)
    cases = {
        "users_list_not_supplied": {},
        "user_not_found": {"users": "U099999999"},
        "user_disabled": {"users": gone},
    }
    for error, params in cases.items():
        with pytest.raises(SlackApiError) as excinfo:
            client.api_call("conversations.open", params=params)  # the SDK itself refuses an empty call
        assert _error(excinfo) == error


# ---------------------------------------------------------------------------- posting and updating


def test_post_blocks_as_json_and_text_only(client: WebClient, fake: SlackFake) -> None:
    with_blocks = client.chat_postMessage(channel="#approvals", text="Approve model v2?", blocks=BLOCKS)
    text_only = client.chat_postMessage(channel="approvals", text="plain")
    assert with_blocks["channel"] == text_only["channel"] and with_blocks["channel"].startswith("C")
    assert with_blocks["message"]["blocks"] == BLOCKS
    assert "blocks" not in text_only["message"]
    call = fake.calls_to("chat.postMessage")[0]
    assert call.headers["Content-Type"].startswith("application/json")
    assert call.params["blocks"] == BLOCKS
    posted = fake.posted("#approvals")
    assert [m["text"] for m in posted] == ["Approve model v2?", "plain"]
    assert posted[0]["channel_name"] == "approvals" and posted[0]["blocks"] == BLOCKS
    assert posted[1]["blocks"] is None and posted[1]["thread_ts"] is None
    assert fake.message(with_blocks["channel"], with_blocks["ts"])["text"] == "Approve model v2?"


def test_post_form_encoded_with_blocks_string(client: WebClient, fake: SlackFake) -> None:
    """The 2020 spec's form encoding: blocks as a JSON-encoded string field."""
    channel = fake.add_channel("governance")
    answer = client.api_call(
        "chat.postMessage", data={"channel": channel, "text": "fallback", "blocks": json.dumps(BLOCKS)}
    )
    assert answer["ok"] is True
    assert fake.calls[-1].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert fake.posted(channel)[0]["blocks"] == BLOCKS


def test_post_to_dm_by_channel_or_user_id(client: WebClient, fake: SlackFake) -> None:
    uid = fake.add_user("cy@example.com")
    by_user = client.chat_postMessage(channel=uid, text="to the user")
    dm = client.conversations_open(users=uid)["channel"]["id"]
    by_dm = client.chat_postMessage(channel=dm, text="to the dm")
    assert by_user["channel"] == by_dm["channel"] == dm
    assert [m["text"] for m in fake.posted(uid)] == ["to the user", "to the dm"]


def test_post_errors_change_nothing(client: WebClient, fake: SlackFake) -> None:
    strict = SlackFake(auto_channels=False).start()
    try:
        strict_client = WebClient(token=strict.bot_token, base_url=strict.base_url)
        with pytest.raises(SlackApiError) as unknown_name:
            strict_client.chat_postMessage(channel="#nowhere", text="x")
        assert _error(unknown_name) == "channel_not_found"
        strict.add_channel("somewhere")
        assert strict_client.chat_postMessage(channel="#somewhere", text="x")["ok"] is True
    finally:
        strict.stop()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("channel_not_found", {"channel": "C0NOTACHANNEL", "text": "x"}),
        ("channel_not_found", {"channel": "Not A Name", "text": "x"}),
        ("no_text", {"channel": "#general"}),
        ("no_text", {"channel": "#general", "text": "", "blocks": []}),
        ("invalid_blocks", {"channel": "#general", "text": "x", "blocks": [{"text": "no type"}]}),
        ("invalid_blocks", {"channel": "#general", "text": "x", "blocks": ["section"]}),
        ("invalid_blocks", {"channel": "#general", "text": "x", "blocks": "not json"}),
        ("invalid_blocks", {"channel": "#general", "text": "x", "blocks": [{"type": "divider"}] * 51}),
        ("msg_too_long", {"channel": "#general", "text": "x" * 40_001}),
    ]
    for error, kwargs in cases:
        with pytest.raises(SlackApiError) as excinfo:
            client.api_call("chat.postMessage", json=kwargs)
        assert _error(excinfo) == error, kwargs
    assert client.chat_postMessage(channel="#general", text="x" * 40_000)["ok"] is True
    assert len(fake.messages) == 1
    archived = fake.add_channel("old", archived=True)
    outside = fake.add_channel("private-ish", bot_is_member=False)
    for channel, error in ((archived, "is_archived"), (outside, "not_in_channel")):
        with pytest.raises(SlackApiError) as excinfo:
            client.chat_postMessage(channel=channel, text="x")
        assert _error(excinfo) == error
    assert len(fake.messages) == 1


def test_ts_values_are_unique_and_increasing(client: WebClient, fake: SlackFake) -> None:
    results: list[str] = []

    def post(n: int) -> None:
        results.append(client.chat_postMessage(channel="#busy", text=str(n))["ts"])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = [m["ts"] for m in fake.posted("busy")]
    assert len(set(stored)) == 12 and sorted(results) == stored
    assert all(len(ts.split(".")[1]) == 6 and ts.split(".")[0].isdigit() for ts in stored)
    assert stored == sorted(stored, key=float)


def test_update_keeps_history(client: WebClient, fake: SlackFake) -> None:
    posted = client.chat_postMessage(channel="#approvals", text="Pending", blocks=BLOCKS)
    channel, ts = posted["channel"], posted["ts"]
    updated = client.chat_update(channel=channel, ts=ts, text="Approved by ana", blocks=BLOCKS[:1])
    assert updated["ts"] == ts and updated["text"] == "Approved by ana"
    assert updated["message"]["blocks"] == BLOCKS[:1] and "edited" in updated["message"]
    with pytest.warns(UserWarning, match="text"):  # slack_sdk's own nudge; Slack accepts it
        client.chat_update(channel=channel, ts=ts, blocks=[{"type": "divider"}])
    message = fake.message("#approvals", ts)
    assert message["text"] == "Approved by ana"  # omitted fields are kept, as Slack documents
    assert message["blocks"] == [{"type": "divider"}] and message["edited_via"] == "chat.update"
    assert [(u["text"], u["blocks"]) for u in message["updates"]] == [
        ("Pending", BLOCKS),
        ("Approved by ana", BLOCKS[:1]),
    ]
    assert len(fake.messages) == 1
    cases: list[tuple[str, dict[str, Any]]] = [
        ("message_not_found", {"channel": channel, "ts": "1.000001", "text": "x"}),
        ("channel_not_found", {"channel": "C0NOTACHANNEL", "ts": ts, "text": "x"}),
        ("no_text", {"channel": channel, "ts": ts}),
        ("msg_too_long", {"channel": channel, "ts": ts, "text": "x" * 40_001}),
    ]
    for error, kwargs in cases:
        with pytest.raises(SlackApiError) as excinfo:
            client.api_call("chat.update", json=kwargs)
        assert _error(excinfo) == error
    assert len(fake.message(channel, ts)["updates"]) == 2


# ---------------------------------------------------------------------------- failure injection


def test_rate_limit_retried_by_handler_posts_once(client: WebClient, fake: SlackFake) -> None:
    fake.fail_next("chat.postMessage", status=429, times=3, retry_after=0)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    answer = client.chat_postMessage(channel="#alerts", text="after the storm")
    assert answer["ok"] is True
    assert len(fake.calls_to("chat.postMessage")) == 4
    assert [m["text"] for m in fake.messages] == ["after the storm"]


def test_rate_limit_without_handler_raises(client: WebClient, fake: SlackFake) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="#alerts", text="x")
    response = excinfo.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response["error"] == "ratelimited"
    assert fake.messages == []
    assert client.chat_postMessage(channel="#alerts", text="x")["ok"] is True


def test_server_error_once_retried_by_handler(client: WebClient, fake: SlackFake) -> None:
    fake.fail_next("chat.postMessage", status=500)
    client.retry_handlers.append(
        ServerErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0))
    )
    assert client.chat_postMessage(channel="#alerts", text="x")["ok"] is True
    assert len(fake.calls_to("chat.postMessage")) == 2
    assert len(fake.messages) == 1


def test_server_error_without_handler_and_logical_failure(fake: SlackFake) -> None:
    client = WebClient(token=fake.bot_token, base_url=fake.base_url)
    fake.fail_next("chat.postMessage", status=503)
    with pytest.raises(SlackApiError) as unavailable:
        client.chat_postMessage(channel="#alerts", text="x")
    assert unavailable.value.response.status_code == 503
    fake.fail_next("chat.update", status=200, error="edit_window_closed")
    with pytest.raises(SlackApiError) as logical:
        client.chat_update(channel="C000000001", ts="1.1", text="x")
    assert logical.value.response.status_code == 200 and _error(logical) == "edit_window_closed"
    assert fake.messages == []


# ---------------------------------------------------------------------------- response_url


def test_response_url_works_five_times(fake: SlackFake, http: httpx.Client) -> None:
    url = fake.new_response_url()
    assert url.startswith(f"{fake.url}/actions/T0AIMS/")
    webhook = WebhookClient(url).send(text="Thanks, recorded.", response_type="ephemeral")
    assert webhook.status_code == 200 and webhook.body == "ok"
    for n in range(4):
        answer = http.post(url, json={"text": f"update {n}", "replace_original": True})
        assert answer.status_code == 200 and answer.text == "ok"
    refused = http.post(url, json={"text": "sixth"})
    assert refused.status_code == 404 and refused.text == "used_url"
    posts = fake.response_posts
    assert len(posts) == 5 and posts[0].body == {"text": "Thanks, recorded.", "response_type": "ephemeral"}
    assert posts[0].url == url and posts[-1].body["text"] == "update 3"
    assert fake.messages == []


def test_response_url_refusals(fake: SlackFake, http: httpx.Client) -> None:
    url = fake.new_response_url()
    assert http.post(url, content=b"not json").status_code == 400
    assert http.post(url, json={"response_type": "in_channel"}).text == "no_text"
    assert http.post(fake.url + "/actions/T0AIMS/1/forged", json={"text": "x"}).status_code == 404
    fake.expire_response_url(url)
    expired = http.post(url, json={"text": "late"})
    assert expired.status_code == 404 and expired.text == "expired_url"
    assert fake.response_posts == []


def test_bound_response_url_replaces_deletes_and_posts(
    client: WebClient, fake: SlackFake, http: httpx.Client
) -> None:
    posted = client.chat_postMessage(channel="#approvals", text="Pending", blocks=BLOCKS)
    channel, ts = posted["channel"], posted["ts"]
    url = fake.new_response_url(channel, ts)
    http.post(url, json={"replace_original": True, "text": "Approved", "blocks": BLOCKS[:1]})
    message = fake.message(channel, ts)
    assert message["text"] == "Approved" and message["edited_via"] == "response_url"
    assert message["updates"][0]["text"] == "Pending"
    http.post(url, json={"response_type": "in_channel", "text": "FYI: approved"})
    assert [m["text"] for m in fake.posted(channel)] == ["Approved", "FYI: approved"]
    http.post(url, json={"delete_original": True})
    assert fake.message(channel, ts)["deleted"] is True
    assert len(fake.response_posts) == 3


# ---------------------------------------------------------------------------- signing helpers


def test_sign_matches_slack_sdk_verifier() -> None:
    body, headers = signed_interaction_request({"type": "block_actions"}, SECRET)
    ts = headers["X-Slack-Request-Timestamp"]
    verifier = SignatureVerifier(SECRET)
    assert headers["X-Slack-Signature"] == verifier.generate_signature(timestamp=ts, body=body)
    assert headers["X-Slack-Signature"] == sign(SECRET, body, int(ts))
    assert verifier.is_valid(body, ts, headers["X-Slack-Signature"])
    assert verifier.is_valid_request(body, {k.lower(): v for k, v in headers.items()})
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert json.loads(parse_qs(body.decode())["payload"][0]) == {"type": "block_actions"}


def test_verifier_rejects_stale_and_tampered_requests() -> None:
    verifier = SignatureVerifier(SECRET)
    now = int(time.time())
    recent, recent_headers = signed_interaction_request({"a": 1}, SECRET, timestamp=now - 290)
    assert verifier.is_valid_request(recent, recent_headers)
    stale, stale_headers = signed_interaction_request({"a": 1}, SECRET, timestamp=now - 301)
    assert not verifier.is_valid_request(stale, stale_headers)
    body, headers = signed_interaction_request({"a": 1}, SECRET)
    assert not verifier.is_valid_request(body.replace(b"1", b"2"), headers)
    assert not verifier.is_valid_request(body, {**headers, "X-Slack-Signature": sign("other", body, now)})
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)


def test_block_actions_payload_has_the_sample_shape() -> None:
    sample = json.loads((SAMPLES / "block_actions_bolt-python_test.json").read_text())
    payload = block_actions_payload(
        user_id="U000000001",
        user_name="ana",
        channel_id="C000000002",
        message_ts="1700000000.000100",
        action_id="approve",
        value="approve",
        reason="fine by me",
        response_url="http://127.0.0.1:1/actions/T0AIMS/1/x",
    )
    assert set(sample) <= set(payload)
    for key in ("user", "container", "channel"):
        assert set(sample[key]) <= set(payload[key]), key
    assert set(sample["actions"][0]) <= set(payload["actions"][0])
    assert payload["type"] == "block_actions" and payload["team"]["id"] == "T0AIMS"
    assert payload["user"] == {"id": "U000000001", "username": "ana", "name": "ana", "team_id": "T0AIMS"}
    assert payload["container"]["message_ts"] == payload["message"]["ts"] == "1700000000.000100"
    assert payload["actions"][0]["block_id"] == "decision" and payload["actions"][0]["type"] == "button"
    assert payload["state"]["values"]["reason"]["reason_input"] == {
        "type": "plain_text_input",
        "value": "fine by me",
    }
    assert (
        block_actions_payload(
            user_id="U1",
            user_name="a",
            channel_id="D1",
            message_ts="1.1",
            action_id="reject",
            value="reject",
            response_url="u",
            blocks=BLOCKS,
        )["actions"][0]["style"]
        == "danger"
    )


def test_fake_builds_a_signed_click_the_app_can_verify(client: WebClient, fake: SlackFake) -> None:
    """End to end: post, click (as Slack would POST it to the app), answer through the response_url."""
    uid = fake.add_user("ana@example.com", name="ana")
    posted = client.chat_postMessage(channel="#approvals", text="Approve?", blocks=BLOCKS)
    payload = fake.block_actions(
        posted["channel"], posted["ts"], user_id=uid, action_id="approve", value="approve"
    )
    assert payload["message"]["blocks"] == BLOCKS and payload["channel"]["name"] == "approvals"
    assert payload["actions"][0]["text"]["text"] == "Approve"
    received: list[dict[str, Any]] = []

    class App(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = SignatureVerifier(SECRET).is_valid_request(body, dict(self.headers.items()))
            if ok:
                received.append(json.loads(parse_qs(body.decode())["payload"][0]))
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    app = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=app.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{app.server_address[1]}/slack/interactions"
        assert post_interaction(url, payload, SECRET, timeout=3.0)[0] == 200
        assert post_interaction(url, payload, "wrong-secret")[0] == 401
    finally:
        app.shutdown()
        app.server_close()
    assert received == [payload]
    answer = WebhookClient(received[0]["response_url"]).send(text="Approved by ana", replace_original=True)
    assert answer.body == "ok"
    assert fake.message(posted["channel"], posted["ts"])["text"] == "Approved by ana"


# ---------------------------------------------------------------------------- Socket Mode


def test_socket_mode_with_the_builtin_client(fake: SlackFake) -> None:
    from slack_sdk.socket_mode import SocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    requests: list[SocketModeRequest] = []

    def listener(socket_client: Any, request: SocketModeRequest) -> None:
        requests.append(request)
        socket_client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    with pytest.raises(SlackApiError) as wrong_token:
        WebClient(base_url=fake.base_url).apps_connections_open(app_token=fake.bot_token)
    assert _error(wrong_token) == "not_allowed_token_type"
    socket_client = SocketModeClient(
        app_token=fake.app_token, web_client=WebClient(base_url=fake.base_url), auto_reconnect_enabled=False
    )
    socket_client.socket_mode_request_listeners.append(listener)
    try:
        socket_client.connect()
        fake.socket_wait_connected()
        assert socket_client.is_connected()
        payload = {"type": "block_actions", "actions": [{"action_id": "approve", "value": "approve"}]}
        envelope_id = fake.socket_send_interactive(payload)
        ack = fake.socket_wait_ack(envelope_id)
        assert ack == {"envelope_id": envelope_id}
        assert envelope_id in fake.socket_acks
        assert requests[0].type == "interactive" and requests[0].payload == payload
        fake.socket_close()  # from Slack's side first, sparing the client's blocking 3 s receive timeout
        deadline = time.monotonic() + 2
        while socket_client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not socket_client.is_connected()
    finally:
        socket_client.close()


# ---------------------------------------------------------------------------- robustness


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[SlackFake]:
    with SlackFake() as running:
        running.add_channel("general")
        yield running


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=10,
)
_keys = st.sampled_from(["channel", "text", "blocks", "attachments", "thread_ts", "token", "ts"]) | st.text(
    max_size=6
)
_channels = st.sampled_from(["#general", "general", "C000000001", "U0AIMSBOT1", "#", "", "Général"])
_field_values = _channels | st.text(max_size=30) | _json_values.map(json.dumps)
_blocks = st.lists(st.fixed_dictionaries({"type": st.sampled_from(["section", "divider"])}), max_size=3)
_plausible_posts = st.fixed_dictionaries(
    {"channel": _channels},
    optional={
        "text": st.text(max_size=20),
        "blocks": _blocks | _blocks.map(json.dumps) | _json_values,
        "attachments": _json_values,
        "thread_ts": st.text(max_size=8),
    },
)
_bodies = st.one_of(
    _plausible_posts.map(lambda d: (json.dumps(d).encode(), "application/json;charset=utf-8")),
    _plausible_posts.map(
        lambda d: (
            urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in d.items()}).encode(),
            "application/x-www-form-urlencoded",
        )
    ),
    st.dictionaries(_keys, _json_values | _channels, max_size=6).map(
        lambda d: (json.dumps(d).encode(), "application/json")
    ),
    _json_values.map(lambda v: (json.dumps(v).encode(), "application/json;charset=utf-8")),
    st.dictionaries(_keys, _field_values, max_size=6).map(
        lambda d: (urlencode(d).encode(), "application/x-www-form-urlencoded")
    ),
    st.tuples(
        st.binary(max_size=120),
        st.sampled_from(
            [
                None,
                "application/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=xyz",
                "text/plain",
            ]
        ),
    ),
)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies)
def test_garbage_to_post_message_always_gets_a_json_answer(
    shared_fake: SlackFake, http: httpx.Client, body: tuple[bytes, str | None]
) -> None:
    content, content_type = body
    headers = {"Authorization": f"Bearer {shared_fake.bot_token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = http.post(f"{shared_fake.base_url}chat.postMessage", content=content, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    data = answer.json()
    assert isinstance(data["ok"], bool)
    assert data["ok"] or isinstance(data["error"], str)
    assert shared_fake.errors == []
