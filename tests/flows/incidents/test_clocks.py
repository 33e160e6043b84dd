"""The Art. 73 clock: calendar-day arithmetic, reminders that fire once and in order, time left."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.incidents.clocks import ClockDue, clock, clock_plan, format_left, time_left
from flows.incidents.rules import triage
from flows.notices import notice_id
from schemas.payloads import Art73Criterion, IncidentCategory, Severity
from schemas.policy import Art73Clock
from schemas.records import Incident
from tests.flows.incidents.incident_samples import (
    ART73,
    MINOR,
    POLICY,
    SERIOUS,
    T0,
    C,
    incident,
    reported,
    triaged,
)

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
