"""The calendar of management reviews (9.3): meeting times, the preparation schedule, invitations.

Ordinary reviews meet on `meeting.day` of `meeting.first_month` and of every `cadence.months` month
after it, at `meeting.time` in `meeting.timezone` (wall-clock time: daylight saving is followed).
Each review's pack is prepared `lead_time_days` calendar days before its meeting, at the same local
time of day. An extraordinary review meets `extraordinary.notice_days` after it was requested.

The Prefect deployment `hold-management-review` runs on `schedule(policy.management_review)`, an
RFC 5545 recurrence rule whose occurrences are exactly those preparation times; each run finds the
meeting it prepares with `meeting_for`. The meeting day is at most 28 and the policy keeps
`lead_time_days < meeting.day + 28`, so the preparation day always falls in the meeting's month
(`BYMONTHDAY=day - lead`) or in the month before, counted from that month's end
(`BYMONTHDAY=-(lead - day + 1)`): one monthly rule, exact whatever the months' lengths.

Pure functions, nothing heavy at import: icalendar (~200 ms), dateutil and Prefect are imported by
the functions that need them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from icalendar import vText

    from schemas.review_policy import ManagementReview

__all__ = [
    "ANCHOR_YEAR",
    "PRODID",
    "extraordinary_meeting",
    "invitation",
    "meeting_for",
    "meeting_slots",
    "preparation_rrule",
]

# The recurrence starts with the preparation for the first meeting of this year: in the past for any
# run, the same for every deployment of the same policy (a redeploy changes nothing), and cheap for
# dateutil to walk (one occurrence per cadence, a few dozen a decade). Prefect anchors undated rules
# in 2020 too.
ANCHOR_YEAR = 2020
PRODID = "-//aims//management review//EN"
# A run prepares the first meeting at or after its time + lead_time_days - this: runs a little late
# or early (up to half a day) still prepare their own meeting.
TOLERANCE = timedelta(hours=12)

# RFC 5545 3.3.11: TEXT excludes control characters but HTAB (line breaks are escaped as \n).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _aware(moment: datetime, name: str) -> datetime:
    """`moment` as a plain `datetime` in UTC; ValueError if it is naive.

    Prefect hands out pendulum-based datetimes (`runtime.flow_run.scheduled_start_time`), whose
    arithmetic in a zoneinfo zone silently drops the zone: everything here computes on plain ones.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    utc = moment.astimezone(UTC)
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=UTC
    )


def _slot(review: ManagementReview, month_index: int) -> datetime:
    """The meeting in month `month_index` (year * 12 + month - 1), aware in the policy's zone."""
    meeting = review.meeting
    year, month = divmod(month_index, 12)
    return datetime.combine(date(year, month + 1, meeting.day), meeting.clock, tzinfo=meeting.zone)


def meeting_slots(review: ManagementReview, after: datetime, count: int) -> list[datetime]:
    """The next `count` ordinary meetings at or after `after`, aware in the policy's time zone."""
    threshold = _aware(after, "after")
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    step = review.cadence.months
    first = review.meeting.first_month - 1
    local = threshold.astimezone(review.meeting.zone)
    month = local.year * 12 + local.month - 1
    month -= (month - first) % step  # the latest meeting month not after `after`'s month
    slots: list[datetime] = []
    while len(slots) < count:
        slot = _slot(review, month)
        if slot.astimezone(UTC) >= threshold:  # compared as instants, whatever the zones
            slots.append(slot)
        month += step
    return slots


def preparation_rrule(review: ManagementReview) -> tuple[str, str]:
    """The RFC 5545 rule of the preparation runs, and the IANA time zone it is local to.

    Every occurrence is `lead_time_days` calendar days before a meeting, at the meeting's local time,
    one per meeting. DTSTART is floating (local to the zone), as Prefect expects: it labels it with
    the schedule's time zone. It is the preparation of the first meeting of ANCHOR_YEAR, so it is an
    occurrence itself (RFC 5545 counts DTSTART as the first) and the rule does not depend on today.
    """
    meeting = review.meeting
    lead, day, step = review.lead_time_days, meeting.day, review.cadence.months
    if lead < day:
        by_month_day = day - lead
    elif lead < day + 28:
        by_month_day = day - lead - 1  # counted back from the end of the month before the meeting
    else:  # the policy refuses it; a model built without validation must not get a wrong schedule
        raise ValueError(f"lead_time_days {lead} must be less than meeting.day + 28 ({day + 28})")
    first = _slot(review, ANCHOR_YEAR * 12 + (meeting.first_month - 1) % step)  # the year's first
    start = datetime.combine(first.date() - timedelta(days=lead), meeting.clock)
    rule = f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:FREQ=MONTHLY;INTERVAL={step};BYMONTHDAY={by_month_day}"
    return rule, meeting.timezone


def meeting_for(review: ManagementReview, prepared_at: datetime) -> datetime:
    """The ordinary meeting that a run scheduled at `prepared_at` prepares.

    The first meeting at or after `prepared_at + lead_time_days - 12 hours` (days counted on the
    policy zone's calendar): a run early, or up to 11 hours late (12 less a clock change), still finds
    its meeting. Pass the run's scheduled time, not the time it started, and a worker that was down
    for a day still prepares the meeting it was scheduled for.
    """
    local = _aware(prepared_at, "prepared_at").astimezone(review.meeting.zone)
    # Arithmetic on an aware datetime in one zone is wall-clock arithmetic: 14 days after 10:00 is
    # 10:00 again, across a change of daylight saving time.
    target = local + timedelta(days=review.lead_time_days) - TOLERANCE
    return meeting_slots(review, target, 1)[0]


def extraordinary_meeting(review: ManagementReview, requested_at: datetime) -> datetime:
    """The meeting of an extraordinary review requested at `requested_at`: `notice_days` later
    (on the policy zone's calendar) at the meeting time, aware in the policy's zone."""
    meeting = review.meeting
    day = _aware(requested_at, "requested_at").astimezone(meeting.zone).date() + timedelta(
        days=review.extraordinary.notice_days
    )
    return datetime.combine(day, meeting.clock, tzinfo=meeting.zone)


def _clean(text: str) -> str:
    """`text` as RFC 5545 TEXT can hold it: line breaks as \\n, other control characters dropped."""
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def invitation(
    *,
    uid: str,
    summary: str,
    description: str,
    start: datetime,
    minutes: int,
    organizer: tuple[str, str],
    attendees: Sequence[tuple[str, str, str]],
    sequence: int = 0,
    stamp: datetime,
) -> bytes:
    """An RFC 5545 meeting request (METHOD:REQUEST) with one event, as bytes (UTF-8, CRLF, folded).

    Times are written in UTC, so no VTIMEZONE is needed. `organizer` and each attendee are
    (name, email[, role]); the AIMS role has no place in an ATTENDEE (RFC 5545 ROLE is the role in
    the meeting), so every attendee is a required participant asked to reply. An email listed twice
    (in any case) is invited once. Send a changed meeting with the same `uid` and a higher
    `sequence`. The same arguments give the same bytes.
    """
    from icalendar import Calendar, Event, vCalAddress

    if not uid.strip():
        raise ValueError("uid must not be empty")
    if minutes < 1:
        raise ValueError(f"minutes must be positive, got {minutes}")
    if sequence < 0:
        raise ValueError(f"sequence must not be negative, got {sequence}")
    begin = _aware(start, "start")

    text = _text_class()

    def address(name: str, email: str, **params: str) -> vCalAddress:
        value = vCalAddress(f"mailto:{email}")
        value.params.update({"CN": _clean(name), **params})
        return value

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "REQUEST")
    event = Event()
    event.add("uid", text(_clean(uid)))
    event.add("dtstamp", _aware(stamp, "stamp"))
    event.add("dtstart", begin)
    event.add("dtend", begin + timedelta(minutes=minutes))
    event.add("summary", text(_clean(summary)))
    event.add("description", text(_clean(description)))
    event.add("organizer", address(*organizer))
    seen: set[str] = set()
    for name, email, *_role in attendees:
        if email.casefold() in seen:
            continue
        seen.add(email.casefold())
        event.add(
            "attendee",
            address(name, email, ROLE="REQ-PARTICIPANT", PARTSTAT="NEEDS-ACTION", RSVP="TRUE"),
        )
    event.add("sequence", sequence)
    event.add("status", "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical()


@functools.cache
def _text_class() -> type[vText]:
    from icalendar import vText

    class Text(vText):
        """TEXT escaped as RFC 5545 3.3.11 says. icalendar's own escaping first turns a literal
        backslash-N into a line break: 'C:\\New' came back as 'C:' and a line 'ew'."""

        def to_ical(self) -> bytes:
            text = str(self).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            return text.replace("\n", "\\n").encode("utf-8")

    return Text
