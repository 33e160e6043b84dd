"""The gateway's review path: a signed Jira move with a results comment onto the one results path.

In process (Starlette's test client) on a throwaway SQLite register holding one prepared review
tracked as Jira issue AIINC-7; Jira is the recording `IssueTracker` of the incident gateway tests.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.register.store import Register
from schemas.records import ManagementReview
from tests.gateway.desk import Gateway, jira_hook, post_hook
from tests.people import CLAIRE, DEV, TOM

REVIEW, ISSUE = "scheduled:2027-01-15", "AIINC-7"
DUE = (date.today() + timedelta(days=20)).isoformat()


@pytest.fixture
def register(register: Register) -> Register:
    """The shared register with one prepared review, tracked in Jira."""
    with register.unit_of_work("test") as uow:
        uow.reviews.add(
            ManagementReview(id=REVIEW, status="prepared", jira_issue=ISSUE, meeting_at=datetime.now(UTC))
        )
    return register


def stored(gw: Gateway) -> ManagementReview:
    with gw.register.reader() as uow:
        return uow.reviews.one(REVIEW)


def test_results_in_a_comment_are_recorded_and_answered(gateway: Gateway) -> None:
    comment = (
        f"Minutes below.\nDecision: Keep the v2 scorer\nAction: Add a drift alert; owner: {TOM}; due: {DUE}"
    )
    answer = post_hook(gateway, jira_hook(CLAIRE, "In Progress", comment, issue=ISSUE, from_status="To Do"))
    assert answer.status_code == 200 and answer.json() == {"status": "recorded"}
    review = stored(gateway)
    assert [d["decision"] for d in review.results] == ["Keep the v2 scorer"] and review.status == "prepared"
    with gateway.register.reader() as uow:
        actions = uow.review_actions.find(review_id=REVIEW)
    assert [(a.id, a.owner, a.due.isoformat()) for a in actions] == [(f"{REVIEW}/A1", TOM, DUE)]
    assert gateway.tracker.comments and "Recorded: decision recorded" in gateway.tracker.comments[-1][1]
    # Jira redelivers the webhook: nothing is recorded twice, nothing answered twice.
    again = post_hook(gateway, jira_hook(CLAIRE, "In Progress", comment, issue=ISSUE, from_status="To Do"))
    assert again.json() == {"status": "duplicate"} and len(gateway.tracker.comments) == 1
    # Done closes it.
    done = post_hook(
        gateway, jira_hook(CLAIRE, "Done", None, issue=ISSUE, from_status="In Progress", changelog="2")
    )
    assert done.json() == {"status": "recorded"} and stored(gateway).status == "closed"


def test_a_close_without_results_is_refused_and_moved_back(gateway: Gateway) -> None:
    answer = post_hook(gateway, jira_hook(CLAIRE, "Done", "", issue=ISSUE, from_status="In Progress"))
    assert answer.json() == {"status": "refused"}
    assert stored(gateway).status == "prepared"
    assert gateway.tracker.transitions and gateway.tracker.transitions[-1][:2] == (ISSUE, "In Progress")
    assert "stays open" in (gateway.tracker.transitions[-1][2] or "")


def test_an_outsider_and_a_malformed_comment_change_nothing(gateway: Gateway) -> None:
    refused = post_hook(gateway, jira_hook(DEV, "In Progress", "Decision: ship it", issue=ISSUE))
    assert refused.json() == {"status": "refused"}
    assert "not an attendee" in gateway.tracker.comments[-1][1]
    bad = post_hook(
        gateway, jira_hook(CLAIRE, "In Progress", "Action: x; owner: a@b.c; due: soon", issue=ISSUE)
    )
    assert bad.json() == {"status": "refused"} and "line 1: due 'soon'" in gateway.tracker.comments[-1][1]
    assert stored(gateway).results == []
    prose = post_hook(gateway, jira_hook(CLAIRE, "In Progress", "We met and talked.", issue=ISSUE))
    assert prose.json() == {"status": "ignored"}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=200), st.sampled_from(["In Progress", "Done", "To Do"]))
def test_no_comment_makes_the_gateway_fail(gateway: Gateway, comment: str, to: str) -> None:
    answer = post_hook(gateway, jira_hook(CLAIRE, to, comment, issue=ISSUE, changelog=str(time.time_ns())))
    assert answer.status_code == 200, answer.text
