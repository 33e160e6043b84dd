"""The incident update path on a real register (SQLite): check, record, stage the event, or refuse.

No Kafka: `submit` only stages outbox rows in the unit of work that records the update.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.register.store import Register
from flows.commands import Verdict
from flows.incidents.commands import load_state, nonconformity_id, submit
from flows.incidents.rules import Update
from schemas.events import parse_event
from schemas.payloads import IncidentCategory, IncidentUpdateKind, Severity
from schemas.records import CorrectiveAction, Incident, IncidentUpdate, Nonconformity
from tests.people import CLAIRE, DEV, LI, MARIA, TOM
from tests.records import serious_incident
from tests.resources import example_policy

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
INC = "urn:aims:test#inc-1"
NC_ID = f"{INC}/NC"
TOPIC = "aims.events"
K = IncidentUpdateKind


@pytest.fixture
def register(register: Register) -> Register:
    """The shared register with one serious incident, triaged."""
    reg = register
    with reg.unit_of_work("test") as uow:
        uow.incidents.add(serious_incident(INC, T0))
    return reg


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def send(
    register: Register,
    kind: IncidentUpdateKind,
    by: str = TOM,
    detail: str = "",
    hours: float = 1,
    refusal_id: str | None = None,
    **kw: object,
) -> Verdict:
    update = Update(INC, kind, by, "slack", at(hours), detail, **kw)  # type: ignore[arg-type]
    return submit(register, example_policy(), update, TOPIC, refusal_id)


def incident(register: Register) -> Incident:
    with register.reader() as uow:
        return uow.incidents.one(INC)


def nc(register: Register) -> Nonconformity | None:
    with register.reader() as uow:
        return uow.nonconformities.get(NC_ID)


def actions(register: Register) -> list[CorrectiveAction]:
    with register.reader() as uow:
        return uow.corrective_actions.find(nonconformity_id=NC_ID, order_by="id")


def outbox(register: Register) -> int:
    with register.reader() as uow:
        return uow.outbox.count()


def updates(register: Register, accepted: bool | None = None) -> list[IncidentUpdate]:
    with register.reader() as uow:
        found = uow.incident_updates.find(incident_id=INC, order_by="at")
    return [u for u in found if accepted is None or u.accepted is accepted]


def accepted(register: Register, result: Verdict, stage: str, outbox_rows: int) -> None:
    """The update was accepted, the incident is at `stage`, and its one event is staged."""
    assert result.status == "accepted", result.message
    assert isinstance(result.record, IncidentUpdate) and result.state == stage
    assert incident(register).status == stage
    assert outbox(register) == outbox_rows
    assert len(result.keys) == 1
    with register.reader() as uow:
        row = uow.outbox.get(result.keys[0])
    assert row is not None and row.topic == TOPIC and row.sent_at is None
    event = parse_event(row.event)
    assert event.data.model_dump()["update_id"] == result.record.id
    assert event.data.model_dump()["status"] == stage


def test_the_full_lifecycle(register: Register) -> None:
    contained = send(register, K.contain, TOM, "model rolled back to v41", hours=1)
    accepted(register, contained, "contained", 1)
    assert incident(register).contained_at == at(1)

    assert send(register, K.contain, MARIA, hours=1.5).status == "duplicate"
    assert outbox(register) == 1

    report = send(register, K.report, MARIA, " NCA-2026-17 ", hours=20)
    accepted(register, report, "reported-to-authority", 2)
    inc = incident(register)
    assert inc.authority_reference == "NCA-2026-17" and inc.reported_to_authority_at == at(20)
    assert send(register, K.report, MARIA, "NCA-2026-17", hours=21).status == "duplicate"
    assert outbox(register) == 2

    cause = send(register, K.root_cause, TOM, "postcode feature leaked into the model", hours=30)
    accepted(register, cause, "corrective-action", 3)
    found = nc(register)
    assert found is not None
    assert (found.root_cause, found.status, found.source, found.source_ref) == (
        "postcode feature leaked into the model",
        "open",
        "incident",
        INC,
    )

    planned = send(
        register,
        K.plan_action,
        TOM,
        "Drop postcode; retrain",
        hours=31,
        owner=f" {DEV} ",
        due=date(2026, 3, 20),
    )
    accepted(register, planned, "corrective-action", 4)
    assert planned.message == "corrective action A1 planned"
    [a1] = actions(register)
    assert (a1.id, a1.owner, a1.due, a1.status, a1.description) == (
        f"{INC}/A1",
        DEV,
        date(2026, 3, 20),
        "open",
        "Drop postcode; retrain",
    )
    found = nc(register)
    assert found is not None and found.status == "actions-planned"

    done = send(register, K.action_done, DEV, hours=100, action_id="A1")  # the owner, not a responder
    accepted(register, done, "corrective-action", 5)
    [a1] = actions(register)
    assert (a1.status, a1.done_at, a1.verified_by) == ("done", at(100), None)
    assert incident(register).closed_at is None

    by_owner = send(register, K.verify_action, DEV, "rates back", hours=110, action_id="A1")
    assert by_owner.status == "refused" and outbox(register) == 5

    verified = send(register, K.verify_action, LI, " approval rates within 1 % ", hours=120, action_id="A1")
    accepted(register, verified, "corrective-action", 6)
    [a1] = actions(register)
    assert (a1.status, a1.effectiveness, a1.verified_by, a1.verified_at) == (
        "verified",
        "approval rates within 1 %",
        LI,
        at(120),
    )
    found = nc(register)
    assert found is not None and found.status == "verified"

    closed = send(register, K.close, MARIA, hours=130)
    accepted(register, closed, "closed", 7)
    inc = incident(register)
    assert inc.closed_at == at(130)
    found = nc(register)
    assert found is not None and (found.status, found.closed_at) == ("closed", at(130))
    assert send(register, K.close, MARIA, hours=131).status == "duplicate"
    assert send(register, K.contain, TOM, hours=132).status == "refused"
    assert outbox(register) == 7

    kinds = [u.kind for u in updates(register, accepted=True)]
    assert kinds == [
        "contain",
        "report",
        "root-cause",
        "plan-action",
        "action-done",
        "verify-action",
        "close",
    ]
    refused = [(u.kind, u.by, u.refusal) for u in updates(register, accepted=False)]
    assert refused == [
        ("verify-action", DEV, by_owner.message),
        ("contain", TOM, "the incident is closed"),
    ]


def test_a_refusal_is_recorded_with_its_reason_and_announces_nothing(register: Register) -> None:
    result = send(register, K.contain, CLAIRE, "contained it myself", refusal_id="refused-slack-1")
    assert result.status == "refused" and result.fresh and not result.keys
    assert "not an incident responder (members of: model-risk, compliance)" in result.message
    [row] = updates(register)
    assert (row.id, row.accepted, row.refusal, row.by, row.kind, row.channel, row.detail) == (
        "refused-slack-1",
        False,
        result.message,
        CLAIRE,
        "contain",
        "slack",
        "contained it myself",
    )
    assert outbox(register) == 0
    inc = incident(register)
    assert inc.contained_at is None and inc.status == "triaged"

    again = send(register, K.contain, CLAIRE, "contained it myself", refusal_id="refused-slack-1")
    assert again.status == "refused" and not again.fresh
    assert len(updates(register)) == 1 and outbox(register) == 0


def test_without_a_refusal_id_a_redelivery_is_recorded_once(register: Register) -> None:
    assert send(register, K.report, TOM, "", hours=2).fresh
    assert not send(register, K.report, TOM, "", hours=2).fresh
    assert send(register, K.report, TOM, "", hours=3).fresh  # a new attempt, later
    assert len(updates(register, accepted=False)) == 2 and outbox(register) == 0


def test_an_unknown_incident_is_refused_and_nothing_recorded(register: Register) -> None:
    update = Update("urn:aims:test#nope", K.contain, TOM, "cli", at(1))
    result = submit(register, example_policy(), update, TOPIC)
    assert result.status == "refused" and "no incident" in result.message
    assert updates(register) == [] and outbox(register) == 0


def prepare(register: Register, owners: tuple[str, ...] = (DEV,)) -> None:
    for result in (
        send(register, K.contain, TOM, hours=1),
        send(register, K.report, MARIA, "NCA-1", hours=2),
        send(register, K.root_cause, TOM, "stale features", hours=3),
        *(
            send(register, K.plan_action, TOM, f"action {i}", hours=4, owner=owner, due=date(2026, 4, i))
            for i, owner in enumerate(owners, start=1)
        ),
    ):
        assert result.status == "accepted", result.message


def test_closing_is_refused_while_an_action_is_open(register: Register) -> None:
    prepare(register)
    rows = outbox(register)
    result = send(register, K.close, MARIA, hours=50)
    assert result.status == "refused" and not result.keys
    assert result.message == (
        "it cannot close yet: action A1 'action 1' (dev@northwind.example, due 2026-04-01) is open"
    )
    inc = incident(register)
    assert inc.closed_at is None and inc.status == "corrective-action"
    assert outbox(register) == rows

    assert send(register, K.action_done, DEV, hours=51, action_id="A1").status == "accepted"
    rows = outbox(register)
    unverified = send(register, K.close, MARIA, hours=52)
    assert unverified.status == "refused" and "A1 'action 1'" in unverified.message
    assert "is done but its effectiveness is not verified" in unverified.message
    assert incident(register).closed_at is None and outbox(register) == rows


def test_short_and_full_action_refs_resolve(register: Register) -> None:
    prepare(register, owners=(DEV, LI))
    by_short = send(register, K.action_done, DEV, hours=10, action_id="A1")
    assert by_short.status == "accepted" and isinstance(by_short.record, IncidentUpdate)
    assert by_short.record.action_id == f"{INC}/A1"
    by_full = send(register, K.action_done, LI, hours=11, action_id=f"{INC}/A2")
    assert by_full.status == "accepted" and isinstance(by_full.record, IncidentUpdate)
    assert by_full.record.action_id == f"{INC}/A2"
    assert [a.status for a in actions(register)] == ["done", "done"]

    rows = outbox(register)
    unknown = send(register, K.verify_action, TOM, "works", hours=12, action_id="A9")
    assert unknown.status == "refused"
    assert unknown.message == "the incident has no corrective action 'A9' (actions: A1, A2)"
    assert outbox(register) == rows


def test_actions_are_numbered_past_nine(register: Register) -> None:
    prepare(register, owners=(DEV,) * 10)
    with register.reader() as uow:
        state = load_state(uow, INC)
    assert state is not None
    assert [a.id.rsplit("/", 1)[-1] for a in state.actions] == [f"A{i}" for i in range(1, 11)]
    result = send(register, K.action_done, DEV, hours=10, action_id="A10")
    assert result.status == "accepted" and isinstance(result.record, IncidentUpdate)
    assert result.record.action_id == result.ref == f"{INC}/A10"
    assert {a.id: a.status for a in actions(register)}[f"{INC}/A10"] == "done"
    assert {a.id: a.status for a in actions(register)}[f"{INC}/A1"] == "open"
    planned = send(register, K.plan_action, TOM, "one more", hours=11, owner=DEV, due=date(2026, 5, 1))
    assert planned.message == "corrective action A11 planned"


def test_planning_the_same_action_twice_is_a_duplicate(register: Register) -> None:
    prepare(register)
    rows = outbox(register)
    again = send(register, K.plan_action, LI, "action 1", hours=9, owner=DEV.upper(), due=date(2026, 4, 1))
    assert again.status == "duplicate" and f"{INC}/A1" in again.message
    assert len(actions(register)) == 1 and outbox(register) == rows


def test_the_nonconformity_id_is_the_incidents() -> None:
    assert nonconformity_id(INC) == NC_ID


# -- revisions and untidy input ------------------------------------------------------------------


def test_a_root_cause_may_be_changed_back(register: Register) -> None:
    assert send(register, K.root_cause, TOM, "cause A", hours=1).status == "accepted"
    assert send(register, K.root_cause, TOM, "cause B", hours=2).status == "accepted"
    back = send(register, K.root_cause, TOM, "cause A", hours=3)
    assert back.status == "accepted"
    found = nc(register)
    assert found is not None and found.root_cause == "cause A"


def test_a_padded_responder_name_is_accepted_without_error(register: Register) -> None:
    result = send(register, K.contain, f" {TOM} ", hours=1)
    assert result.status == "accepted"
    assert incident(register).contained_at == at(1)


def test_an_unknown_channel_is_a_programming_error_not_a_record(register: Register) -> None:
    update = Update(INC, IncidentUpdateKind.contain, TOM, "email", at(1))
    with pytest.raises(ValueError, match="unknown channel 'email'"):
        submit(register, example_policy(), update, TOPIC)


# -- the extraordinary review an incident calls (handle-incident's rule, on the register) --------


def _repeat(register: Register, n: int, days: float, severity: Severity = Severity.high) -> Incident:
    incident = Incident(
        id=f"urn:aims:test#repeat-{n}",
        system="credit-scoring",
        title="Scores out of range",
        category=IncidentCategory.performance,
        severity=severity,
        occurred_at=T0 + timedelta(days=days),
        detected_at=T0 + timedelta(days=days),
        reported_by="monitor",
    )
    with register.unit_of_work("test") as uow:
        uow.incidents.add(incident)
    return incident


def _called(register: Register, incident: Incident) -> str | None:
    from flows.incidents.handle_incident import review_request
    from flows.reviews.calls import review_call

    at = incident.detected_at
    with register.unit_of_work("test") as uow:
        # Calling only, never joining: each new call is a review of its own.
        reviews = uow.reviews.find(kind="extraordinary")
        call = review_call(incident, uow.incidents.find(), reviews, example_policy(), at, join=False)
        if call is None:
            return None
        review = review_request(incident, call, at)
        uow.reviews.add_if_absent(review)
        return review.id


def test_a_serious_incident_calls_one_review_and_repeated_ones_one_per_window(register: Register) -> None:
    with register.reader() as uow:
        serious = uow.incidents.one(INC)
    assert _called(register, serious) == f"extraordinary:serious:{INC}"
    # The policy: 3 incidents of severity high or above within 30 days. The serious one counts too.
    assert _called(register, _repeat(register, 1, 1, Severity.medium)) is None  # below min_severity
    assert _called(register, _repeat(register, 2, 2)) is None  # two of three
    third = _repeat(register, 3, 3)
    assert _called(register, third) == f"extraordinary:repeated:{third.id}"
    # More within the window: the review is called already.
    assert _called(register, _repeat(register, 4, 10)) is None
    # Past the window, three fresh ones call the next review.
    assert _called(register, _repeat(register, 5, 60)) is None
    assert _called(register, _repeat(register, 6, 61)) is None
    later = _repeat(register, 7, 62)
    assert _called(register, later) == f"extraordinary:repeated:{later.id}"
