"""Jira webhooks have a replay window, as Slack's requests do.

Jira signs only the raw body (`X-Hub-Signature`), and the body carries the event's `timestamp`
(epoch milliseconds): a captured webhook replayed later is still correctly signed, so its signed
timestamp is what says it is stale. Without the window, a transition captured months ago counted as
a decision today.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.register.store import Register
from tests.gateway.desk import Gateway, jira_hook, post_hook
from tests.people import AISHA
from tests.records import waiting_approval

WINDOW_MS = 2100 * 1000  # the setting's default, 35 minutes: Jira retries for up to 30


@pytest.fixture
def register(register: Register) -> Register:
    """One approval waiting for model-risk on Jira issue MRC-1."""
    with register.unit_of_work("test") as uow:
        uow.approvals.add(waiting_approval("approval-1", datetime.now(UTC), jira_issue="MRC-1"))
    return register


def approval_hook(stamp: int | None) -> dict[str, Any]:
    hook = jira_hook(AISHA, "Approved", "ok", issue="MRC-1", from_status="To Do")
    if stamp is None:
        del hook["timestamp"]
    else:
        hook["timestamp"] = stamp
    return hook


def nothing_recorded(gateway: Gateway) -> bool:
    with gateway.register.reader() as uow:
        return (uow.decisions.count(), uow.outbox.count()) == (0, 0) and gateway.sent == []


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_signed_approval_replayed_an_hour_later_is_401_and_records_nothing(gateway: Gateway) -> None:
    answer = post_hook(gateway, approval_hook(now_ms() - 3600 * 1000))
    assert answer.status_code == 401, answer.text
    assert nothing_recorded(gateway)
    # The same transition stamped now is a decision.
    assert post_hook(gateway, approval_hook(now_ms())).json() == {"status": "accepted"}


def test_a_signed_hook_stamped_ahead_of_the_window_or_unstamped_is_401(gateway: Gateway) -> None:
    assert post_hook(gateway, approval_hook(now_ms() + 3600 * 1000)).status_code == 401
    assert post_hook(gateway, approval_hook(None)).status_code == 401
    assert nothing_recorded(gateway)


def test_a_retry_late_within_the_window_still_counts(gateway: Gateway) -> None:
    # Jira retries with the same body (and so the same timestamp) for up to 30 minutes.
    assert post_hook(gateway, approval_hook(now_ms() - 30 * 60 * 1000)).json() == {"status": "accepted"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(skew=st.integers(min_value=WINDOW_MS + 60_000, max_value=10**13), ahead=st.booleans())
def test_any_stamp_beyond_the_window_is_refused_both_ways(gateway: Gateway, skew: int, ahead: bool) -> None:
    stamp = now_ms() + skew if ahead else now_ms() - skew
    assert post_hook(gateway, approval_hook(stamp)).status_code == 401
    assert nothing_recorded(gateway)
