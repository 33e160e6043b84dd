"""Management reviews end to end: the real broker, Prefect server and worker, the gateway as its own
process, and the Slack and Jira fakes on loopback (started with the session stack).

A review is requested from the CLI and by serious incidents (three within a minute: one review, which
the later ones join); the router starts hold-management-review for each request, once. The prepared
review has its pack (Markdown, HTML, artifact), its Jira issue, its .ics invitation and a Slack
message to every attendee. Results come from a Jira comment and the CLI; the open action is input 1
of the next, scheduled review. The deployment's schedule is the policy's cadence.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.text import jira_text
from schemas.events import IncidentReportedEvent, ReviewRequestedEvent
from schemas.records import ManagementReview
from schemas.settings import AimsSettings
from tests.people import AISHA, CLAIRE, DEV, TOM
from tests.support import SessionStack, jira, jira_move, poll, slack

DEFAULT_TOPIC = AimsSettings().events_topic
FLOW = "hold-management-review"


@pytest.fixture(scope="module")
def router(stack: SessionStack) -> Iterator[Any]:
    with stack.default_topic_router("reviews") as running:
        yield running


@pytest.fixture(scope="module")
def gateway(stack: SessionStack) -> Iterator[str]:
    with stack.gateway("gateway-reviews") as url:
        yield url


def review(stack: SessionStack, review_id: str) -> ManagementReview | None:
    with stack.register().reader() as uow:
        return uow.reviews.get(review_id)


def prepared(stack: SessionStack, review_id: str, timeout: float = 240) -> ManagementReview:
    def ready() -> ManagementReview | None:
        found = review(stack, review_id)
        return found if found is not None and found.status == "prepared" and found.jira_issue else None

    return poll(ready, timeout, f"review {review_id} prepared")


def runs_for(stack: SessionStack, review_id: str) -> list[Any]:
    # The newest runs that are due: the scheduler's future runs (cron deployments) sort before them.
    due = {"expected_start_time": {"before_": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()}}
    api = stack.api()
    try:
        runs = api.flow_runs(due, limit=200)
    finally:
        api.close()
    return [
        run
        for run in runs
        if run.flow_name == FLOW
        and ((run.parameters.get("event") or {}).get("data") or {}).get("review_id") == review_id
    ]


def direct_messages(stack: SessionStack, review_id: str) -> dict[str, int]:
    """Attendee email → Slack direct messages about this review sent to them."""
    channels = {slack(stack).dm_channel(uid): email for email, uid in stack.slack_users.items()}
    counts: dict[str, int] = {}
    for message in slack(stack).messages:
        email = channels.get(message["channel"])
        if email is not None and review_id in (message.get("text") or ""):
            counts[email] = counts.get(email, 0) + 1
    return counts


def test_the_cadence_becomes_the_deployment_schedule(stack: SessionStack) -> None:
    import asyncio
    from zoneinfo import ZoneInfo

    from prefect.server.schemas.schedules import RRuleSchedule

    from flows.reviews.calendar import meeting_slots, preparation_rrule
    from schemas.policy_file import load_policy

    policy = load_policy(Path(AimsSettings().policy_file))
    settings = policy.management_review
    api = stack.api()
    try:
        response = api.request("GET", f"/deployments/name/{FLOW}/aims")
    finally:
        api.close()
    assert response.status_code == 200, response.text
    schedules = response.json()["schedules"]
    assert len(schedules) == 1 and schedules[0]["active"]
    rule, zone = preparation_rrule(settings)
    served = schedules[0]["schedule"]
    assert (served["rrule"], served["timezone"]) == (rule, zone)
    # The served schedule's next runs are each lead_time_days before a meeting of the cadence.
    now = datetime.now(UTC)
    runs = list(asyncio.run(RRuleSchedule(rrule=served["rrule"], timezone=zone).get_dates(n=4, start=now)))
    assert len(runs) == 4
    local = ZoneInfo(zone)
    meetings = [m.astimezone(local) for m in meeting_slots(settings, now, 6)]
    for run in (r.astimezone(local) for r in runs):
        assert any(
            (m.date() - run.date()).days == settings.lead_time_days and m.time() == run.time()
            for m in meetings
        ), run


def test_a_requested_review_is_prepared_once_and_its_results_are_recorded(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    from icalendar import Calendar

    reason = f"Supplier model changed its licence ({uuid.uuid4().hex[:6]})"
    asked = stack.aims("review", "request", "--reason", reason, "--by", CLAIRE)
    assert asked.returncode == 0, asked.stderr
    review_id = asked.stdout.split(": requested by")[0]
    assert review_id.startswith("requested:")
    again = stack.aims("review", "request", "--reason", reason, "--by", CLAIRE)
    assert again.returncode == 0 and "already requested" in again.stdout
    found = prepared(stack, review_id)
    # A redelivered request event: the review is not prepared again.
    event = ReviewRequestedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"{review_id}:requested-again",
            "source": "urn:aims:tests:reviews",
            "data": {
                "review_id": review_id,
                "reason": reason,
                "trigger": "test",
                "requested_by": CLAIRE,
                "requested_at": datetime.now(UTC).isoformat(),
            },
        }
    )
    publisher = stack.publisher(DEFAULT_TOPIC)
    try:
        publisher.publish(event)
    finally:
        publisher.close()
    poll(lambda: len(runs_for(stack, review_id)) >= 2 or None, 120, "the second request's run")
    poll(
        lambda: all(r.state == "Completed" for r in runs_for(stack, review_id)) or None, 120, "both runs done"
    )
    assert review(stack, review_id) == found  # the second run changed nothing

    # The pack: files in the state folder, every section, an artifact.
    assert found.kind == "extraordinary" and found.trigger == f"cli:{CLAIRE}" and found.meeting_at
    files = {kind: Path(path) for kind, path in found.files.items()}
    assert set(files) == {"markdown", "html", "ics"} and all(p.is_file() for p in files.values())
    assert str(files["html"]).startswith(str(stack.state))
    sections = [s["key"] for s in found.pack["sections"]]
    assert sections[0] == "previous-actions" and sections[-1] == "improvement" and len(sections) == 11
    markdown = files["markdown"].read_text()
    for s in found.pack["sections"]:
        assert s["title"] in markdown
    assert found.pack["reason"] == reason
    # The flow run read the period's runs from the Prefect API, which requires its auth string.
    (operations,) = [s for s in found.pack["sections"] if s["key"] == "performance/operations"]
    assert operations["figures"]["runs"] is not None, operations["summary"]
    from flows.evidence import artifact_key

    api = stack.api()
    try:
        query = {"artifacts": {"key": {"any_": [artifact_key(FLOW, review_id)]}}}
        artifacts = api.request("POST", "/artifacts/filter", json=query)
    finally:
        api.close()
    assert artifacts.status_code == 200 and artifacts.json(), "no pack artifact"
    assert "9.3.2 a)" in artifacts.json()[0]["data"]

    # The invitation: RFC 5545, every attendee, the meeting's time.
    calendar = Calendar.from_ical(files["ics"].read_bytes())
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    vevent = events[0]
    assert vevent.decoded("DTSTART") == found.meeting_at
    attendees = sorted(str(a).removeprefix("mailto:").lower() for a in vevent.get("ATTENDEE"))
    from schemas.policy_file import load_policy

    policy = load_policy(Path(AimsSettings().policy_file))
    assert attendees == sorted(a.email for a in policy.management_review.attendees)

    # The Jira issue holds the agenda and the pack; every attendee got one Slack message.
    assert found.jira_issue is not None
    issue = jira(stack).issues[found.jira_issue]
    description = issue["fields"]["description"]
    assert "Agenda:" in description and "9.3.2 a)" in description
    assert jira_text(str(files["html"])) in description  # wiki markup: '_' and '-' escaped
    told = direct_messages(stack, review_id)
    assert told == {a.email: 1 for a in policy.management_review.attendees}, told

    # Results from Jira: an outsider's comment is refused; an attendee's is recorded.
    due = (date.today() + timedelta(days=30)).isoformat()
    jira_move(stack, found.jira_issue, DEV, "Start", "Decision: ship everything")
    poll(
        lambda: any("not an attendee" in c for c in jira(stack).comments(found.jira_issue or "")) or None,
        60,
        "the outsider's refusal answered in Jira",
    )
    jira_move(
        stack,
        found.jira_issue,
        CLAIRE,
        "Reopen",
        "Decision: Renegotiate the supplier licence\n"
        f"Action: Replace the supplier model; owner: {TOM}; due: {due}",
    )
    poll(lambda: (review(stack, review_id) or found).results or None, 60, "the decision from Jira")
    with stack.register().reader() as uow:
        actions = uow.review_actions.find(review_id=review_id)
        attempts = uow.review_results.find(review_id=review_id, order_by="at")
    listed = [(a.id, a.owner, a.due.isoformat(), a.status) for a in actions]
    assert listed == [(f"{review_id}/A1", TOM, due, "open")]
    assert [(a.kind, a.by, a.channel, a.accepted) for a in attempts] == [
        ("decision", DEV, "jira", False),
        ("decision", CLAIRE, "jira", True),
        ("action", CLAIRE, "jira", True),
    ]
    # Closing from the CLI; the review stays open until then.
    assert review(stack, review_id).status == "prepared"  # type: ignore[union-attr]
    closed = stack.aims("review", "close", review_id, "--by", AISHA)
    assert closed.returncode == 0, closed.stderr
    assert review(stack, review_id).status == "closed"  # type: ignore[union-attr]
    assert jira(stack).status(found.jira_issue) == "Done"  # the CLI's closing is shown in Jira

    # The next ordinary review lists the open action as input 1.
    as_of = datetime.now(UTC) + timedelta(days=3)
    key = f"review-{uuid.uuid4().hex[:8]}"
    stack.launch(f"{FLOW}/aims", {"as_of": as_of.isoformat()}, key)
    runs = stack.wait_for_runs([key], timeout=240, states={"Completed"})
    assert runs[0].state == "Completed"
    with stack.register().reader() as uow:
        scheduled = [r for r in uow.reviews.find(kind="scheduled") if r.prepared_at is not None]
    latest = max(scheduled, key=lambda r: r.prepared_at or r.created_at)
    first = next(s for s in latest.pack["sections"] if s["key"] == "previous-actions")
    rows = {row[0]: row for table in first["tables"] for row in table["rows"]}
    assert rows[f"{review_id}/A1"][2:] == [TOM, due, "open"]


def serious_incident(detected: datetime) -> IncidentReportedEvent:
    return IncidentReportedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"inc-{uuid.uuid4().hex[:10]}",
            "source": "urn:aims:tests:reviews",
            "time": detected.isoformat(),
            "data": {
                "ai_system": "credit-scoring",
                "severity": "critical",
                "category": "death",
                "description": "A test incident calling a review",
                "reporter": "complaints-desk",
                "occurred_at": (detected - timedelta(hours=2)).isoformat(),
                "detected_at": detected.isoformat(),
            },
        }
    )


def test_serious_incidents_within_a_minute_call_one_extraordinary_review(
    stack: SessionStack, router: Any
) -> None:
    # Earlier tests leave extraordinary reviews open, which these incidents would join: held first.
    with stack.register().unit_of_work("test:reviews") as uow:
        for earlier in uow.reviews.find(kind="extraordinary"):
            if earlier.status != "closed":
                uow.reviews.update(earlier.id, status="closed", closed_at=datetime.now(UTC))
    detected = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    events = [serious_incident(detected + timedelta(seconds=20 * n)) for n in range(3)]
    publisher = stack.publisher(DEFAULT_TOPIC)
    try:
        for event in events:
            publisher.publish(event)
            publisher.publish(event)  # a producer's redelivery
    finally:
        publisher.close()
    wanted = {f"incident:{e.dedup_key}" for e in events}

    def on_reviews() -> list[ManagementReview] | None:
        with stack.register().reader() as uow:
            found = uow.reviews.find(kind="extraordinary")
        calling = [r for r in found if wanted & set(r.triggers or [r.trigger])]
        recorded = {t for r in calling for t in r.triggers or [r.trigger]}
        return calling if wanted <= recorded else None

    calling = poll(on_reviews, 240, "the three incidents on a review")
    assert len(calling) == 1, [r.id for r in calling]
    review_id = calling[0].id
    found = prepared(stack, review_id)
    assert set(found.triggers) == wanted and found.trigger == found.triggers[0]
    assert review_id == f"extraordinary:serious:{found.trigger.removeprefix('incident:')}"
    assert "serious incident" in found.reason and all(e.dedup_key in found.reason for e in events)
    poll(lambda: all(r.state == "Completed" for r in runs_for(stack, review_id)) or None, 60, "its run done")
    assert len(runs_for(stack, review_id)) == 1
    assert len([k for k, i in jira(stack).issues.items() if review_id in i["fields"]["description"]]) == 1
    # Incidents that joined after the pack was gathered are told on the review's issue, once each.
    late = [t for t in found.triggers if t not in found.pack_triggers]
    assert found.jira_issue is not None
    issue = found.jira_issue

    def told() -> list[str]:
        return [c for c in jira(stack).comments(issue) if "a further incident joined this review" in c]

    if late:
        poll(lambda: len(told()) >= len(late) or None, 180, "the late incidents told in Jira")
    assert len(told()) == len(late)
