"""Record a management review's results (9.3.3) on one verified path, from the CLI or from Jira.

Only the policy's attendees (top management) record decisions and actions and close the review; an
action's owner may also mark it done. Each attempt is a `review_result` row, accepted or refused with
the reason, so the record of who decided what is complete. Attempts are keyed by their content: a
redelivered Jira webhook or a repeated command is a duplicate, not a second decision.

Both channels send a `RecordReviewResults` command through `flows.commands.handle`; its handler
(`record_results`) submits each result in one unit of work.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from flows.commands import Command, Context, Verdict, handles
from schemas.records import ManagementReview, ReviewAction, ReviewResult

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas.policy import Policy


class ResultKind(StrEnum):
    decision = "decision"
    action = "action"
    action_done = "action-done"
    action_dropped = "action-dropped"
    close = "close"


# The label hold-management-review puts on every review's Jira issue: the gateway dispatches by it.
ISSUE_LABEL = "aims-review"
OPEN_STATUSES = frozenset({"requested", "planned", "prepared"})
ACTION_REF = re.compile(r"^(?P<review>.+)/A(?P<n>[1-9][0-9]*)$")


@dataclass(frozen=True)
class Result:
    review_id: str
    kind: ResultKind
    by: str
    channel: str
    text: str = ""
    owner: str | None = None
    due: date | None = None
    action_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, kw_only=True)
class RecordReviewResults(Command):
    """The results of a management review someone states at once (a Jira comment holds several;
    the CLI one). Each result names the command's actor as its author."""

    review_id: str
    results: tuple[Result, ...]

    def describe(self) -> str:
        return f"{len(self.results)} result(s) of review {self.review_id}"


@handles(RecordReviewResults)
def record_results(command: RecordReviewResults, ctx: Context) -> Verdict:
    """The handler: every result submitted in one unit of work; one verdict, one part per result.

    Accepted when every new result was, refused when one was, duplicate when none was new, ignored
    when the command states none.
    """
    if not command.results:
        return Verdict("ignored", "no result stated")
    with ctx.register.unit_of_work(command.actor.label) as uow:
        parts = tuple(submit(uow, ctx.policy, result) for result in command.results)
    fresh = [p for p in parts if not p.duplicate]
    if not fresh:
        return Verdict("duplicate", parts[-1].message, parts=parts)
    reasons = tuple(p.message for p in fresh if p.refused)
    return Verdict(
        "refused" if reasons else "accepted",
        "; ".join(p.message for p in fresh),
        reasons,
        ref=fresh[-1].ref,
        parts=parts,
    )


def result_id(result: Result) -> str:
    content = "\x1f".join(
        [result.kind, result.text.strip(), result.owner or "", str(result.due or ""), result.action_id or ""]
    )
    return f"{result.review_id}:{result.kind}:{hashlib.sha256(content.encode()).hexdigest()[:16]}"


def attendee_emails(policy: Policy) -> frozenset[str]:
    return frozenset(a.email.casefold() for a in policy.management_review.attendees)


def check(uow: UnitOfWork, policy: Policy, result: Result) -> str | None:
    """Why this result is refused, or None when it may be recorded."""
    review = uow.reviews.get(result.review_id)
    if review is None:
        return f"no management review {result.review_id!r}; `aims review list` shows them"
    is_attendee = result.by.casefold() in attendee_emails(policy)
    if result.kind in (ResultKind.action_done, ResultKind.action_dropped):
        action = uow.review_actions.get(result.action_id) if result.action_id else None
        if action is None:
            return f"no review action {result.action_id!r}"
        if action.status != "open":
            return f"action {action.id} is {action.status} already"
        owner = action.owner.casefold() == result.by.casefold()
        if not is_attendee and not (owner and result.kind is ResultKind.action_done):
            return f"{result.by} is neither an attendee of management reviews nor the action's owner"
        return None
    if not is_attendee:
        return f"{result.by} is not an attendee of management reviews (policy management_review.attendees)"
    if review.status not in OPEN_STATUSES:
        return f"review {review.id} is {review.status}: its results are final"
    if result.kind is ResultKind.close:
        if not review.results and not uow.review_actions.count(review_id=review.id):
            return "no decision or action is recorded yet: a review stays open until its results are"
        return None
    if not result.text.strip():
        return f"a {result.kind} needs its text"
    if result.kind is ResultKind.action:
        if not result.owner or not result.owner.strip():
            return "an action needs an owner"
        if result.due is None:
            return "an action needs a due date"
        if result.due < result.at.date():
            return f"due date {result.due} is in the past"
    return None


def submit(uow: UnitOfWork, policy: Policy, result: Result) -> Verdict:
    """Record the attempt, and apply it when it is accepted; all in the caller's unit of work.
    The verdict's `record` is the result's id; `ref` the action it made or names."""
    key = result_id(result)
    if uow.review_results.get(key) is not None:
        return Verdict("duplicate", "already recorded", record=key, ref=result.action_id)
    refusal = check(uow, policy, result)
    if refusal is not None:
        refused = f"refused-{key.rsplit(':', 1)[-1]}-{hashlib.sha256(result.by.encode()).hexdigest()[:8]}"
        if uow.review_results.get(refused) is None:
            uow.review_results.add(_row(result, refused, action_id=result.action_id, refusal=refusal))
        return Verdict.refusal(refusal, logged=True, record=refused, ref=result.action_id)
    review = uow.reviews.one(result.review_id)
    action_id = result.action_id
    if result.kind is ResultKind.decision:
        entry = {
            "decision": result.text.strip(),
            "by": result.by,
            "channel": result.channel,
            "at": result.at.isoformat(),
        }
        uow.reviews.update(review.id, results=[*review.results, entry])
        message = "decision recorded"
    elif result.kind is ResultKind.action:
        action_id = f"{review.id}/A{uow.review_actions.count(review_id=review.id) + 1}"
        assert result.owner is not None and result.due is not None
        uow.review_actions.add(
            ReviewAction(
                id=action_id,
                review_id=review.id,
                description=result.text.strip(),
                owner=result.owner.strip(),
                due=result.due,
                recorded_by=result.by,
                recorded_at=result.at,
            )
        )
        message = f"action {action_id} recorded for {result.owner} by {result.due}"
    elif result.kind is ResultKind.close:
        uow.reviews.update(review.id, status="closed", closed_at=result.at)
        message = f"review {review.id} closed"
    else:
        assert action_id is not None
        status = "done" if result.kind is ResultKind.action_done else "dropped"
        uow.review_actions.update(action_id, status=status, closed_at=result.at, closed_by=result.by)
        message = f"action {action_id} {status}"
    uow.review_results.add(_row(result, key, action_id=action_id))
    return Verdict("accepted", message, record=key, ref=action_id)


def _row(result: Result, key: str, *, action_id: str | None, refusal: str | None = None) -> ReviewResult:
    return ReviewResult(
        id=key,
        review_id=result.review_id,
        kind=result.kind.value,
        by=result.by,
        channel=result.channel,
        text=result.text.strip(),
        owner=result.owner,
        due=result.due,
        action_id=action_id,
        accepted=refusal is None,
        refusal=refusal,
        at=result.at,
    )


# -- results written in a Jira comment --------------------------------------------------------------

COMMENT_HELP = (
    "One result per line: 'Decision: <text>', 'Action: <text>; owner: <email>; due: YYYY-MM-DD', "
    "'Done: <action id>' or 'Dropped: <action id>'. Moving the issue to Done closes the review."
)
_LINE = re.compile(r"^\s*(decision|action|done|dropped)\s*:\s*(.+?)\s*$", re.IGNORECASE)
_PART = re.compile(r"^\s*(owner|due)\s*:\s*(.+?)\s*$", re.IGNORECASE)


class CommentError(ValueError):
    pass


def parse_comment(review_id: str, body: str, by: str, at: datetime) -> list[Result]:
    """The results a Jira comment states; lines that state none are ignored (people write prose too)."""
    results: list[Result] = []
    for number, line in enumerate(body.splitlines(), start=1):
        match = _LINE.match(line)
        if match is None:
            continue
        word, rest = match.group(1).lower(), match.group(2)
        if word == "decision":
            results.append(Result(review_id, ResultKind.decision, by, "jira", text=rest, at=at))
        elif word == "action":
            text, *parts = rest.split(";")
            fields: dict[str, str] = {}
            for part in parts:
                found = _PART.match(part)
                if found is None:
                    raise CommentError(f"line {number}: {part.strip()!r} is not 'owner: …' or 'due: …'")
                fields[found.group(1).lower()] = found.group(2)
            try:
                due = date.fromisoformat(fields["due"]) if "due" in fields else None
            except ValueError:
                raise CommentError(
                    f"line {number}: due {fields['due']!r} is not a date like 2027-01-31"
                ) from None
            results.append(
                Result(
                    review_id,
                    ResultKind.action,
                    by,
                    "jira",
                    text=text,
                    owner=fields.get("owner"),
                    due=due,
                    at=at,
                )
            )
        else:
            kind = ResultKind.action_done if word == "done" else ResultKind.action_dropped
            results.append(Result(review_id, kind, by, "jira", action_id=rest.strip(), at=at))
    return results


def is_open(review: ManagementReview) -> bool:
    return review.status in OPEN_STATUSES
