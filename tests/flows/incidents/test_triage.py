"""handle-incident's triage on a real register (SQLite and PostgreSQL): the review it calls or joins, and
the finding an AI system outside the inventory is (issue 17, items 10 and 11).

The triage task's own code runs (`triage_incident.fn`), without a Prefect server: its register, policy
and settings are this test's. Slack and Jira are recording fakes of their Protocols.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.register.store import Register
from connectors.slack import Blocks, MessageRef
from flows.runtime import Runtime, use
from schemas.events import IncidentReportedEvent
from schemas.records import AISystem, ManagementReview
from schemas.settings import load_settings
from tests.resources import example_policy

TOPIC = "aims.events.triage-test"
KNOWN = "credit-scoring"
REVIEW_REQUESTED = "org.aims.review.requested"

Triage = Callable[[IncidentReportedEvent], dict[str, Any]]


def reported(
    system: str = KNOWN, category: str = "death", severity: str = "critical", minutes_ago: float = 60
) -> IncidentReportedEvent:
    detected = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return IncidentReportedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"inc-{uuid.uuid4().hex[:10]}",
            "source": "urn:aims:tests:triage",
            "time": detected.isoformat(),
            "data": {
                "ai_system": system,
                "severity": severity,
                "category": category,
                "description": f"{category} incident in a test",
                "reporter": "complaints-desk",
                "occurred_at": (detected - timedelta(hours=1)).isoformat(),
                "detected_at": detected.isoformat(),
            },
        }
    )


@pytest.fixture
def runtime(register: Register) -> Iterator[Runtime]:
    """The resources the flow code uses: this test's register, the shipped policy, recording fakes."""
    attendees = {a.email for a in example_policy().management_review.attendees}
    resources = Runtime(
        settings=load_settings(events_topic=TOPIC),
        register=register,
        load_policy=example_policy,
        chat=RecordingChat(attendees - {"sam.okafor@northwind.example"}),
        tracker=RecordingTracker(),
    )
    with use(resources):
        yield resources


@pytest.fixture
def triaged(register: Register, runtime: Runtime) -> Triage:
    """The triage task on this register, the shipped policy and a topic of its own."""
    import flows.incidents.handle_incident as handle

    with register.unit_of_work("test") as uow:
        uow.systems.add(AISystem(name=KNOWN, owner="risk-analytics", intended_use="Score loan applications"))

    def run(event: IncidentReportedEvent) -> dict[str, Any]:
        outcome: dict[str, Any] = handle.triage_incident.fn(event)
        return outcome

    return run


def reviews(register: Register) -> list[ManagementReview]:
    with register.reader() as uow:
        return uow.reviews.find(kind="extraordinary", order_by="created_at")


def requests_staged(register: Register) -> list[dict[str, Any]]:
    with register.reader() as uow:
        return [m.event for m in uow.outbox.find(topic=TOPIC) if m.event["type"] == REVIEW_REQUESTED]


def audit_length(register: Register) -> int:
    with register.reader() as uow:
        return len(uow.audit_entries())


def triggers_of(review: ManagementReview) -> list[str]:
    return review.triggers or ([review.trigger] if review.trigger else [])


# -- item 10: one extraordinary review for incidents that come while it is not yet held -----------


def test_three_serious_incidents_within_minutes_call_one_review(register: Register, triaged: Triage) -> None:
    events = [reported(minutes_ago=m) for m in (5, 3, 1)]
    outcomes = [triaged(e) for e in events]

    [review] = reviews(register)
    ids = [e.dedup_key for e in events]
    assert review.id == f"extraordinary:serious:{ids[0]}" and review.status == "requested"
    assert triggers_of(review) == [f"incident:{i}" for i in ids]
    assert all(i in review.reason for i in ids)
    # One request, announced once: hold-management-review prepares one pack.
    [request] = requests_staged(register)
    assert request["data"]["review_id"] == review.id
    # Each incident's outcome and evidence name the review it called or joined.
    assert [(o["extraordinary_review"], o["review_joined"]) for o in outcomes] == [
        (review.id, False),
        (review.id, True),
        (review.id, True),
    ]
    with register.reader() as uow:
        for i in ids:
            assert uow.evidence.one(i, "handle-incident").outcome["extraordinary_review"] == review.id

    # Delivered again, any of them: nothing changes, not even the audit log.
    before = audit_length(register)
    again = [triaged(e) for e in reversed(events)]
    assert audit_length(register) == before
    assert [o["extraordinary_review"] for o in again] == [review.id] * 3
    assert reviews(register) == [review]

    # Once the review was held and closed, the next serious incident calls a new one.
    with register.unit_of_work("test") as uow:
        uow.reviews.update(review.id, status="closed", closed_at=datetime.now(UTC))
    fourth = reported(minutes_ago=0)
    outcome = triaged(fourth)
    assert [r.id for r in reviews(register)] == [review.id, f"extraordinary:serious:{fourth.dedup_key}"]
    assert outcome["review_joined"] is False
    assert len(requests_staged(register)) == 2
    before = audit_length(register)
    triaged(fourth)
    assert audit_length(register) == before


def test_an_incident_after_the_meeting_calls_a_new_review(register: Register, triaged: Triage) -> None:
    """Held but its results not recorded yet: no meeting is left to discuss a further incident at."""
    first = reported()
    triaged(first)
    [review] = reviews(register)
    with register.unit_of_work("test") as uow:
        met = datetime.now(UTC) - timedelta(minutes=1)
        uow.reviews.update(review.id, status="prepared", meeting_at=met, prepared_at=met - timedelta(days=7))
    triaged(reported(minutes_ago=0))
    assert len(reviews(register)) == 2 and len(requests_staged(register)) == 2


def test_repeated_incidents_join_the_review_not_yet_held(register: Register, triaged: Triage) -> None:
    serious = triaged(reported())
    # The policy: 3 incidents of severity high or above within 30 days; the serious one counts too.
    highs = [reported(category="performance", severity="high", minutes_ago=m) for m in (30, 20)]
    outcomes = [triaged(e) for e in highs]
    [review] = reviews(register)
    assert outcomes[0]["extraordinary_review"] is None  # two of three
    assert outcomes[1] == {**outcomes[1], "extraordinary_review": review.id, "review_joined": True}
    assert triggers_of(review) == [f"incident:{serious['incident']}", f"incident:{highs[1].dedup_key}"]
    assert "3 incidents of severity high or above" in review.reason
    assert len(requests_staged(register)) == 1


def test_two_concurrent_triages_make_one_review(register: Register, triaged: Triage) -> None:
    """Two handle-incident runs at once: the register serializes their transactions, so the second sees
    the review the first made and joins it."""
    events = [reported(minutes_ago=2), reported(minutes_ago=1)]
    start = threading.Barrier(len(events))
    failures: list[BaseException] = []

    def run(event: IncidentReportedEvent) -> None:
        start.wait()
        try:
            triaged(event)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread, which fails with it
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    [review] = reviews(register)
    assert sorted(triggers_of(review)) == sorted(f"incident:{e.dedup_key}" for e in events)
    assert len(requests_staged(register)) == 1


# -- telling the attendees of an incident that joined a prepared review ------------------------------


@dataclass
class RecordingChat:
    """`Chat`: records direct messages; everyone in `people` has a Slack account."""

    people: set[str]
    direct: list[tuple[str, str]] = field(default_factory=list)

    def post(
        self, channel: str, text: str, blocks: Blocks | None = None, thread_ts: str | None = None
    ) -> MessageRef:
        raise AssertionError("nothing is posted to a channel")

    def update(self, ref: MessageRef, text: str, blocks: Blocks) -> None:
        raise AssertionError("nothing is updated")

    def post_to_person(self, email: str, text: str, blocks: Blocks | None = None) -> MessageRef | None:
        if email not in self.people:
            return None
        self.direct.append((email, text))
        return MessageRef(f"D-{email}", str(len(self.direct)))

    def user_id(self, email: str) -> str | None:
        return email if email in self.people else None

    def respond(self, response_url: str, text: str) -> None:
        raise AssertionError("nothing is answered")


@dataclass
class RecordingTracker:
    """`IssueTracker`: records comments."""

    comments: list[tuple[str, str]] = field(default_factory=list)

    def find(self, label: str) -> str | None:
        return None

    def create(self, project: str, summary: str, description: str, labels: list[str]) -> str:
        raise AssertionError("no issue is created")

    def status(self, key: str) -> str:
        return "To Do"

    def transition(self, key: str, name: str, comment: str | None = None) -> bool:
        raise AssertionError("no issue is moved")

    def comment(self, key: str, body: str) -> None:
        self.comments.append((key, body))

    def account_id(self) -> str:
        return "aims-bot"


@dataclass
class Desk:
    chat: RecordingChat
    tracker: RecordingTracker
    tell: Callable[[str], list[str]]


@pytest.fixture
def desk(runtime: Runtime) -> Iterator[Desk]:
    import flows.reviews.hold_management_review as hold

    chat, tracker = runtime.chat, runtime.tracker
    assert isinstance(chat, RecordingChat) and isinstance(tracker, RecordingTracker)
    yield Desk(chat, tracker, hold.tell_joined.fn)


def test_an_incident_that_joins_a_prepared_review_is_told_to_its_attendees_once(
    register: Register, triaged: Triage, desk: Desk
) -> None:
    first, second, third = (reported(minutes_ago=m) for m in (9, 5, 1))
    triaged(first)
    triaged(second)
    [review] = reviews(register)
    # Not prepared yet: its pack, when gathered, shows both incidents; nobody is told apart.
    assert desk.tell(review.id) == []
    # hold-management-review prepares it with the triggers it read before gathering the pack.
    with register.unit_of_work("test") as uow:
        meeting = datetime.now(UTC) + timedelta(days=7)
        uow.reviews.update(
            review.id,
            status="prepared",
            meeting_at=meeting,
            prepared_at=datetime.now(UTC),
            jira_issue="AIMS-7",
            pack_triggers=triggers_of(review),
        )
    assert desk.tell(review.id) == []
    # A third incident joins the prepared review: one Jira comment, one message per attendee on Slack.
    outcome = triaged(third)
    assert outcome["extraordinary_review"] == review.id and outcome["review_joined"] is True
    with register.unit_of_work("test") as uow:
        uow.incidents.update(third.dedup_key, jira_issue="AIINC-42")
    told = desk.tell(review.id)
    assert len(told) == 2 and len(requests_staged(register)) == 1
    [(issue, comment)] = desk.tracker.comments
    assert issue == "AIMS-7" and "a further incident joined this review" in comment
    assert "Jira AIINC-42" in comment and "pack" in comment
    reached = sorted(email for email, _ in desk.chat.direct)
    assert reached == sorted(
        a.email for a in example_policy().management_review.attendees if a.email in desk.chat.people
    )
    assert all(review.id in text and third.dedup_key in text for _, text in desk.chat.direct)
    with register.reader() as uow:
        notices = uow.incident_notices.find(incident_id=third.dedup_key)
    assert {(n.kind, n.step) for n in notices} == {
        ("review-joined-jira", review.id),
        ("review-joined-slack", review.id),
    }
    # Told once: a retried run, or the other flow, tells nothing again.
    assert desk.tell(review.id) == []
    assert len(desk.tracker.comments) == 1 and len(desk.chat.direct) == len(reached)


def test_an_incident_that_joins_while_the_pack_is_gathered_is_told_after_it(
    register: Register, triaged: Triage, desk: Desk
) -> None:
    """The race: hold-management-review read the review, an incident joined, then the pack was committed.

    The incident's own run saw the review unprepared and told nobody; the pack does not show it; the
    flow that prepared the review tells it, since `pack_triggers` records what the pack covered.
    """
    first, second = reported(minutes_ago=5), reported(minutes_ago=1)
    triaged(first)
    [as_read] = reviews(register)  # hold-management-review's read, before gathering
    triaged(second)
    [joined_meanwhile] = reviews(register)
    assert joined_meanwhile.prepared_at is None and desk.tell(as_read.id) == []
    with register.unit_of_work("test") as uow:
        uow.reviews.update(
            as_read.id,
            status="prepared",
            meeting_at=datetime.now(UTC) + timedelta(days=7),
            prepared_at=datetime.now(UTC),
            jira_issue="AIMS-8",
            pack_triggers=triggers_of(as_read),
        )
    [review] = reviews(register)
    assert triggers_of(review) == [f"incident:{first.dedup_key}", f"incident:{second.dedup_key}"]
    assert len(desk.tell(review.id)) == 2
    [(issue, comment)] = desk.tracker.comments
    assert issue == "AIMS-8" and "urn:aims:tests:triage\\#" in comment


# -- item 11: an AI system that is not in the inventory is a finding -------------------------------


def test_an_unknown_system_opens_one_finding_that_its_later_incidents_refer_to(
    register: Register, triaged: Triage
) -> None:
    first, second = (reported("shadow-scorer", "performance", "high", m) for m in (10, 5))
    outcomes = [triaged(first), triaged(second)]
    finding_id = "inventory:shadow-scorer"
    with register.reader() as uow:
        [finding] = uow.nonconformities.find()
        incidents = [uow.incidents.one(e.dedup_key) for e in (first, second)]
        evidence = [uow.evidence.one(e.dedup_key, "handle-incident") for e in (first, second)]
    assert finding.id == finding_id and finding.status == "open"
    assert (finding.source, finding.source_ref) == ("inventory", first.dedup_key)
    assert finding.controls == ["A.4.2", "A.6.2.6"]
    assert "shadow-scorer" in finding.description and first.dedup_key in finding.description
    assert [i.inventory_finding for i in incidents] == [finding_id, finding_id]
    assert [(o["in_inventory"], o["inventory_finding"], o["inventory_finding_opened"]) for o in outcomes] == [
        (False, finding_id, True),
        (False, finding_id, False),
    ]
    for record in evidence:
        assert record.outcome["inventory_finding"] == finding_id
        assert {"A.4.2", "A.6.2.6"} <= set(record.controls)
    # The alert and the issue say so, first thing, for each incident.
    from flows.incidents.messages import alert_blocks, alert_text, inventory_labels, issue_description
    from flows.incidents.rules import State, stage_of

    now = datetime.now(UTC)
    for incident in incidents:
        state = State(incident, None, ())
        blocks = alert_blocks(state, now)
        banner = blocks[1]["text"]["text"]
        assert "Not in the AI system inventory" in banner and finding_id in banner
        assert "A.4.2" in banner and "A.6.2.6" in banner
        assert "not in the AI system inventory" in alert_text(incident, stage_of(state))
        description = issue_description(incident, now)
        assert description.startswith("(!) *Not in the AI system inventory:*")
        assert "inventory:shadow\\-scorer" in description.splitlines()[0]
        assert inventory_labels(incident) == ["aims-not-in-inventory"]
    # Delivered again: nothing changes.
    before = audit_length(register)
    triaged(second)
    assert audit_length(register) == before


def test_a_known_system_is_no_finding_and_its_alert_says_nothing_of_it(
    register: Register, triaged: Triage
) -> None:
    from flows.incidents.messages import alert_blocks, issue_description
    from flows.incidents.rules import State

    outcome = triaged(reported(KNOWN, "performance", "low"))
    with register.reader() as uow:
        assert uow.nonconformities.count() == 0
        incident = uow.incidents.one(outcome["incident"])
    assert (outcome["in_inventory"], outcome["inventory_finding"], incident.inventory_finding) == (
        True,
        None,
        None,
    )
    now = datetime.now(UTC)
    assert "inventory" not in json.dumps(alert_blocks(State(incident, None, ()), now))
    assert "inventory" not in issue_description(incident, now)


def test_a_closed_finding_whose_system_is_still_unknown_is_opened_again(
    register: Register, triaged: Triage
) -> None:
    triaged(reported("shadow-scorer"))
    with register.unit_of_work("test") as uow:
        uow.nonconformities.update("inventory:shadow-scorer", status="closed", closed_at=datetime.now(UTC))
    outcome = triaged(reported("shadow-scorer", minutes_ago=1))
    with register.reader() as uow:
        [finding] = uow.nonconformities.find()
    assert (finding.status, finding.closed_at) == ("open", None)
    assert outcome["inventory_finding"] == finding.id and outcome["inventory_finding_opened"] is False


def test_the_inventory_warning_escapes_the_system_name(register: Register, triaged: Triage) -> None:
    """A system name from an event reaches Slack and Jira as text: no mention, link or markup."""
    from flows.incidents.messages import alert_blocks, issue_description
    from flows.incidents.rules import State

    hostile = "<!channel> *x* [click|http://evil.example] {html}"
    outcome = triaged(reported(hostile, "performance", "low"))
    with register.reader() as uow:
        incident = uow.incidents.one(outcome["incident"])
    now = datetime.now(UTC)
    banner = alert_blocks(State(incident, None, ()), now)[1]["text"]["text"]
    assert "<!channel>" not in banner and "&lt;!channel&gt;" in banner
    jira_line = issue_description(incident, now).splitlines()[0]
    assert "[click|" not in jira_line and "\\[click\\|http://evil.example\\]" in jira_line
    assert "{html}" not in jira_line and "\\{html\\}" in jira_line
