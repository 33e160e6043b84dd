"""Incident rules: Art. 73 triage and clock, reminders, who may update what, when an incident closes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.incidents.clocks import ClockDue, clock, clock_plan, format_left, time_left
from flows.incidents.rules import (
    INVENTORY_CONTROLS,
    Duplicate,
    Refused,
    State,
    Update,
    check,
    close_blockers,
    inventory_finding,
    responders,
    stage_of,
    triage,
)
from flows.notices import notice_id
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
from schemas.payloads import (
    Art73Criterion,
    IncidentCategory,
    IncidentReported,
    IncidentUpdateKind,
    Severity,
)
from schemas.policy import Art73Clock, ExtraordinaryReview, IncidentStage, Policy
from schemas.records import CorrectiveAction, Incident, ManagementReview, Nonconformity
from tests.people import AISHA, CLAIRE, DEV, JON, LI, MARIA, SAM, TOM
from tests.resources import example_policy

POLICY = example_policy()
ART73 = POLICY.regulatory.art73
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
INC = "urn:aims:test#inc-1"
NC_ID = f"{INC}/NC"
RESPONDERS = {AISHA, TOM, LI, MARIA, JON}

C = Art73Criterion
K = IncidentUpdateKind


def with_incidents(policy: Policy, **changes: object) -> Policy:
    return policy.model_copy(update={"incidents": policy.incidents.model_copy(update=changes)})


NO_FLOOR = with_incidents(POLICY, severity_floor={})


def reported(
    category: IncidentCategory,
    severity: Severity = Severity.low,
    harms: Sequence[Art73Criterion] = (),
    detected_at: datetime = T0,
) -> IncidentReported:
    return IncidentReported(
        ai_system="credit-scoring",
        severity=severity,
        category=category,
        description="Scores shifted after the release",
        reporter="support@northwind.example",
        occurred_at=detected_at - timedelta(hours=3),
        detected_at=detected_at,
        harms=list(harms),
    )


def triaged(report: IncidentReported, policy: Policy = POLICY, **changes: object) -> Incident:
    """The incident record as triage leaves it."""
    t = triage(report, policy)
    base = Incident(
        id=INC,
        system=report.ai_system,
        title="Scores shifted after the release",
        category=report.category,
        severity=t.severity,
        occurred_at=report.occurred_at,
        detected_at=report.detected_at,
        reported_by=report.reporter,
        status="triaged",
        serious=t.serious,
        criteria=[c.value for c in t.criteria],
        reporting_due_at=t.clock.due_at if t.clock else None,
        deadline_basis=t.clock.basis if t.clock else None,
        reported_severity=report.severity,
        triaged_at=report.detected_at,
    )
    return base.model_copy(update=changes)


SERIOUS = triaged(reported(IncidentCategory.fundamental_rights, Severity.high))  # 15 days
MINOR = triaged(reported(IncidentCategory.performance, Severity.medium))


def incident(serious: bool = True, **changes: object) -> Incident:
    return (SERIOUS if serious else MINOR).model_copy(update=changes)


def nonconformity(root_cause: str = "reweighting skipped in the release pipeline") -> Nonconformity:
    return Nonconformity(
        id=NC_ID,
        source="incident",
        source_ref=INC,
        description="Scores shifted (credit-scoring)",
        root_cause=root_cause,
        opened_at=T0,
    )


def action(
    n: int = 1,
    owner: str = DEV,
    status: str = "open",
    due: date = date(2026, 4, 1),
    description: str = "Retrain with reweighted data",
) -> CorrectiveAction:
    return CorrectiveAction(
        id=f"{INC}/A{n}",
        nonconformity_id=NC_ID,
        description=description,
        owner=owner,
        due=due,
        status=status,
        done_at=T0 + timedelta(days=3) if status != "open" else None,
        effectiveness="approval rates back within 1 %" if status == "verified" else None,
        verified_by=MARIA if status == "verified" else None,
    )


def state(
    inc: Incident | None = None, nc: Nonconformity | None = None, actions: Sequence[CorrectiveAction] = ()
) -> State:
    return State(inc if inc is not None else incident(), nc, tuple(actions))


def update(
    kind: IncidentUpdateKind,
    by: str = TOM,
    detail: str = "",
    action_id: str | None = None,
    owner: str | None = None,
    due: date | None = None,
    at: datetime = T0 + timedelta(hours=5),
) -> Update:
    return Update(INC, kind, by, "slack", at, detail, action_id, owner, due)


# -- 1. triage ----------------------------------------------------------------------------------

Cat, S = IncidentCategory, Severity
HARM_CATEGORIES = (
    Cat.health_and_safety,
    Cat.critical_infrastructure,
    Cat.fundamental_rights,
    Cat.property_or_environment,
)


def case(
    name: str,
    category: IncidentCategory,
    severity: Severity,
    final: Severity,
    criteria: tuple[Art73Criterion, ...] = (),
    days: int | None = None,
    basis: str | None = None,
    harms: tuple[Art73Criterion, ...] = (),
    policy: Policy = POLICY,
) -> object:
    """One triage: what is reported, and the severity, criteria and deadline it must come to."""
    return pytest.param(policy, category, severity, harms, final, criteria, days, basis, id=name)


TRIAGE_CASES = [
    case("death", Cat.death, S.low, S.critical, (C.death,), 10, "death"),
    case("death-below-serious_from", Cat.death, S.low, S.low, (C.death,), 10, "death", policy=NO_FLOOR),
    # Each harm category at serious_from (high), without floors in the way.
    case(
        "health",
        Cat.health_and_safety,
        S.high,
        S.high,
        (C.serious_harm_to_health,),
        15,
        "general",
        policy=NO_FLOOR,
    ),
    case(
        "critical-infrastructure",
        Cat.critical_infrastructure,
        S.high,
        S.high,
        (C.critical_infrastructure_disruption,),
        2,
        "widespread",
        policy=NO_FLOOR,
    ),
    case(
        "fundamental-rights",
        Cat.fundamental_rights,
        S.high,
        S.high,
        (C.fundamental_rights_infringement,),
        15,
        "general",
        policy=NO_FLOOR,
    ),
    case(
        "property",
        Cat.property_or_environment,
        S.high,
        S.high,
        (C.serious_harm_to_property_or_environment,),
        15,
        "general",
        policy=NO_FLOOR,
    ),
    case(
        "property-critical",
        Cat.property_or_environment,
        S.critical,
        S.critical,
        (C.serious_harm_to_property_or_environment,),
        15,
        "general",
    ),
    # Below serious_from: not serious, no clock.
    *[case(f"{c}-{s}", c, s, s, policy=NO_FLOOR) for c in HARM_CATEGORIES for s in (S.low, S.medium)],
    case("property-medium-shipped", Cat.property_or_environment, S.medium, S.medium),
    # The shipped floors lift a low report into seriousness.
    case(
        "floor-critical-infrastructure",
        Cat.critical_infrastructure,
        S.low,
        S.critical,
        (C.critical_infrastructure_disruption,),
        2,
        "widespread",
    ),
    case("floor-health", Cat.health_and_safety, S.medium, S.high, (C.serious_harm_to_health,), 15, "general"),
    # Harms the reporter names.
    case(
        "named-widespread",
        Cat.performance,
        S.low,
        S.low,
        (C.widespread_infringement,),
        2,
        "widespread",
        harms=(C.widespread_infringement,),
    ),
    case(
        "named-health",
        Cat.misuse,
        S.medium,
        S.medium,
        (C.serious_harm_to_health,),
        15,
        "general",
        harms=(C.serious_harm_to_health,),
    ),
    # Several criteria: the shortest deadline wins.
    case(
        "death-and-critical-infrastructure",
        Cat.death,
        S.critical,
        S.critical,
        (C.death, C.critical_infrastructure_disruption),
        2,
        "widespread",
        harms=(C.critical_infrastructure_disruption,),
    ),
    case(
        "death-beats-general",
        Cat.fundamental_rights,
        S.high,
        S.high,
        (C.death, C.fundamental_rights_infringement),
        10,
        "death",
        harms=(C.death,),
    ),
    # Non-harm categories: floors apply, never serious.
    case("floor-bias", Cat.bias, S.low, S.medium),
    case("floor-privacy", Cat.privacy, S.low, S.medium),
    *[
        case(f"{c}-critical", c, S.critical, S.critical)
        for c in (Cat.security, Cat.privacy, Cat.bias, Cat.performance, Cat.misuse, Cat.other)
    ],
]


@pytest.mark.parametrize(
    ("policy", "category", "severity", "harms", "final", "criteria", "days", "basis"), TRIAGE_CASES
)
def test_triage(
    policy: Policy,
    category: IncidentCategory,
    severity: Severity,
    harms: tuple[Art73Criterion, ...],
    final: Severity,
    criteria: tuple[Art73Criterion, ...],
    days: int | None,
    basis: str | None,
) -> None:
    result = triage(reported(category, severity, harms), policy)
    assert result.severity is final
    assert result.criteria == criteria
    assert result.serious is bool(criteria)
    if days is None:
        assert result.clock is None
        return
    assert result.clock is not None
    assert (result.clock.days, result.clock.basis) == (days, basis)
    assert result.clock.detected_at == T0
    assert result.clock.due_at == T0 + timedelta(days=days)
    assert result.clock.text.endswith(f", {days} days")


def test_clock_text_names_the_article() -> None:
    death = clock(T0, [C.death], ART73)
    widespread = clock(T0, [C.widespread_infringement], ART73)
    general = clock(T0, [C.serious_harm_to_health], ART73)
    assert death is not None and death.text == "Art. 73(4): death of a person, 10 days"
    assert widespread is not None and widespread.text.startswith("Art. 73(3)")
    assert general is not None and general.text == "Art. 73(2): serious incident, 15 days"
    assert clock(T0, [], ART73) is None


def test_a_floor_never_lowers_a_reported_severity() -> None:
    assert triage(reported(IncidentCategory.bias, Severity.critical), POLICY).severity is Severity.critical
    assert triage(reported(IncidentCategory.bias, Severity.high), POLICY).severity is Severity.high


def test_serious_from_is_the_policys() -> None:
    lower = with_incidents(NO_FLOOR, serious_from=Severity.medium)
    medium = triage(reported(IncidentCategory.fundamental_rights, Severity.medium), lower)
    assert medium.criteria == (C.fundamental_rights_infringement,)
    higher = with_incidents(NO_FLOOR, serious_from=Severity.critical)
    assert not triage(reported(IncidentCategory.health_and_safety, Severity.high), higher).serious
    assert triage(reported(IncidentCategory.death, Severity.low), higher).criteria == (C.death,)


def test_when_death_and_widespread_share_a_deadline_death_is_named() -> None:
    same = Art73Clock(general_days=15, death_days=2, widespread_days=2)
    result = clock(T0, [C.widespread_infringement, C.death], same)
    assert result is not None and (result.days, result.basis) == (2, "death")


# -- 2. clock arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("detected", "criterion", "due"),
    [
        (
            datetime(2026, 1, 30, 12, 0, tzinfo=UTC),
            C.critical_infrastructure_disruption,
            datetime(2026, 2, 1, 12, 0, tzinfo=UTC),
        ),
        (
            datetime(2028, 2, 27, 12, 0, tzinfo=UTC),
            C.widespread_infringement,
            datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
        ),
        (
            datetime(2027, 2, 27, 12, 0, tzinfo=UTC),
            C.widespread_infringement,
            datetime(2027, 3, 1, 12, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 31, 12, 0, tzinfo=UTC),
            C.serious_harm_to_health,
            datetime(2027, 1, 15, 12, 0, tzinfo=UTC),
        ),
        (datetime(2026, 1, 31, 12, 0, tzinfo=UTC), C.death, datetime(2026, 2, 10, 12, 0, tzinfo=UTC)),
    ],
    ids=["month-end", "leap-day", "no-leap-day", "year-end", "death-over-month-end"],
)
def test_the_clock_counts_calendar_days(detected: datetime, criterion: Art73Criterion, due: datetime) -> None:
    result = clock(detected, [criterion], ART73)
    assert result is not None and result.due_at == due
    assert (result.due_at.hour, result.due_at.minute) == (detected.hour, detected.minute)


def test_the_clock_keeps_the_detections_offset_and_time_of_day() -> None:
    plus2 = timezone(timedelta(hours=2))
    detected = datetime(2026, 6, 29, 23, 30, tzinfo=plus2)
    result = triage(
        reported(IncidentCategory.critical_infrastructure, Severity.high, detected_at=detected), POLICY
    )
    assert result.clock is not None
    due = result.clock.due_at
    assert due.utcoffset() == timedelta(hours=2)
    assert (due.year, due.month, due.day, due.hour, due.minute) == (2026, 7, 1, 23, 30)
    assert due == datetime(2026, 7, 1, 21, 30, tzinfo=UTC)


offsets = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.one_of(offsets, st.timezones()),
)


@st.composite
def art73_clocks(draw: st.DrawFn) -> Art73Clock:
    general = draw(st.integers(1, 365))
    return Art73Clock(
        general_days=general,
        death_days=draw(st.integers(1, general)),
        widespread_days=draw(st.integers(1, general)),
    )


@settings(max_examples=200, deadline=None)
@given(aware, st.sets(st.sampled_from(list(Art73Criterion)), min_size=1), art73_clocks())
def test_the_shortest_applicable_deadline_runs_from_detection(
    detected: datetime, criteria: set[Art73Criterion], art73: Art73Clock
) -> None:
    def days(c: Art73Criterion) -> int:
        if c is C.death:
            return art73.death_days
        if c in (C.critical_infrastructure_disruption, C.widespread_infringement):
            return art73.widespread_days
        return art73.general_days

    result = clock(detected, sorted(criteria), art73)
    assert result is not None
    shortest = min(days(c) for c in criteria)
    assert result.days == shortest
    assert result.due_at - result.detected_at == timedelta(days=shortest)
    assert result.due_at.tzinfo is detected.tzinfo
    assert result.due_at.time() == detected.time()


# -- 3. reminders -------------------------------------------------------------------------------


def watch(inc: Incident, art73: Art73Clock, scans: Sequence[datetime]) -> list[tuple[datetime, ClockDue]]:
    """A clock watcher scanning at the given times, remembering what it sent."""
    sent: set[str] = set()
    out: list[tuple[datetime, ClockDue]] = []
    for now in scans:
        due = clock_plan(inc, art73, now, sent)
        assert len(due) <= 1, f"a burst at {now}: {due}"
        for d in due:
            key = notice_id(inc.id, d.kind, d.step)
            assert key not in sent, f"{key} sent twice"
            sent.add(key)
            out.append((now, d))
    return out


def every(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    times, now = [], start
    while now <= end:
        times.append(now)
        now += step
    return times


@pytest.mark.parametrize(
    ("category", "days"),
    [(IncidentCategory.critical_infrastructure, 2), (IncidentCategory.health_and_safety, 15)],
)
def test_each_threshold_and_the_overdue_notice_fire_once_in_order(
    category: IncidentCategory, days: int
) -> None:
    inc = triaged(reported(category, Severity.high))
    assert inc.reporting_due_at == T0 + timedelta(days=days)
    due_at = inc.reporting_due_at
    fired = watch(inc, ART73, every(T0, due_at + timedelta(days=1), timedelta(minutes=15)))
    assert [(d.kind, d.step) for _, d in fired] == [
        ("clock-reminder", "0.5"),
        ("clock-reminder", "0.8"),
        ("clock-overdue", ""),
    ]
    half, most = T0 + timedelta(days=days) * 0.5, T0 + timedelta(days=days) * 0.8
    assert [d.at for _, d in fired] == [half, most, due_at]
    # Each was sent at the first scan at or after its threshold.
    quarter = timedelta(minutes=15)
    for (now, d), threshold in zip(fired, [half, most, due_at], strict=True):
        assert threshold <= now < threshold + quarter, (d, now)


def test_a_watcher_down_across_both_thresholds_sends_only_the_latest() -> None:
    inc = triaged(reported(IncidentCategory.critical_infrastructure, Severity.high))  # due T0 + 48 h
    assert inc.reporting_due_at is not None
    back = T0 + timedelta(hours=40)  # past 24 h and 38.4 h
    scans = [T0, *every(back, inc.reporting_due_at + timedelta(hours=2), timedelta(minutes=15))]
    fired = watch(inc, ART73, scans)
    assert [(now, d.kind, d.step) for now, d in fired] == [
        (back, "clock-reminder", "0.8"),
        (inc.reporting_due_at, "clock-overdue", ""),
    ]


def test_a_watcher_down_until_past_due_sends_only_the_overdue_notice() -> None:
    inc = triaged(reported(IncidentCategory.critical_infrastructure, Severity.high))
    assert inc.reporting_due_at is not None
    fired = watch(
        inc, ART73, [T0, inc.reporting_due_at + timedelta(hours=5), inc.reporting_due_at + timedelta(days=3)]
    )
    assert [(d.kind, d.step) for _, d in fired] == [("clock-overdue", "")]


def test_nothing_is_due_before_the_first_threshold() -> None:
    inc = triaged(reported(IncidentCategory.critical_infrastructure, Severity.high))
    assert clock_plan(inc, ART73, T0 + timedelta(hours=23, minutes=59), set()) == []
    assert [d.step for d in clock_plan(inc, ART73, T0 + timedelta(hours=24), set())] == ["0.5"]


@pytest.mark.parametrize(
    "changes",
    [
        {"reported_to_authority_at": T0 + timedelta(hours=1), "authority_reference": "NCA-1"},
        {"closed_at": T0 + timedelta(hours=1)},
        {"serious": False},
        {"reporting_due_at": None},
    ],
    ids=["reported", "closed", "not-serious", "no-due-date"],
)
def test_no_reminder_once_reported_or_closed_or_not_serious(changes: dict[str, object]) -> None:
    inc = triaged(reported(IncidentCategory.critical_infrastructure, Severity.high)).model_copy(
        update=changes
    )
    for hours in (0, 24, 40, 48, 100):
        assert clock_plan(inc, ART73, T0 + timedelta(hours=hours), set()) == []


def test_a_non_serious_incident_has_no_clock_at_all() -> None:
    assert MINOR.reporting_due_at is None
    assert clock_plan(MINOR, ART73, T0 + timedelta(days=30), set()) == []


fractions = st.lists(
    st.floats(min_value=0.001, max_value=0.999, allow_nan=False), min_size=0, max_size=5, unique=True
).map(lambda xs: tuple(sorted(xs)))


@settings(max_examples=200, deadline=None)
@given(
    fractions,
    st.integers(1, 20),
    st.lists(
        st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3)), min_size=1, max_size=60
    ),
)
def test_random_thresholds_and_scans_never_repeat_a_notice(
    reminders: tuple[float, ...], days: int, gaps: list[timedelta]
) -> None:
    art73 = Art73Clock(general_days=20, death_days=days, widespread_days=1, reminders=reminders)
    inc = incident(reporting_due_at=T0 + timedelta(days=days))
    scans, now = [], T0
    for gap in gaps:
        now += gap
        scans.append(now)
    fired = watch(inc, art73, scans)  # asserts at most one per call and no id twice
    kinds = [d.kind for _, d in fired]
    assert kinds.count("clock-overdue") == (1 if scans[-1] >= T0 + timedelta(days=days) else 0)
    assert "clock-overdue" not in kinds[:-1]  # nothing after the overdue notice
    steps = [float(d.step) for _, d in fired if d.kind == "clock-reminder"]
    assert steps == sorted(steps) and all(s in reminders for s in steps)
    for now, d in fired:
        assert d.at <= now


# -- 4. time left -------------------------------------------------------------------------------


def test_time_left_counts_down_and_goes_negative() -> None:
    due = SERIOUS.reporting_due_at
    assert due == T0 + timedelta(days=15)
    assert time_left(SERIOUS, T0) == timedelta(days=15)
    assert time_left(SERIOUS, T0 + timedelta(days=14, hours=21)) == timedelta(hours=3)
    assert time_left(SERIOUS, T0 + timedelta(days=16)) == timedelta(days=-1)


def test_time_left_is_none_without_a_running_clock() -> None:
    assert time_left(MINOR, T0) is None
    assert time_left(incident(reported_to_authority_at=T0, authority_reference="NCA-1"), T0) is None
    assert time_left(incident(closed_at=T0), T0) is None


@pytest.mark.parametrize(
    ("left", "text"),
    [
        (timedelta(days=1, hours=2, minutes=5), "1 d 2 h"),
        (timedelta(days=15), "15 d 0 h"),
        (timedelta(hours=3, minutes=7, seconds=59), "3 h 7 min"),
        (timedelta(minutes=4), "0 h 4 min"),
        (timedelta(0), "0 h 0 min"),
        (-timedelta(hours=1, minutes=30), "overdue by 1 h 30 min"),
        (-timedelta(days=2, hours=1), "overdue by 2 d 1 h"),
    ],
)
def test_format_left(left: timedelta, text: str) -> None:
    assert format_left(left) == text


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


# -- 7. stage and review ------------------------------------------------------------------------


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


def test_an_unknown_system_is_one_finding_against_a_4_2_and_a_6_2_6() -> None:
    finding = inventory_finding("shadow-scorer", INC, T0)
    assert finding.id == "inventory:shadow-scorer" == inventory_finding("shadow-scorer", "other", T0).id
    assert (finding.source, finding.source_ref, finding.status) == ("inventory", INC, "open")
    assert finding.controls == list(INVENTORY_CONTROLS) == ["A.4.2", "A.6.2.6"]
    assert "'shadow-scorer'" in finding.description and INC in finding.description


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
