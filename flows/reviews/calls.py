"""What an incident calls for beyond itself: an extraordinary management review (9.3). Pure: no I/O.

A serious incident, or repeated ones, call an extraordinary review; while one is requested and not
yet held, later incidents join it instead of calling another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flows.reviews.calendar import extraordinary_meeting
from flows.reviews.commands import is_open
from schemas.policy import Policy
from schemas.records import Incident, ManagementReview

# -- consequences -------------------------------------------------------------------------------


def review_reason(incident: Incident, recent: Sequence[Incident], policy: Policy) -> str | None:
    """Why this incident calls an extraordinary management review, if it does.

    `recent` are the register's incidents (this one may be among them); repeated incidents count
    when at least the policy's number of them, of at least its severity, were detected within its
    window up to this one.
    """
    if incident.serious:
        return f"serious incident {incident.id} on {incident.system} ({', '.join(incident.criteria)})"
    rule = policy.management_review.extraordinary
    if incident.severity.rank < rule.min_severity.rank:
        return None
    since = incident.detected_at - timedelta(days=rule.within_days)
    ids = {
        i.id
        for i in recent
        if since <= i.detected_at <= incident.detected_at and i.severity.rank >= rule.min_severity.rank
    }
    ids.add(incident.id)
    if len(ids) >= rule.incidents:
        return (
            f"{len(ids)} incidents of severity {rule.min_severity.value} or above within"
            f" {rule.within_days} days, the latest {incident.id} on {incident.system}"
        )
    return None


# -- joining the extraordinary review that is not yet held -------------------------------------


def incident_trigger(incident_id: str) -> str:
    return f"incident:{incident_id}"


def review_triggers(review: ManagementReview) -> list[str]:
    """Everything that called the review, the first first.

    Reviews recorded before `triggers` existed (migration 0009) have their one `trigger`.
    """
    if review.triggers:
        return list(review.triggers)
    return [review.trigger] if review.trigger else []


def late_triggers(review: ManagementReview) -> list[str]:
    """Triggers that joined the review after its pack was gathered: the pack does not show them.

    A review prepared before `pack_triggers` existed covered its first trigger only (nothing joined
    reviews then).
    """
    if review.prepared_at is None:
        return []
    covered = set(review.pack_triggers or review_triggers(review)[:1])
    return [t for t in review_triggers(review) if t not in covered]


def meeting_of(review: ManagementReview, policy: Policy) -> datetime:
    """When the review meets: fixed once hold-management-review took it up; until then the time that
    flow will fix (`extraordinary.notice_days` after the request)."""
    if review.meeting_at is not None:
        return review.meeting_at
    return extraordinary_meeting(policy.management_review, review.created_at)


def not_yet_held(review: ManagementReview, at: datetime, policy: Policy) -> bool:
    """An extraordinary review that a later incident joins rather than calling another.

    "Requested and not yet held" means, at `at`:
    - extraordinary (a scheduled review keeps its own agenda and cadence);
    - open: status requested, planned or prepared (`review_results.OPEN_STATUSES`), so no results
      have closed it; and
    - its meeting is still ahead: `meeting_at` is after `at`, or, for a request whose pack is not
      gathered yet (`meeting_at` unset), the meeting hold-management-review will fix is.
    A prepared review whose meeting has passed but whose results are not recorded yet *was* held: an
    incident after it calls a new review, since no meeting is left to discuss it at.
    """
    return review.kind == "extraordinary" and is_open(review) and meeting_of(review, policy) > at


def review_to_join(
    reviews: Iterable[ManagementReview], at: datetime, policy: Policy
) -> ManagementReview | None:
    """The review not yet held that an incident joins: the soonest meeting when (say, after people
    requested one too) several wait; none when none does."""
    waiting = [r for r in reviews if not_yet_held(r, at, policy)]
    return min(waiting, key=lambda r: (meeting_of(r, policy), r.created_at, r.id), default=None)


@dataclass(frozen=True)
class ReviewCall:
    """What an incident does about an extraordinary review: join `joins`, or request a new one."""

    reason: str
    trigger: str
    kind: str  # serious | repeated: what called it
    joins: ManagementReview | None = None


def review_call(
    incident: Incident,
    recent: Sequence[Incident],
    reviews: Sequence[ManagementReview],
    policy: Policy,
    at: datetime,
    *,
    join: bool = True,
) -> ReviewCall | None:
    """What this incident does about an extraordinary review at `at`; None when it calls none.

    Once per trigger: an incident already recorded on a review calls nothing again. A review not yet
    held is joined (`join=False` asks only whether a new one would be called). Otherwise a serious
    incident requests a new review; repeated incidents request one per `within_days` window: none
    while a review they called (or joined) was requested within it.
    """
    reason = review_reason(incident, recent, policy)
    trigger = incident_trigger(incident.id)
    if reason is None or any(trigger in review_triggers(r) for r in reviews):
        return None
    kind = "serious" if incident.serious else "repeated"
    joins = review_to_join(reviews, at, policy) if join else None
    if joins is None and not incident.serious and _repeated_called_within(recent, reviews, policy, at):
        return None
    return ReviewCall(reason, trigger, kind, joins)


def _repeated_called_within(
    recent: Sequence[Incident], reviews: Sequence[ManagementReview], policy: Policy, at: datetime
) -> bool:
    """Did repeated incidents call (or join) a review requested within the policy's window?

    A non-serious incident calls a review only through the repeated-incidents rule, so a review
    with one among its triggers is one they called.
    """
    window = timedelta(days=policy.management_review.extraordinary.within_days)
    not_serious = {incident_trigger(i.id) for i in recent if not i.serious}
    return any(
        r.kind == "extraordinary"
        and at - r.created_at < window
        and (r.id.startswith("extraordinary:repeated:") or not_serious & set(review_triggers(r)))
        for r in reviews
    )


def requested_review(
    incident: Incident, call: ReviewCall, at: datetime, requested_by: str
) -> ManagementReview:
    """The new review an incident requests: its id names what called it, so a redelivery finds it."""
    return ManagementReview(
        id=f"extraordinary:{call.kind}:{incident.id}",
        kind="extraordinary",
        reason=call.reason,
        status="requested",
        created_at=at,
        trigger=call.trigger,
        triggers=[call.trigger],
        requested_by=requested_by,
    )


def joined(review: ManagementReview, call: ReviewCall) -> dict[str, Any]:
    """The changes that record a further incident on the review: its reason and its trigger."""
    return {"reason": f"{review.reason}; {call.reason}", "triggers": [*review_triggers(review), call.trigger]}
