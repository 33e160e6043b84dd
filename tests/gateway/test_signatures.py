"""Slack's replay window holds on both sides: a request stamped in the future is as stale as an old one.

A captured request re-signed with a timestamp ahead of the clock would otherwise stay valid until the
clock catches up, and past the window after it.
"""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from gateway.signatures import SLACK_WINDOW, slack_signature_ok
from tests.fakes.slack_signing import block_actions_payload, signed_interaction_request
from tests.gateway.desk import Gateway, post_click

SECRET = "unit-slack-secret"
BODY = b"payload=%7B%7D"


def signed(ts: int) -> str:
    return SignatureVerifier(SECRET).generate_signature(timestamp=str(ts), body=BODY)


def test_a_timestamp_past_the_window_in_the_future_is_refused() -> None:
    now = 1_800_000_000
    ahead = now + SLACK_WINDOW + 1
    assert not slack_signature_ok(SECRET, BODY, str(ahead), signed(ahead), now)


def test_a_timestamp_at_the_edge_of_the_window_on_either_side_is_accepted() -> None:
    now = 1_800_000_000
    for ts in (now - SLACK_WINDOW, now + SLACK_WINDOW):
        assert slack_signature_ok(SECRET, BODY, str(ts), signed(ts), now)


@given(st.integers(min_value=SLACK_WINDOW + 1, max_value=10**9))
def test_any_skew_beyond_the_window_is_refused_both_ways(skew: int) -> None:
    now = 1_800_000_000
    for ts in (now - skew, now + skew):
        assert not slack_signature_ok(SECRET, BODY, str(ts), signed(ts), now)


def test_the_gateway_refuses_a_click_signed_ten_minutes_ahead_and_records_nothing(gateway: Gateway) -> None:
    payload = block_actions_payload(
        user_id="UAISHA0001",
        user_name="aisha",
        channel_id="C1",
        message_ts="1.000001",
        action_id="incident.contain",
        value="urn:aims:test#inc-1",
        response_url="http://127.0.0.1:9/hook",
    )
    body, headers = signed_interaction_request(payload, SECRET, timestamp=int(time.time()) + 600)
    answer = gateway.http.post("/slack/interactions", content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    with gateway.register.reader() as uow:
        assert (uow.incident_updates.count(), uow.decisions.count(), uow.outbox.count()) == (0, 0, 0)
    assert gateway.sent == [] and gateway.chat.responses == []
    # The same click signed now goes through the signature check (what happens next is the desk's).
    assert post_click(gateway, payload).status_code != 401
