"""Extraordinary review calls from incidents: when one is called, and joining the review not yet held."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.reviews.calls import (
    ReviewCall,
    joined,
    late_triggers,
    meeting_of,
    not_yet_held,
    requested_review,
    review_call,
    review_reason,
    review_triggers,
)
from schemas.payloads import Severity
from schemas.records import Incident, ManagementReview
from schemas.review_policy import ExtraordinaryReview
from tests.flows.incidents.incident_samples import INC, POLICY, SERIOUS, T0, incident


def minor_incident(n: int, days_before: float, severity: Severity = Severity.high) -> Incident:
    return incident(
        serious=False,
        id=f"urn:aims:test#inc-{n}",
        severity=severity,
        detected_at=T0 - timedelta(days=days_before),
        occurred_at=T0 - timedelta(days=days_before + 1),
    )


def test_a_serious_incident_calls_a_review() -> None:
    reason = review_reason(SERIOUS, [], POLICY)
    assert reason is not None
    assert INC in reason and "credit-scoring" in reason and "fundamental_rights_infringement" in reason


def test_repeated_high_incidents_call_a_review() -> None:
    rule = POLICY.management_review.extraordinary
    assert (rule.incidents, rule.within_days, rule.min_severity) == (3, 30, Severity.high)
    latest = minor_incident(3, 0)
    recent = [minor_incident(1, 30), minor_incident(2, 10, Severity.critical), latest]
    reason = review_reason(latest, recent, POLICY)
    assert reason is not None and reason.startswith("3 incidents of severity high or above within 30 days")
    assert "urn:aims:test#inc-3" in reason
    # Without itself in `recent`, it still counts once.
    assert review_reason(latest, recent[:2], POLICY) == reason


def test_no_review_outside_the_window_or_below_the_severity() -> None:
    latest = minor_incident(3, 0)
    assert review_reason(latest, [minor_incident(1, 30.01), minor_incident(2, 10), latest], POLICY) is None
    assert (
        review_reason(latest, [minor_incident(1, 5, Severity.medium), minor_incident(2, 10)], POLICY) is None
    )
    # Incidents detected after this one do not count towards it.
    assert review_reason(latest, [minor_incident(1, -1), minor_incident(2, -2)], POLICY) is None
    # A medium incident calls nothing, however many high ones precede it.
    medium = minor_incident(9, 0, Severity.medium)
    assert review_reason(medium, [minor_incident(i, i) for i in range(1, 6)], POLICY) is None
    # Duplicates of one incident count once.
    assert review_reason(latest, [minor_incident(1, 3), minor_incident(1, 3)], POLICY) is None


def test_the_review_rule_is_the_policys() -> None:
    two = POLICY.model_copy(
        update={
            "management_review": POLICY.management_review.model_copy(
                update={
                    "extraordinary": ExtraordinaryReview(
                        incidents=2, within_days=7, min_severity=Severity.medium
                    )
                }
            )
        }
    )
    latest = minor_incident(3, 0, Severity.medium)
    reason = review_reason(latest, [minor_incident(1, 7, Severity.medium)], two)
    assert reason is not None and reason.startswith("2 incidents of severity medium or above within 7 days")
    assert review_reason(latest, [minor_incident(1, 7.5, Severity.medium)], two) is None


# -- 7b. joining the extraordinary review that is not yet held (issue 17, item 10) --------------


def serious_at(n: int, at: datetime) -> Incident:
    return incident(id=f"urn:aims:test#serious-{n}", detected_at=at, occurred_at=at - timedelta(hours=1))


def minor_at(n: int, at: datetime, severity: Severity = Severity.high) -> Incident:
    return incident(
        serious=False, id=f"urn:aims:test#minor-{n}", severity=severity, detected_at=at, occurred_at=at
    )


def extraordinary(review_id: str = "requested:x", **changes: object) -> ManagementReview:
    base = ManagementReview(
        id=review_id, kind="extraordinary", reason="asked", status="requested", created_at=T0, trigger="cli:x"
    )
    return base.model_copy(update=changes)


def called(
    reviews: list[ManagementReview], inc: Incident, recent: Sequence[Incident], at: datetime
) -> tuple[list[ManagementReview], ReviewCall | None]:
    """The reviews after `inc` was triaged at `at`, as handle-incident records them."""
    call = review_call(inc, recent, reviews, POLICY, at)
    if call is None:
        return reviews, None
    if call.joins is None:
        return [*reviews, requested_review(inc, call, at, "flow:test")], call
    return [r.model_copy(update=joined(r, call)) if r.id == call.joins.id else r for r in reviews], call


# The extraordinary meeting falls notice_days (7) after the request, at 10:00 Europe/London (GMT in March).
MEETING = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
PREPARED = {"status": "prepared", "meeting_at": MEETING, "prepared_at": T0}


@pytest.mark.parametrize(
    ("changes", "at", "waiting"),
    [
        ({}, T0 + timedelta(minutes=3), True),  # requested, its pack not gathered yet
        ({}, MEETING - timedelta(minutes=1), True),
        ({}, MEETING, False),  # the meeting it would get has come
        ({"status": "prepared", "meeting_at": MEETING, "prepared_at": T0}, T0 + timedelta(days=2), True),
        # Held: the meeting is past, the results are still to be recorded.
        (
            {"status": "prepared", "meeting_at": MEETING, "prepared_at": T0},
            MEETING + timedelta(hours=3),
            False,
        ),
        ({"status": "closed", "meeting_at": MEETING, "closed_at": T0}, T0 + timedelta(hours=1), False),
        ({"kind": "scheduled", "status": "planned", "meeting_at": MEETING}, T0, False),
        ({"status": "planned", "meeting_at": MEETING}, T0, True),
    ],
)
def test_not_yet_held(changes: dict[str, object], at: datetime, waiting: bool) -> None:
    assert meeting_of(extraordinary(), POLICY) == MEETING
    assert not_yet_held(extraordinary(**changes), at, POLICY) is waiting


def test_three_serious_incidents_within_minutes_make_one_review() -> None:
    reviews: list[ManagementReview] = []
    incidents = [serious_at(n, T0 + timedelta(minutes=2 * n)) for n in range(3)]
    calls = []
    for n, inc in enumerate(incidents):
        reviews, call = called(reviews, inc, incidents[: n + 1], inc.detected_at)
        calls.append(call)
    assert len(reviews) == 1
    review = reviews[0]
    assert review.id == f"extraordinary:serious:{incidents[0].id}"
    assert review_triggers(review) == [f"incident:{i.id}" for i in incidents]
    assert review.trigger == f"incident:{incidents[0].id}"
    assert all(i.id in review.reason for i in incidents)
    assert [c is not None and c.joins is not None for c in calls] == [False, True, True]
    # Delivered again, none of them calls anything.
    for inc in incidents:
        assert review_call(inc, incidents, reviews, POLICY, T0 + timedelta(minutes=9)) is None


def test_after_the_review_was_held_the_next_serious_incident_calls_a_new_one() -> None:
    first = serious_at(1, T0)
    reviews, _ = called([], first, [first], T0)
    held = reviews[0].model_copy(update={"status": "closed", "closed_at": T0 + timedelta(hours=1)})
    later = serious_at(2, T0 + timedelta(hours=2))
    after, call = called([held], later, [first, later], later.detected_at)
    assert call is not None and call.joins is None
    assert [r.id for r in after] == [held.id, f"extraordinary:serious:{later.id}"]
    # Held but its results not recorded yet: the meeting is past, so a new one too.
    met = reviews[0].model_copy(update={"status": "prepared", "meeting_at": MEETING, "prepared_at": T0})
    _, call = called([met], later, [first, later], MEETING + timedelta(minutes=1))
    assert call is not None and call.joins is None


def test_repeated_incidents_join_the_open_review_and_count_for_their_window() -> None:
    serious = serious_at(1, T0)
    reviews, _ = called([], serious, [serious], T0)
    # Two high ones and the serious one are three within 30 days: the repeated rule calls a review,
    # and it joins the serious incident's.
    highs = [minor_at(n, T0 + timedelta(days=n)) for n in (1, 2)]
    reviews, call = called(reviews, highs[1], [serious, *highs], highs[1].detected_at)
    assert call is not None and call.kind == "repeated" and call.joins is not None
    assert len(reviews) == 1 and review_triggers(reviews[0])[-1] == f"incident:{highs[1].id}"
    assert "3 incidents of severity high or above" in reviews[0].reason
    # Held; a fourth high one within the window calls no new review: repeated incidents were heard.
    closed = [reviews[0].model_copy(update={"status": "closed"})]
    fourth = minor_at(4, T0 + timedelta(days=10))
    assert called(closed, fourth, [serious, *highs, fourth], fourth.detected_at)[1] is None
    # A serious incident does.
    fifth = serious_at(5, T0 + timedelta(days=10))
    assert called(closed, fifth, [serious, fifth], fifth.detected_at)[1] is not None


def test_join_false_is_the_new_review_rule_alone() -> None:
    """`_review` (the new review, without joining) keeps once per trigger and once per window."""
    serious = serious_at(1, T0)
    reviews, _ = called([], serious, [serious], T0)
    other = serious_at(2, T0 + timedelta(minutes=1))
    call = review_call(other, [serious, other], reviews, POLICY, other.detected_at, join=False)
    assert call is not None and call.joins is None and call.kind == "serious"
    assert review_call(serious, [serious], reviews, POLICY, T0, join=False) is None


def test_the_soonest_meeting_is_joined_when_several_wait() -> None:
    late = extraordinary("requested:later", created_at=T0 + timedelta(days=1))
    soon = extraordinary("requested:sooner", created_at=T0)
    inc = serious_at(1, T0 + timedelta(days=2))
    call = review_call(inc, [inc], [late, soon], POLICY, inc.detected_at)
    assert call is not None and call.joins == soon
    assert joined(soon, call) == {
        "reason": f"asked; {call.reason}",
        "triggers": ["cli:x", f"incident:{inc.id}"],
    }


def test_late_triggers_are_those_the_pack_was_gathered_without() -> None:
    triggers = ["incident:a", "incident:b", "incident:c"]
    waiting = extraordinary(triggers=triggers)
    assert late_triggers(waiting) == []  # its pack, when gathered, shows them all
    prepared = waiting.model_copy(update={"prepared_at": T0, "pack_triggers": triggers[:2]})
    assert late_triggers(prepared) == ["incident:c"]
    # Prepared before reviews had triggers: the pack covered its one trigger.
    legacy = extraordinary(trigger="incident:a", prepared_at=T0)
    assert review_triggers(legacy) == ["incident:a"] and late_triggers(legacy) == []
    assert late_triggers(legacy.model_copy(update={"triggers": ["incident:a", "incident:d"]})) == [
        "incident:d"
    ]


Step = tuple[str, int, bool, Severity]


@st.composite
def review_histories(draw: st.DrawFn) -> list[Step]:
    """Steps: an incident (serious or not), preparing or closing a review; minutes since the last step."""
    gap = st.one_of(st.integers(0, 30), st.integers(0, 12 * 24 * 60))
    step = st.tuples(
        st.sampled_from(["incident", "incident", "incident", "prepare", "close"]),
        gap,
        st.booleans(),
        st.sampled_from([Severity.medium, Severity.high, Severity.critical]),
    )
    return draw(st.lists(step, max_size=25))


@settings(max_examples=200, deadline=None)
@given(review_histories())
def test_any_history_leaves_at_most_one_review_not_yet_held(
    steps: list[tuple[str, int, bool, Severity]],
) -> None:
    reviews: list[ManagementReview] = []
    incidents: list[Incident] = []
    now = T0
    for n, (kind, gap, serious, severity) in enumerate(steps):
        now += timedelta(minutes=gap)
        waiting = [r for r in reviews if not_yet_held(r, now, POLICY)]
        if kind == "incident":
            inc = serious_at(n, now) if serious else minor_at(n, now, severity)
            incidents.append(inc)
            before = len(reviews)
            reviews, call = called(reviews, inc, incidents, now)
            # A new review only when none waits; a redelivery calls nothing.
            assert len(reviews) == before + (call is not None and call.joins is None)
            assert not (waiting and len(reviews) > before)
            assert review_call(inc, incidents, reviews, POLICY, now) is None
        elif kind == "prepare" and waiting:
            r = waiting[0]
            update = {"status": "prepared", "prepared_at": now, "meeting_at": meeting_of(r, POLICY)}
            update["pack_triggers"] = review_triggers(r)
            reviews = [x.model_copy(update=update) if x.id == r.id else x for x in reviews]
        elif kind == "close":
            reviews = [r.model_copy(update={"status": "closed", "closed_at": now}) for r in reviews]
        assert len([r for r in reviews if not_yet_held(r, now, POLICY)]) <= 1
        triggers = [t for r in reviews for t in review_triggers(r)]
        assert len(triggers) == len(set(triggers)), "an incident is recorded on one review only"
