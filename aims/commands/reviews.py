"""`aims review [list|show|request|decide|action|done|drop|close]`: management reviews (9.3).

Results go through `flows.commands.handle` (a `RecordReviewResults` command), the same verified path as a
Jira comment: only the policy's attendees record decisions and actions, and every attempt is kept.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aims.commands.common import (
    AddCommand,
    arg,
    checked_text,
    cli_settings,
    dump,
    empty,
    identity,
    iso_date,
    load_policy,
    open_register,
    send_now,
    utc_time,
)
from aims.errors import CliError
from aims.tables import show

if TYPE_CHECKING:
    from flows.reviews.commands import ResultKind
    from schemas.records import ManagementReview
    from schemas.settings import AimsSettings


def cmd_review_list(args: argparse.Namespace) -> int:
    register = open_register(cli_settings())
    with register.reader() as uow:
        reviews = uow.reviews.find(order_by="created_at", descending=True)
        actions = uow.review_actions.find()
    if args.json:
        dump(reviews)
        return 0
    if not reviews:
        return empty("management reviews", "the schedule prepares them, or `aims review request --reason …`")
    open_actions = {r.id: sum(a.review_id == r.id and a.status == "open" for a in actions) for r in reviews}
    rows = [
        [r.id, r.kind, r.status, utc_time(r.meeting_at), len(r.results), open_actions[r.id], r.reason]
        for r in reviews
    ]
    headers = ["id", "kind", "status", "meeting", "decisions", "open actions", "reason"]
    show(rows, headers, widths=[60, 13, 9, 20, 9, 12, 60])
    return 0


def _review(settings: AimsSettings, review_id: str) -> ManagementReview:
    from schemas.payloads import Name

    review_id = arg(Name, review_id, "REVIEW")
    with open_register(settings).reader() as uow:
        review = uow.reviews.get(review_id)
    if review is None:
        raise CliError(
            f"no management review {review_id!r}; `aims review list` shows them (nothing was recorded)"
        )
    return review


def cmd_review_show(args: argparse.Namespace) -> int:
    settings = cli_settings()
    review = _review(settings, args.id)
    with open_register(settings).reader() as uow:
        actions = uow.review_actions.find(review_id=review.id, order_by="recorded_at")
        attempts = uow.review_results.find(review_id=review.id, order_by="at")
    if args.json:
        dump(
            {
                "review": review.model_dump(mode="json"),
                "actions": [a.model_dump(mode="json") for a in actions],
                "results": [a.model_dump(mode="json") for a in attempts],
            }
        )
        return 0
    print(f"{review.id}  ({review.kind}, {review.status})")
    print(f"  reason:   {review.reason or '—'}")
    print(f"  meeting:  {utc_time(review.meeting_at)}")
    print(f"  period:   {utc_time(review.period_start)} → {utc_time(review.period_end)}")
    print(f"  trigger:  {review.trigger or '—'} (asked by {review.requested_by or '—'})")
    print(f"  jira:     {review.jira_issue or '—'}")
    for kind, path in review.files.items():
        print(f"  {kind + ':':9} {path}")
    missing = [s for s in review.pack.get("sections", []) if s.get("missing")]
    if missing:
        print("  missing data:")
        for section in missing:
            for line in section["missing"]:
                print(f"    {section['clause']} {section['title']}: {line}")
    print("decisions:" if review.results else "decisions: none yet")
    for entry in review.results:
        print(f"  - {entry.get('decision')} ({entry.get('by')}, {entry.get('channel')})")
    print("actions:" if actions else "actions: none yet")
    for a in actions:
        print(f"  {a.id}  {a.status:8} {a.owner}  due {a.due}  {a.description}")
    for attempt in attempts:
        if not attempt.accepted:
            print(f"  refused {attempt.kind} by {attempt.by} ({attempt.channel}): {attempt.refusal}")
    if review.status != "closed":
        print(f"open until its results are recorded: `aims review close {review.id}` once they are")
    return 0


def cmd_review_request(args: argparse.Namespace) -> int:
    """Record a requested review and announce it; the router starts hold-management-review for it."""
    from connectors.register.outbox import stage
    from connectors.register.store import RegisterError
    from schemas.events import ReviewRequestedEvent
    from schemas.payloads import ReviewRequested
    from schemas.records import ManagementReview

    settings = cli_settings()
    by = identity(args.by, "who requests the review")
    reason = checked_text(args.reason, "--reason", "say why a review is needed now")
    now = datetime.now(UTC)
    # One request per reason a day: asking twice is not two reviews.
    digest = hashlib.sha256(f"{reason}\x1f{now.date()}".encode()).hexdigest()[:12]
    review = ManagementReview(
        id=f"requested:{now.date()}:{digest}",
        kind="extraordinary",
        reason=reason,
        status="requested",
        trigger=f"cli:{by}",
        requested_by=by,
        created_at=now,
    )
    event = ReviewRequestedEvent(
        specversion="1.0",
        id=f"{review.id}:requested",
        source="urn:aims:cli",
        time=now,
        data=ReviewRequested(
            review_id=review.id,
            reason=reason,
            trigger=review.trigger,
            requested_by=by,
            requested_at=now,
        ),
    )
    try:
        with open_register(settings).unit_of_work(f"cli:{by}") as uow:
            if not uow.reviews.add_if_absent(review):
                print(f"{review.id}: already requested today for this reason; nothing changed")
                return 0
            keys = stage(uow, [event], settings.events_topic)
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    print(f"{review.id}: requested by {by}")
    send_now(settings, keys, done="sent: hold-management-review prepares the pack and invites the attendees")
    return 0


def cmd_review_result(args: argparse.Namespace) -> int:
    from connectors.register.store import RegisterError
    from flows.commands import Actor, Context, cli_text, handle
    from flows.reviews.commands import RecordReviewResults, Result, ResultKind
    from schemas.payloads import DecisionChannel, Name

    settings = cli_settings()
    kind = ResultKind(args.kind)
    by = identity(args.by, "who records the result")
    text, owner, due, action = "", None, None, None
    if kind is ResultKind.decision:
        text = checked_text(args.text, "TEXT", "say what was decided")
    elif kind is ResultKind.action:
        text = checked_text(args.description, "--description", "say what the action does")
        owner = arg(Name, args.owner, "--owner")
        due = iso_date(args.due, "--due")
    elif kind in (ResultKind.action_done, ResultKind.action_dropped):
        action = arg(Name, args.action, "ACTION")
        if "/A" not in action:
            raise CliError(
                f"invalid ACTION {action!r}: an action id is REVIEW/A<n>; `aims review show REVIEW` lists it"
            )
    review = _review(settings, action.rpartition("/")[0] if action else args.id)
    policy = load_policy(settings, "check who may record review results")
    result = Result(review.id, kind, by, "cli", text=text, owner=owner, due=due, action_id=action)
    command = RecordReviewResults(
        actor=Actor(by, DecisionChannel.cli), at=result.at, review_id=review.id, results=(result,)
    )
    try:
        verdict = handle(command, Context(open_register(settings), policy, settings.events_topic))
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    answer, code = cli_text(verdict, review.id, by)
    if code:
        raise CliError(answer)
    print(answer)
    if not verdict.duplicate and review.jira_issue:
        _tell_jira(settings, review.jira_issue, f"AIMS, from the CLI by {by}: {verdict.message}.", kind)
    return 0


def _tell_jira(settings: AimsSettings, issue: str, text: str, kind: ResultKind) -> None:
    """Keep the review's Jira issue telling the truth; the register holds the result either way."""
    from connectors.jira_issues import TrackerError, jira_from_settings
    from flows.reviews.commands import ResultKind
    from flows.text import jira_text

    try:
        tracker = jira_from_settings(settings)
        if tracker is None:
            return
        # Plain words quoting people (names, decisions): wiki markup that shows them literally.
        text = jira_text(text, lines=True)
        # A closed review's issue goes to Done (our own move: the gateway ignores its webhook).
        if kind is not ResultKind.close or not tracker.transition(issue, "Done", text):
            tracker.comment(issue, text)
    except TrackerError as exc:
        print(f"warning: recorded, but Jira {issue} was not told: {exc}", file=sys.stderr)


def add_commands(add: AddCommand) -> None:
    review = add(
        "review",
        cmd_review_list,
        "Management reviews (9.3): list them (the default), show one, request one, and record its "
        "results (9.3.3): decisions, actions with owner and due date, closing.",
    )
    review.add_argument("--json", action="store_true")
    sub = review.add_subparsers(dest="review_command", required=False, metavar="ACTION")
    listing = sub.add_parser("list", help="every review, newest first (the default)")
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    listing.set_defaults(handler=cmd_review_list)
    one = sub.add_parser("show", help="one review: meeting, files, missing data, decisions, actions")
    one.add_argument("id", metavar="REVIEW")
    one.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    one.set_defaults(handler=cmd_review_show)
    request = sub.add_parser(
        "request",
        help="request an extraordinary review now; hold-management-review prepares it",
        description="Record an extraordinary management review and announce it on Kafka; the pack is "
        "prepared at once and the meeting falls `management_review.extraordinary.notice_days` later.",
    )
    request.add_argument("--reason", metavar="TEXT", required=True, help="why a review is needed now")
    request.add_argument("--by", metavar="NAME", help="who asks (default: login)")
    request.set_defaults(handler=cmd_review_request)

    def result(name: str, kind: str, help_text: str, review: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]}. Attendees of management reviews only "
            "(the policy's `management_review.attendees`); a refusal is recorded and says why.",
        )
        if review:
            p.add_argument("id", metavar="REVIEW")
        p.add_argument("--by", metavar="EMAIL", help="who, as the policy lists them (default: login)")
        p.set_defaults(handler=cmd_review_result, kind=kind)
        return p

    decide = result("decide", "decision", "record a decision of the review")
    decide.add_argument("text", metavar="TEXT", help="what was decided")
    action = result("action", "action", "record an action with its owner and due date; prints its id")
    action.add_argument("--description", metavar="TEXT", required=True, help="what the action does")
    action.add_argument("--owner", metavar="EMAIL", required=True, help="who does it")
    action.add_argument("--due", metavar="YYYY-MM-DD", required=True, help="by when")
    done = result("done", "action-done", "mark a review's action done (its owner may too)", review=False)
    done.add_argument("action", metavar="ACTION", help="the action's id, e.g. scheduled:2027-01-15/A1")
    drop = result("drop", "action-dropped", "drop a review's action", review=False)
    drop.add_argument("action", metavar="ACTION", help="the action's id")
    result("close", "close", "close the review once its results are recorded")
