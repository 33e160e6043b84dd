"""The policy's management review (9.3): cadence, attendees, the meeting, extraordinary reviews."""

from __future__ import annotations

import datetime as dt
import functools
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictInt,
    model_validator,
)

from schemas.payloads import Name, Severity

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

from schemas.policy_base import Email, JiraProject, PolicyModel, fail, problem

# -- management review (9.3) ----------------------------------------------------------------------


class ReviewCadence(StrEnum):
    """How often ordinary management reviews are held (calendar-based, not cron: reviews are meetings)."""

    monthly = "monthly"
    quarterly = "quarterly"
    semiannual = "semiannual"
    annual = "annual"

    @property
    def months(self) -> int:
        return {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}[self.value]


class Attendee(PolicyModel):
    name: Name = Field(description="Full name.")
    email: Email = Field(description="Where invitations and the review pack go.")
    role: Name = Field(description="Role in the AIMS, e.g. 'AIMS owner' or 'CISO'.")


def _check_attendees(attendees: tuple[Attendee, ...]) -> tuple[Attendee, ...]:
    emails = [a.email.casefold() for a in attendees]
    fail(
        "attendees",
        [
            ((i, "email"), f"{attendees[i].email!r} is listed twice")
            for i, e in enumerate(emails)
            if e in emails[:i]
        ],
    )
    return attendees


# Names zoneinfo knows that are not IANA zones a schedule can use ('localtime' is the host's own
# setting; Prefect refuses 'Factory').
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def time_zones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES)


def _check_time_zone(name: str) -> str:
    import zoneinfo

    zones = time_zones()
    if name in zones:
        try:
            zoneinfo.ZoneInfo(name)
            return name
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    close = [z for z in zones if z.casefold() == name.casefold()]
    hint = f"did you mean {close[0]!r}?" if close else "use an IANA name such as 'Europe/Berlin' or 'UTC'"
    raise problem(f"unknown time zone {name!r}: {hint}")


def _check_clock(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Unquoted, YAML 1.1 reads 10:00 as the sexagesimal number 600 (and 09:30 as text): say so.
        if isinstance(value, int) and 60 <= value < 24 * 60:
            hour, minute = divmod(value, 60)
            raise problem(
                f"YAML reads an unquoted {hour}:{minute:02d} as the number {value}: "
                f'quote the time, e.g. "{hour:02d}:{minute:02d}"'
            )
        raise problem(f'{value} is not a time of day: write 24-hour HH:MM in quotes, e.g. "10:00"')
    if isinstance(value, str) and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise problem(f'{value!r} is not a time of day: use 24-hour HH:MM, e.g. "10:00"')
    return value


Clock = Annotated[str, BeforeValidator(_check_clock), Field(description="Local time of day, 24-hour HH:MM.")]
TimeZoneName = Annotated[str, AfterValidator(_check_time_zone), Field(description="IANA time zone name.")]


class ReviewMeeting(PolicyModel):
    """When ordinary reviews meet: a fixed day of the month, in first_month and every cadence after it."""

    day: StrictInt = Field(
        15, ge=1, le=28, description="Day of the month of the meeting (up to 28: every month has it)."
    )
    time: Clock = Field("10:00", description='Local start time, 24-hour "HH:MM" (quote it in YAML).')
    timezone: TimeZoneName = Field("UTC", description="IANA time zone of day and time, e.g. 'Europe/Berlin'.")
    duration_minutes: StrictInt = Field(120, ge=15, le=480, description="Length of the meeting.")
    first_month: StrictInt = Field(
        1,
        ge=1,
        le=12,
        description="Month (1-12) of the first meeting of the year; the others follow every cadence "
        "months, e.g. quarterly from 1: January, April, July, October.",
    )

    @property
    def clock(self) -> dt.time:
        """The start time as a `datetime.time` (naive: it is local to `timezone`)."""
        hour, minute = self.time.split(":")
        return dt.time(int(hour), int(minute))

    @property
    def zone(self) -> ZoneInfo:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


class ExtraordinaryReview(PolicyModel):
    incidents: StrictInt = Field(3, ge=1, le=1000, description="This many incidents …")
    within_days: StrictInt = Field(30, ge=1, le=365, description="… within this many days …")
    min_severity: Severity = Field(Severity.high, description="… of at least this severity call a review.")
    notice_days: StrictInt = Field(
        7,
        ge=1,
        le=60,
        description="An extraordinary review is prepared at once; it meets this many days after it was "
        "requested, at meeting.time.",
    )


class ManagementReview(PolicyModel):
    cadence: ReviewCadence = Field(ReviewCadence.quarterly, description="Ordinary review frequency.")
    lead_time_days: StrictInt = Field(
        14,
        ge=1,
        le=90,
        description="Days before a review at which its pack is prepared and sent; shorter than the "
        "cadence, and less than meeting.day + 28 (the pack is prepared in the meeting's month or the one "
        "before).",
    )
    meeting: ReviewMeeting = Field(
        default_factory=ReviewMeeting, description="Day, time, time zone and length of ordinary meetings."
    )
    attendees: Annotated[tuple[Attendee, ...], AfterValidator(_check_attendees)] = Field(
        min_length=1, description="Who is invited (top management); the first one organises (chairs)."
    )
    jira_project: JiraProject | None = Field(
        None, description="Jira project for review issues; None (the default) means incidents.jira_project."
    )
    extraordinary: ExtraordinaryReview = Field(
        default_factory=ExtraordinaryReview, description="When incidents call an extraordinary review."
    )

    @model_validator(mode="after")
    def _lead_time_fits(self) -> ManagementReview:
        lead, day = self.lead_time_days, self.meeting.day
        if lead >= self.cadence.months * 28:
            fail("review", [(("lead_time_days",), f"must be shorter than the {self.cadence} cadence")])
        if lead >= day + 28:
            # Prepared that early, the pack would fall two months before the meeting in some months
            # and one in others: no calendar rule could name the day.
            later = f", or move meeting.day to {lead - 27} or later" if lead - 27 <= 28 else ""
            message = (
                f"{lead} days before day {day} of the month is more than a month ahead: make "
                f"lead_time_days at most {day + 27}{later}"
            )
            fail("review", [(("lead_time_days",), message)])
        return self
