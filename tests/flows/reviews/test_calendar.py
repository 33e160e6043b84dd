"""The management-review calendar: meeting slots, the preparation rule Prefect runs on, invitations.

The preparation rule is checked against the meetings it prepares: expanded with dateutil (as Prefect
does), every occurrence is exactly lead_time_days calendar days before a meeting, at the meeting's
local time, one occurrence per meeting, over decades of month lengths, leap years and daylight saving.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrule, rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from flows.reviews.calendar import (
    ANCHOR_YEAR,
    PRODID,
    extraordinary_meeting,
    invitation,
    meeting_for,
    meeting_slots,
    preparation_rrule,
)
from schemas.policy_file import load_policy
from schemas.review_policy import ManagementReview, ReviewCadence
from tests.resources import EXAMPLE_POLICY


def schedule(review: ManagementReview) -> Any:
    # Imported when used: importing Prefect at collection would fix its settings before the session
    # stack points them at its server (tests/conftest.py).
    from flows.reviews.hold_management_review import schedule as prefect_schedule

    return prefect_schedule(review)


EXAMPLE = EXAMPLE_POLICY
PROPERTY = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
BERLIN = ZoneInfo("Europe/Berlin")
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham"]
YEARS = 24  # meetings checked from ANCHOR_YEAR on: every month length, six leap Februaries


def review(
    cadence: str = "quarterly",
    lead: int = 14,
    day: int = 15,
    first_month: int = 1,
    zone: str = "UTC",
    at: str = "10:00",
    notice: int = 7,
) -> ManagementReview:
    return ManagementReview.model_validate(
        {
            "cadence": cadence,
            "lead_time_days": lead,
            "meeting": {"day": day, "time": at, "timezone": zone, "first_month": first_month},
            "attendees": [{"name": "Ann Chair", "email": "ann@example.org", "role": "CRO"}],
            "extraordinary": {"notice_days": notice},
        }
    )


def meetings(settings_: ManagementReview) -> list[datetime]:
    """Every meeting of YEARS years from the anchor year on."""
    start = datetime(ANCHOR_YEAR, 1, 1, tzinfo=settings_.meeting.zone)
    return meeting_slots(settings_, start, YEARS * 12 // settings_.cadence.months)


def expand(settings_: ManagementReview, n: int) -> list[datetime]:
    """The first n occurrences of the rule, as dateutil reads it (naive: wall-clock, local to the zone)."""
    rule, _zone = preparation_rrule(settings_)
    parsed = rrulestr(rule)
    assert isinstance(parsed, rrule)
    return list(islice(parsed, n))


def expected_runs(settings_: ManagementReview, slots: list[datetime]) -> list[datetime]:
    """lead_time_days calendar days before each meeting, at its local time (naive, local)."""
    return [s.replace(tzinfo=None) - timedelta(days=settings_.lead_time_days) for s in slots]


def assert_rule_prepares_every_meeting(settings_: ManagementReview) -> None:
    slots = meetings(settings_)
    runs = expand(settings_, len(slots) + 1)
    # One run per meeting, in order, each exactly lead days before; the next run is for the next meeting.
    assert runs[:-1] == expected_runs(settings_, slots)
    assert runs[-1] > slots[-1].replace(tzinfo=None) - timedelta(days=settings_.lead_time_days)
    assert all(run.time() == settings_.meeting.clock for run in runs)


def prefect_dates(settings_: ManagementReview, start: datetime, n: int) -> list[datetime]:
    """The next n runs as the Prefect server computes them from the deployment's schedule."""
    from prefect.server.schemas.schedules import RRuleSchedule as ServerRRuleSchedule

    served = ServerRRuleSchedule(**schedule(settings_).model_dump())
    return list(asyncio.run(served.get_dates(n=n, start=start)))


# -- the preparation rule -------------------------------------------------------------------------

TABLE = [
    # (day, lead, first_month, zone)
    (15, 14, 1, "UTC"),  # the shipped example: the 1st of the month
    (1, 1, 1, "UTC"),  # the last day of the month before: 31 December, 28/29 February ...
    (10, 10, 3, "Europe/Berlin"),  # lead == day: the month before's last day, 29 Feb in leap years
    (1, 27, 3, "Europe/Berlin"),  # 27 days before 1 March: 2 or 3 February
    (28, 27, 1, "Europe/Berlin"),  # same month, the 1st
    (28, 1, 12, "America/New_York"),
    (5, 14, 4, "Europe/Berlin"),  # 22 March for 5 April: across the start of summer time
    (12, 20, 11, "Europe/Berlin"),  # 23 October for 12 November: across the end of summer time
    (3, 30, 2, "Australia/Sydney"),  # 3 February for 5 March (29 days in leap years: 4 February)
]


# Every cadence with every row, but a lead time as long as the cadence (the policy refuses it).
CASES = [(c, *row) for c in ReviewCadence for row in TABLE if row[1] < c.months * 28]


@pytest.mark.parametrize(("cadence", "day", "lead", "first_month", "zone"), CASES)
def test_each_run_is_lead_days_before_its_meeting(
    cadence: ReviewCadence, day: int, lead: int, first_month: int, zone: str
) -> None:
    assert_rule_prepares_every_meeting(review(cadence.value, lead, day, first_month, zone))


def test_the_rule_of_the_shipped_example() -> None:
    settings_ = load_policy(EXAMPLE).management_review
    rule, zone = preparation_rrule(settings_)
    assert (rule, zone) == (
        "DTSTART:20200101T100000\nRRULE:FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1",
        settings_.meeting.timezone,
    )
    assert_rule_prepares_every_meeting(settings_)


@pytest.mark.parametrize(
    ("settings_", "rule"),
    [
        (review("monthly", 10, 10), "DTSTART:20191231T100000\nRRULE:FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=-1"),
        (
            review("annual", 27, 1, 3),
            "DTSTART:20200203T100000\nRRULE:FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=-27",
        ),
        (
            review("semiannual", 3, 28, 6),
            "DTSTART:20200625T100000\nRRULE:FREQ=MONTHLY;INTERVAL=6;BYMONTHDAY=25",
        ),
    ],
)
def test_the_rule_reads_as_documented(settings_: ManagementReview, rule: str) -> None:
    assert preparation_rrule(settings_)[0] == rule


def test_leap_year_february() -> None:
    settings_ = review("annual", 1, 1, 3)  # meets on 1 March, prepared the day before
    runs = expand(settings_, 9)
    assert [run.date() for run in runs[:5]] == [
        date(2020, 2, 29),
        date(2021, 2, 28),
        date(2022, 2, 28),
        date(2023, 2, 28),
        date(2024, 2, 29),
    ]


@st.composite
def reviews(draw: st.DrawFn) -> ManagementReview:
    cadence = draw(st.sampled_from(list(ReviewCadence)))
    day = draw(st.integers(1, 28))
    lead = draw(st.integers(1, min(90, cadence.months * 28 - 1, day + 27)))
    at = f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 15, 30, 59])):02d}"
    return review(cadence.value, lead, day, draw(st.integers(1, 12)), draw(st.sampled_from(ZONES)), at)


@PROPERTY
@given(settings_=reviews())
def test_property_every_meeting_has_exactly_one_run_lead_days_before(settings_: ManagementReview) -> None:
    assert_rule_prepares_every_meeting(settings_)


@PROPERTY
@given(settings_=reviews(), late=st.integers(-6 * 60, 6 * 60))
def test_property_a_run_up_to_six_hours_off_prepares_its_meeting(
    settings_: ManagementReview, late: int
) -> None:
    zone = settings_.meeting.zone
    slots = meetings(settings_)
    for run, slot in zip(expand(settings_, len(slots)), slots, strict=True):
        # As Prefect hands it over: an instant in UTC, run `late` minutes after (or before) schedule.
        scheduled = run.replace(tzinfo=zone).astimezone(UTC)
        assert meeting_for(settings_, scheduled + timedelta(minutes=late)) == slot


# -- what Prefect makes of it ---------------------------------------------------------------------


@pytest.mark.parametrize(("cadence", "day", "lead", "first_month", "zone"), CASES)
def test_prefect_runs_the_schedule_at_the_meeting_time_lead_days_before(
    cadence: ReviewCadence, day: int, lead: int, first_month: int, zone: str
) -> None:
    from prefect._internal.schemas.validators import MAX_RRULE_LENGTH, normalize_rrule_string
    from prefect.client.schemas.schedules import RRuleSchedule

    settings_ = review(cadence.value, lead, day, first_month, zone)
    made = schedule(settings_)
    assert isinstance(made, RRuleSchedule)
    assert (made.rrule, made.timezone) == preparation_rrule(settings_)
    assert len(made.rrule) < MAX_RRULE_LENGTH
    assert normalize_rrule_string(made.rrule, timezone=zone) == made.rrule  # stored as it is
    start = datetime(2026, 1, 1, tzinfo=UTC)
    slots = meeting_slots(settings_, start + timedelta(days=lead), 24 // cadence.months * 3)
    dates = prefect_dates(settings_, start, len(slots))
    tz = settings_.meeting.zone
    # As instants: the meeting's local time, lead calendar days earlier (23 or 25 hours in a day
    # that changes the clocks are still one day).
    expected = [datetime.combine(s.date() - timedelta(days=lead), settings_.meeting.clock, tz) for s in slots]
    assert [d.astimezone(UTC) for d in dates] == [e.astimezone(UTC) for e in expected]
    assert [meeting_for(settings_, d) for d in dates] == slots


def test_summer_time_keeps_the_local_time() -> None:
    settings_ = review("monthly", 14, 5, 1, "Europe/Berlin")
    winter, summer, april = prefect_dates(settings_, datetime(2027, 2, 1, tzinfo=UTC), 3)
    # For 5 March, 5 April and 5 May: 10:00 in Berlin, winter time (UTC+1) until 28 March.
    assert [d.astimezone(UTC) for d in (winter, summer, april)] == [
        datetime(2027, 2, 19, 9, tzinfo=UTC),
        datetime(2027, 3, 22, 9, tzinfo=UTC),
        datetime(2027, 4, 21, 8, tzinfo=UTC),
    ]
    # Prepared on 22 March in winter time, the meeting of 5 April is in summer time: 14 days and
    # 10:00 both times, 13 days 23 hours apart as instants.
    assert meeting_for(settings_, summer) == datetime(2027, 4, 5, 10, tzinfo=BERLIN)
    assert meeting_for(settings_, summer).astimezone(UTC) - summer == timedelta(days=14, hours=-1)


def test_meeting_for_takes_prefects_own_datetimes() -> None:
    # runtime.flow_run.scheduled_start_time is pendulum-based; its arithmetic in a zoneinfo zone
    # would drop the zone.
    from prefect.types._datetime import DateTime

    settings_ = review("monthly", 14, 11, 1, "Europe/Berlin")
    scheduled = DateTime(2027, 3, 28, 8, 0, tzinfo=UTC)  # 10:00 summer time
    assert meeting_for(settings_, scheduled) == datetime(2027, 4, 11, 10, tzinfo=BERLIN)
    assert extraordinary_meeting(settings_, scheduled) == datetime(2027, 4, 4, 10, tzinfo=BERLIN)
    assert meeting_slots(settings_, scheduled, 1) == [datetime(2027, 4, 11, 10, tzinfo=BERLIN)]


# -- meeting slots, the meeting of a run, extraordinary meetings ----------------------------------


def test_meeting_slots_follow_first_month_and_cadence() -> None:
    settings_ = review("quarterly", 14, 15, 2, "Europe/Berlin")
    slots = meeting_slots(settings_, datetime(2027, 1, 1, tzinfo=UTC), 5)
    assert [(s.year, s.month, s.day, s.hour) for s in slots] == [
        (2027, 2, 15, 10),
        (2027, 5, 15, 10),
        (2027, 8, 15, 10),
        (2027, 11, 15, 10),
        (2028, 2, 15, 10),
    ]
    assert all(s.tzinfo == BERLIN for s in slots)
    assert meeting_slots(settings_, slots[1], 1) == [slots[1]]  # at or after: a slot itself counts
    assert meeting_slots(settings_, slots[1] + timedelta(microseconds=1), 1) == [slots[2]]
    assert meeting_slots(settings_, slots[1], 0) == []
    # 08:00 UTC is 10:00 summer time: `after` is an instant, whatever its zone.
    assert meeting_slots(settings_, datetime(2027, 5, 15, 8, 0, 1, tzinfo=UTC), 1) == [slots[2]]


def test_naive_times_are_refused() -> None:
    settings_ = review()
    for call in (
        lambda: meeting_slots(settings_, datetime(2027, 1, 1), 1),
        lambda: meeting_for(settings_, datetime(2027, 1, 1)),
        lambda: extraordinary_meeting(settings_, datetime(2027, 1, 1)),
    ):
        with pytest.raises(ValueError, match="must be timezone-aware"):
            call()
    with pytest.raises(ValueError, match="count must not be negative"):
        meeting_slots(settings_, datetime(2027, 1, 1, tzinfo=UTC), -1)


def test_a_run_a_day_early_still_prepares_its_meeting() -> None:
    settings_ = review("quarterly", 14, 15, 1, "UTC")
    assert meeting_for(settings_, datetime(2027, 3, 31, 10, tzinfo=UTC)) == datetime(
        2027, 4, 15, 10, tzinfo=ZoneInfo("UTC")
    )


def test_extraordinary_meeting_is_notice_days_later_on_the_local_calendar() -> None:
    settings_ = review(zone="Europe/Berlin", notice=7, at="09:30")
    # 23:30 UTC on 22 March is already 23 March in Berlin.
    assert extraordinary_meeting(settings_, datetime(2027, 3, 22, 23, 30, tzinfo=UTC)) == datetime(
        2027, 3, 30, 9, 30, tzinfo=BERLIN
    )
    assert extraordinary_meeting(settings_, datetime(2027, 3, 22, 22, 30, tzinfo=UTC)) == datetime(
        2027, 3, 29, 9, 30, tzinfo=BERLIN
    )


def test_the_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, flows.reviews.calendar\n"
        "print(sorted(m for m in ('icalendar', 'prefect', 'dateutil') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- invitations ----------------------------------------------------------------------------------

START = datetime(2027, 4, 15, 10, tzinfo=BERLIN)
STAMP = datetime(2027, 4, 1, 8, 0, 5, tzinfo=UTC)
ATTENDEES = [
    ("Claire Dubois", "claire.dubois@northwind.example", "Chief Risk Officer (chair)"),
    ("Zoë Müller-Łukasiewicz, Ph.D.", "zoe@northwind.example", "AIMS owner"),
    ('Sam "Oak" Okafor; CTO: ^', "sam.okafor@northwind.example", "CTO"),
]


def make(**overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "uid": "scheduled:2027-04-15@aims",
        "summary": "Management review 2027-04-15 (ISO/IEC 42001 9.3)",
        "description": "1. Status of actions from previous reviews\n2. Changes in external issues",
        "start": START,
        "minutes": 90,
        "organizer": ("Claire Dubois", "claire.dubois@northwind.example"),
        "attendees": ATTENDEES,
        "stamp": STAMP,
    }
    return invitation(**(arguments | overrides))


def event_of(blob: bytes) -> Any:
    calendar = Calendar.from_ical(blob)
    [event] = calendar.walk("VEVENT")
    return event


def assert_rfc5545_lines(blob: bytes) -> None:
    assert blob.endswith(b"\r\n")
    lines = blob.split(b"\r\n")[:-1]
    for line in lines:
        assert b"\n" not in line and b"\r" not in line, line
        assert len(line) <= 75, (len(line), line)
        line.decode("utf-8")  # folding never splits a character


def test_the_invitation_is_a_meeting_request() -> None:
    blob = make()
    assert_rfc5545_lines(blob)
    calendar = Calendar.from_ical(blob)
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"]) == PRODID
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == "scheduled:2027-04-15@aims"
    assert event.decoded("DTSTART") == datetime(2027, 4, 15, 8, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2027, 4, 15, 9, 30, tzinfo=UTC)
    assert event.decoded("DTSTAMP") == STAMP
    for name in ("DTSTART", "DTEND", "DTSTAMP"):
        assert event[name].to_ical().endswith(b"Z"), name  # UTC: no VTIMEZONE needed
    assert b"\r\nDTSTART:20270415T080000Z\r\n" in blob
    assert str(event["SUMMARY"]) == "Management review 2027-04-15 (ISO/IEC 42001 9.3)"
    assert str(event["DESCRIPTION"]).splitlines()[1] == "2. Changes in external issues"
    assert int(event["SEQUENCE"]) == 0 and str(event["STATUS"]) == "CONFIRMED"
    organizer = event["ORGANIZER"]
    assert (str(organizer), organizer.params["CN"]) == (
        "mailto:claire.dubois@northwind.example",
        "Claire Dubois",
    )
    attendees = event["ATTENDEE"]
    assert [(str(a), a.params["CN"]) for a in attendees] == [(f"mailto:{e}", n) for n, e, _ in ATTENDEES]
    for attendee in attendees:
        params = {k: attendee.params[k] for k in ("ROLE", "PARTSTAT", "RSVP")}
        assert params == {"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}


def test_the_invitation_is_deterministic_and_sequenced() -> None:
    assert make() == make()
    later = event_of(make(sequence=2, start=START + timedelta(days=1)))
    assert int(later["SEQUENCE"]) == 2
    assert later.decoded("DTSTART") == datetime(2027, 4, 16, 8, tzinfo=UTC)


def test_an_email_listed_twice_is_invited_once() -> None:
    twice = [*ATTENDEES, ("Claire D.", "Claire.Dubois@northwind.example", "again")]
    assert [str(a) for a in event_of(make(attendees=twice))["ATTENDEE"]] == [
        f"mailto:{e}" for _, e, _ in ATTENDEES
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"start": datetime(2027, 4, 15, 10)}, "start must be timezone-aware"),
        ({"stamp": datetime(2027, 4, 1)}, "stamp must be timezone-aware"),
        ({"minutes": 0}, "minutes must be positive"),
        ({"sequence": -1}, "sequence must not be negative"),
        ({"uid": " "}, "uid must not be empty"),
    ],
)
def test_invitation_arguments_are_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_control_characters_are_dropped_and_line_breaks_normalised() -> None:
    event = event_of(make(summary="a\x00b\x07c\td", description="one\r\ntwo\rthree\nfour\x1b"))
    assert str(event["SUMMARY"]) == "abc\td"
    assert str(event["DESCRIPTION"]) == "one\ntwo\nthree\nfour"


def test_a_backslash_n_is_not_a_line_break() -> None:
    # icalendar's own escaping turns a literal \N into a line break.
    event = event_of(make(summary=r"C:\New folder\n", description="\\N\\\\N\\;,"))
    assert str(event["SUMMARY"]) == r"C:\New folder\n"
    assert str(event["DESCRIPTION"]) == "\\N\\\\N\\;,"


# Any text but surrogates and the control characters TEXT cannot hold (HTAB and line feed can).
text = st.text(
    st.one_of(
        st.characters(exclude_categories=("Cs", "Cc")),
        st.sampled_from([",", ";", "\\", "\n", "\t", ":", '"', "^", "N", "n", "é", "€", "𝄞", "\u2028"]),
    ),
    max_size=400,
)
# A parameter value (CN) is written as RFC 5545 and RFC 6868 say, where a backslash is just a
# character; icalendar's reader takes it for an escape ('CN=\\:mailto:…' reads as ':mailto'). Names
# with backslashes are left out: the reader, not the invitation, gets them wrong.
names = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\\"), min_size=1, max_size=120
)


@PROPERTY
@given(summary=text, description=text, name=names)
def test_property_text_survives_a_round_trip(summary: str, description: str, name: str) -> None:
    blob = make(
        summary=summary,
        description=description,
        organizer=(name, "chair@example.org"),
        attendees=[(name, "chair@example.org", "Chair"), *ATTENDEES[1:]],
    )
    assert_rfc5545_lines(blob)
    event = event_of(blob)
    assert str(event["SUMMARY"]) == summary
    assert str(event["DESCRIPTION"]) == description
    assert event["ORGANIZER"].params["CN"] == name
    assert [a.params["CN"] for a in event["ATTENDEE"]] == [name, *(n for n, _, _ in ATTENDEES[1:])]


def test_the_start_is_always_written_in_utc() -> None:
    for zone in ZONES:
        start = datetime(2027, 7, 1, 9, 15, tzinfo=ZoneInfo(zone))
        assert event_of(make(start=start)).decoded("DTSTART") == start.astimezone(UTC)


def test_the_meeting_clock_and_zone() -> None:
    meeting = review(at="07:05", zone="Europe/Berlin").meeting
    assert (meeting.clock, meeting.zone) == (time(7, 5), BERLIN)


def test_every_zone_the_policy_accepts_prefect_accepts() -> None:
    from prefect.client.schemas.schedules import is_valid_timezone

    from schemas.review_policy import time_zones

    zones = time_zones()
    assert {"UTC", "Europe/Berlin", "America/New_York"} <= zones
    assert [z for z in sorted(zones) if not is_valid_timezone(z)] == []
