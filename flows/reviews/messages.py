"""What a review's attendees are told when an incident joins it after its pack was gathered. Pure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo

from flows.text import jira_text, mrkdwn
from schemas.records import Incident, ManagementReview


def _joined_facts(
    review: ManagementReview, incident: Incident, zone: tzinfo, escape: Callable[[str], str]
) -> tuple[str, str]:
    meeting = (
        f"{review.meeting_at.astimezone(zone):%Y-%m-%d %H:%M %Z}" if review.meeting_at else "to be fixed"
    )
    criteria = escape(", ".join(incident.criteria))
    serious = f"serious incident (Art. 73: {criteria})" if incident.serious else "incident"
    # The issue key is Jira's own (PROJ-N), not event text: left as is, Jira links it.
    issue = f"; Jira {incident.jira_issue}" if incident.jira_issue else ""
    what = (
        f"{serious} {escape(incident.id)} on {escape(incident.system)}: {escape(incident.title)} "
        f"(severity {incident.severity.value}{issue})"
    )
    return meeting, what


def joined_review_text(review: ManagementReview, incident: Incident, zone: tzinfo) -> str:
    """Slack mrkdwn, to each attendee: a further incident is on the agenda of a prepared review."""
    meeting, what = _joined_facts(review, incident, zone, mrkdwn)
    return (
        f"📌 A further incident joined management review {mrkdwn(review.id)} (meeting {meeting}): {what}. "
        "It joined after the review pack was gathered, so the pack's reason and agenda do not name it; "
        "the review's reason in the register does."
    )


def joined_review_comment(review: ManagementReview, incident: Incident, zone: tzinfo) -> str:
    """Jira wiki markup, on the review's issue: the same news, for whoever reads the agenda there."""
    meeting, what = _joined_facts(review, incident, zone, jira_text)
    return (
        f"AIMS: a further incident joined this review (meeting {meeting}): {what}. It joined after the "
        "review pack was gathered, so the pack's reason and the agenda above do not name it."
    )
