"""Who may update an incident and how: responders, actions, closing, the stage, and `check` under attack."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.incidents.rules import (
    Duplicate,
    Refused,
    State,
    Update,
    check,
    close_blockers,
    responders,
    stage_of,
)
from schemas.payloads import IncidentUpdateKind
from schemas.policy import IncidentStage
from schemas.records import Nonconformity
from tests.flows.incidents.incident_samples import (
    INC,
    POLICY,
    RESPONDERS,
    T0,
    K,
    action,
    incident,
    nonconformity,
    state,
    update,
    with_incidents,
)
from tests.people import AISHA, CLAIRE, DEV, JON, LI, MARIA, SAM, TOM

# -- 5. check -----------------------------------------------------------------------------------


def test_responders_are_the_policys_groups_case_blind() -> None:
    assert responders(POLICY) == frozenset(RESPONDERS)
    everyone = with_incidents(POLICY, responders=())
    assert responders(everyone) == frozenset(RESPONDERS | {CLAIRE, SAM})


def test_a_responder_may_contain_any_case() -> None:
    assert check(state(), update(K.contain, by=MARIA), POLICY) is None
    assert check(state(), update(K.contain, by=MARIA.upper()), POLICY) is None


@pytest.mark.parametrize("who", [CLAIRE, SAM, DEV, "mallory@evil.example"])
def test_a_non_responder_is_refused_naming_the_groups(who: str) -> None:
    result = check(state(), update(K.contain, by=who), POLICY)
    assert isinstance(result, Refused)
    assert who in result.why and "members of: model-risk, compliance" in result.why


def test_with_no_responders_listed_every_group_responds() -> None:
    everyone = with_incidents(POLICY, responders=())
    assert check(state(), update(K.contain, by=CLAIRE), everyone) is None
    refused = check(state(), update(K.contain, by=DEV), everyone)
    assert isinstance(refused, Refused) and "model-risk, compliance, executive" in refused.why


def test_containment_twice_is_a_duplicate() -> None:
    assert isinstance(check(state(incident(contained_at=T0)), update(K.contain), POLICY), Duplicate)


def test_the_owner_may_mark_their_own_action_done_without_being_a_responder() -> None:
    s = state(nc=nonconformity(), actions=[action(1, owner=DEV), action(2, owner=LI)])
    assert check(s, update(K.action_done, by=DEV, action_id=f"{INC}/A1"), POLICY) is None
    assert (
        check(s, update(K.action_done, by=" Dev@Northwind.example ", action_id=f"{INC}/A1"), POLICY) is None
    )
    # Only their own: A2 is Li's.
    other = check(s, update(K.action_done, by=DEV, action_id=f"{INC}/A2"), POLICY)
    assert isinstance(other, Refused) and "not an incident responder" in other.why
    # And only marking it done: nothing else.
    for kind in (K.contain, K.verify_action, K.close, K.root_cause):
        result = check(s, update(kind, by=DEV, detail="x", action_id=f"{INC}/A1"), POLICY)
        assert isinstance(result, Refused) and "not an incident responder" in result.why, kind
    # A responder may mark anyone's action done.
    assert check(s, update(K.action_done, by=AISHA, action_id=f"{INC}/A1"), POLICY) is None


def test_marking_done_twice_is_a_duplicate() -> None:
    s = state(nc=nonconformity(), actions=[action(1, status="done"), action(2, status="verified")])
    assert isinstance(check(s, update(K.action_done, by=DEV, action_id=f"{INC}/A1"), POLICY), Duplicate)
    assert isinstance(check(s, update(K.action_done, by=TOM, action_id=f"{INC}/A2"), POLICY), Duplicate)


def test_an_unknown_action_is_refused_naming_the_known_ones() -> None:
    s = state(nc=nonconformity(), actions=[action(1), action(2)])
    result = check(s, update(K.action_done, action_id="A9"), POLICY)
    assert isinstance(result, Refused) and "'A9'" in result.why and "(actions: A1, A2)" in result.why
    none_yet = check(state(nc=nonconformity()), update(K.verify_action, action_id="A1", detail="ok"), POLICY)
    assert isinstance(none_yet, Refused) and "none yet" in none_yet.why


def test_the_owner_may_not_verify_their_own_action() -> None:
    s = state(nc=nonconformity(), actions=[action(1, owner=TOM, status="done")])
    own = check(s, update(K.verify_action, by=TOM.upper(), action_id=f"{INC}/A1", detail="rates ok"), POLICY)
    assert isinstance(own, Refused) and "owns action A1" in own.why
    assert (
        check(s, update(K.verify_action, by=MARIA, action_id=f"{INC}/A1", detail="rates ok"), POLICY) is None
    )


def test_verifying_needs_a_done_action_and_a_finding() -> None:
    open_ = state(nc=nonconformity(), actions=[action(1, status="open")])
    result = check(open_, update(K.verify_action, by=MARIA, action_id=f"{INC}/A1", detail="ok"), POLICY)
    assert isinstance(result, Refused) and "not done yet" in result.why
    done = state(nc=nonconformity(), actions=[action(1, status="done")])
    blank = check(done, update(K.verify_action, by=MARIA, action_id=f"{INC}/A1", detail="  "), POLICY)
    assert isinstance(blank, Refused) and "needs its finding" in blank.why
    verified = state(nc=nonconformity(), actions=[action(1, status="verified")])
    again = check(verified, update(K.verify_action, by=JON, action_id=f"{INC}/A1", detail="ok"), POLICY)
    assert isinstance(again, Duplicate)


def test_reporting_to_the_authority() -> None:
    not_serious = check(state(incident(serious=False)), update(K.report, detail="NCA-1"), POLICY)
    assert isinstance(not_serious, Refused) and "not a serious incident" in not_serious.why
    no_ref = check(state(), update(K.report, detail="   "), POLICY)
    assert isinstance(no_ref, Refused) and "needs its reference" in no_ref.why
    assert check(state(), update(K.report, detail="NCA-2026-17"), POLICY) is None
    filed = state(
        incident(reported_to_authority_at=T0 + timedelta(hours=2), authority_reference="NCA-2026-17")
    )
    assert isinstance(check(filed, update(K.report, detail=" NCA-2026-17 "), POLICY), Duplicate)
    other = check(filed, update(K.report, detail="NCA-2026-99"), POLICY)
    assert isinstance(other, Refused) and "'NCA-2026-17'" in other.why


def test_root_cause_needs_text_and_the_same_cause_twice_is_a_duplicate() -> None:
    blank = check(state(), update(K.root_cause, detail=" "), POLICY)
    assert isinstance(blank, Refused) and "needs its text" in blank.why
    assert check(state(), update(K.root_cause, detail="stale features"), POLICY) is None
    recorded = state(nc=nonconformity("stale features"))
    assert isinstance(check(recorded, update(K.root_cause, detail="stale features "), POLICY), Duplicate)
    assert check(recorded, update(K.root_cause, detail="a different cause"), POLICY) is None


def plan(
    s: State, detail: str = "Retrain", owner: str | None = DEV, due: date | None = date(2026, 4, 1)
) -> Refused | Duplicate | None:
    return check(s, update(K.plan_action, detail=detail, owner=owner, due=due), POLICY)


def test_planning_an_action() -> None:
    no_cause = plan(state())
    assert isinstance(no_cause, Refused) and "root cause first" in no_cause.why
    empty_cause = plan(state(nc=nonconformity(root_cause="")))
    assert isinstance(empty_cause, Refused) and "root cause first" in empty_cause.why
    s = state(nc=nonconformity())
    assert plan(s) is None
    for refused, says in (
        (plan(s, detail="  "), "needs a description"),
        (plan(s, owner=None), "needs an owner"),
        (plan(s, owner="  "), "needs an owner"),
        (plan(s, due=None), "needs a due date"),
        (plan(s, due=(T0 + timedelta(hours=5)).date() - timedelta(days=1)), "is in the past"),
    ):
        assert isinstance(refused, Refused) and says in refused.why
    assert plan(s, due=(T0 + timedelta(hours=5)).date()) is None  # today is not the past
    planned = state(nc=nonconformity(), actions=[action(1, owner=DEV, description="Retrain")])
    same = plan(planned, detail="Retrain ", owner=DEV.upper())
    assert isinstance(same, Duplicate) and same.what == f"{INC}/A1"
    assert plan(planned, detail="Retrain", due=date(2026, 5, 1)) is None


def test_a_closed_incident_takes_nothing_but_answers_duplicate_to_close() -> None:
    closed = state(
        incident(closed_at=T0 + timedelta(days=20)), nonconformity(), [action(1, status="verified")]
    )
    for kind in IncidentUpdateKind:
        result = check(closed, update(kind, by=TOM, detail="x", action_id=f"{INC}/A1"), POLICY)
        if kind is K.close:
            assert isinstance(result, Duplicate)
        else:
            assert isinstance(result, Refused) and result.why == "the incident is closed", kind


def test_an_untriaged_incident_takes_nothing() -> None:
    untriaged = state(incident(triaged_at=None, status="reported"))
    for kind in IncidentUpdateKind:
        result = check(untriaged, update(kind, by=TOM, detail="x"), POLICY)
        assert isinstance(result, Refused) and "not triaged" in result.why, kind


# -- 6. closing ---------------------------------------------------------------------------------


def test_closing_is_refused_while_an_action_is_open_naming_it() -> None:
    inc = incident(contained_at=T0, reported_to_authority_at=T0, authority_reference="NCA-1")
    open_ = state(
        inc, nonconformity(), [action(1, owner=DEV, due=date(2026, 4, 1)), action(2, status="verified")]
    )
    label = "A1 'Retrain with reweighted data' (dev@northwind.example, due 2026-04-01)"
    assert close_blockers(open_) == [f"action {label} is open"]
    result = check(open_, update(K.close), POLICY)
    assert isinstance(result, Refused) and result.why == f"it cannot close yet: action {label} is open"
    done = state(inc, nonconformity(), [action(1, status="verified"), action(2, owner=LI, status="done")])
    assert close_blockers(done) == [
        "action A2 'Retrain with reweighted data' (li.wei@northwind.example, due 2026-04-01)"
        " is done but its effectiveness is not verified"
    ]
    assert isinstance(check(done, update(K.close), POLICY), Refused)


def test_close_blockers_name_everything_left_to_do() -> None:
    assert close_blockers(state()) == [
        "containment is not recorded",
        "the Art. 73 report is not filed (due 2026-03-17T09:00+00:00)",
        "no root cause is recorded (10.2)",
    ]
    assert close_blockers(state(incident(serious=False))) == [
        "containment is not recorded",
        "no root cause is recorded (10.2)",
    ]
    no_action = state(incident(contained_at=T0, serious=False), nonconformity())
    assert close_blockers(no_action) == ["no corrective action is planned (10.2)"]


def test_nothing_blocks_a_finished_incident() -> None:
    inc = incident(contained_at=T0, reported_to_authority_at=T0, authority_reference="NCA-1")
    finished = state(inc, nonconformity(), [action(1, status="verified"), action(2, status="verified")])
    assert close_blockers(finished) == []
    assert check(finished, update(K.close), POLICY) is None
    minor = state(incident(serious=False, contained_at=T0), nonconformity(), [action(1, status="verified")])
    assert close_blockers(minor) == []


@pytest.mark.parametrize(
    ("changes", "nc", "stage"),
    [
        ({"triaged_at": None, "status": "reported"}, None, IncidentStage.reported),
        ({}, None, IncidentStage.triaged),
        ({"contained_at": T0}, None, IncidentStage.contained),
        (
            {"reported_to_authority_at": T0, "authority_reference": "N-1"},
            None,
            IncidentStage.reported_to_authority,
        ),
        (
            {"contained_at": T0, "reported_to_authority_at": T0, "authority_reference": "N-1"},
            None,
            IncidentStage.reported_to_authority,
        ),
        ({"contained_at": T0}, nonconformity(""), IncidentStage.contained),
        ({"contained_at": T0}, nonconformity(), IncidentStage.corrective_action),
        ({"contained_at": T0, "closed_at": T0 + timedelta(days=9)}, nonconformity(), IncidentStage.closed),
    ],
    ids=[
        "reported",
        "triaged",
        "contained",
        "reported-before-contained",
        "reported",
        "nc-without-cause",
        "corrective-action",
        "closed",
    ],
)
def test_stage_of(changes: dict[str, object], nc: Nonconformity | None, stage: IncidentStage) -> None:
    assert stage_of(state(incident().model_copy(update=changes), nc)) is stage


# -- 8. check under attack ----------------------------------------------------------------------

PEOPLE = [AISHA, TOM, LI, MARIA, JON, CLAIRE, SAM, DEV, "mallory@evil.example"]
people = st.sampled_from(PEOPLE).flatmap(
    lambda p: st.sampled_from([p, p.upper(), f" {p} ", p.replace("@", "")])
) | st.text(max_size=12)


@st.composite
def states(draw: st.DrawFn) -> State:
    serious = draw(st.booleans())
    reported_at = draw(st.sampled_from([None, T0 + timedelta(hours=2)]))
    # Weighted towards an open, triaged incident, where most rules are reached.
    inc = incident(
        serious=serious,
        triaged_at=draw(st.sampled_from([T0, T0, T0, None])),
        contained_at=draw(st.sampled_from([None, T0 + timedelta(hours=1)])),
        reported_to_authority_at=reported_at if serious else None,
        authority_reference=("NCA-1" if reported_at and serious else None),
        closed_at=draw(st.sampled_from([None, None, None, T0 + timedelta(days=20)])),
    )
    nc = draw(st.sampled_from([None, nonconformity(""), nonconformity()]))
    actions = [
        action(
            i + 1,
            owner=draw(st.sampled_from(PEOPLE)),
            status=draw(st.sampled_from(["open", "done", "verified"])),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return State(inc, nc, tuple(actions))


updates = st.builds(
    Update,
    incident_id=st.just(INC),
    kind=st.sampled_from(list(IncidentUpdateKind)),
    by=people,
    channel=st.sampled_from(["slack", "jira", "cli"]),
    at=st.sampled_from([T0, T0 + timedelta(days=3), T0 + timedelta(days=40)]),
    detail=st.sampled_from(["", "  ", "NCA-1", "NCA-2", "reweighting skipped in the release pipeline"])
    | st.text(max_size=20),
    action_id=st.sampled_from([None, "A1", f"{INC}/A1", f"{INC}/A2", f"{INC}/A3", "junk"]),
    owner=st.none() | people,
    due=st.none() | st.dates(min_value=date(2026, 2, 1), max_value=date(2026, 6, 1)),
)


@settings(max_examples=200, deadline=None)
@given(states(), updates)
def test_check_never_raises_and_outsiders_are_refused(s: State, u: Update) -> None:
    result = check(s, u, POLICY)
    assert result is None or isinstance(result, (Refused, Duplicate))
    who = u.by.strip().casefold()
    target = s.action(u.action_id)
    own_action = u.kind is K.action_done and target is not None and target.owner.casefold() == who
    closed_close = s.incident.closed_at is not None and u.kind is K.close
    if who not in RESPONDERS and not own_action and not closed_close:
        assert isinstance(result, Refused), (u, result)
    if s.incident.closed_at is None and s.incident.triaged_at is None:
        assert isinstance(result, Refused)
    if s.incident.closed_at is not None:
        assert isinstance(result, Duplicate) if u.kind is K.close else isinstance(result, Refused)
    if result is None and u.kind is K.close:
        assert close_blockers(s) == []
    if result is None and u.kind is K.verify_action:
        assert target is not None and target.status == "done" and target.owner.casefold() != who
