"""`aims review …` (management reviews, 9.3) and `aims parties …` (interested parties' needs, 4.2).

Results go through `flows.reviews.commands.submit`, the same verified path as a Jira comment: only
the policy's attendees record decisions and actions, and every attempt is kept.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aims.errors import CliError
from aims.register_cli import (
    AddCommand,
    _arg,
    _dump,
    _empty,
    _iso_date,
    _send_now,
    _settings,
    _text,
    _who,
    open_for_cli,
)
from aims.tables import render

if TYPE_CHECKING:
    from flows.reviews.commands import ResultKind
    from schemas.policy import Policy
    from schemas.records import ManagementReview
    from schemas.settings import AimsSettings

CHANGES = ("new", "changed", "withdrawn")


def _policy(settings: AimsSettings, why: str) -> Policy:
    from schemas.policy_file import PolicyError, load_policy

    try:
        return load_policy(settings.policy_file)
    except (PolicyError, OSError) as exc:
        raise CliError(f"cannot {why}: {exc}") from None


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def cmd_review_list(args: argparse.Namespace) -> int:
    register = open_for_cli(_settings())
    with register.reader() as uow:
        reviews = uow.reviews.find(order_by="created_at", descending=True)
        actions = uow.review_actions.find()
    if args.json:
        _dump(reviews)
        return 0
    if not reviews:
        return _empty("management reviews", "the schedule prepares them, or `aims review request --reason …`")
    open_actions = {r.id: sum(a.review_id == r.id and a.status == "open" for a in actions) for r in reviews}
    rows = [
        [r.id, r.kind, r.status, _when(r.meeting_at), len(r.results), open_actions[r.id], r.reason]
        for r in reviews
    ]
    headers = ["id", "kind", "status", "meeting", "decisions", "open actions", "reason"]
    print(render(rows, headers, widths=[60, 13, 9, 20, 9, 12, 60]))
    return 0


def _review(settings: AimsSettings, review_id: str) -> ManagementReview:
    from schemas.payloads import Name

    review_id = _arg(Name, review_id, "REVIEW")
    with open_for_cli(settings).reader() as uow:
        review = uow.reviews.get(review_id)
    if review is None:
        raise CliError(
            f"no management review {review_id!r}; `aims review list` shows them (nothing was recorded)"
        )
    return review


def cmd_review_show(args: argparse.Namespace) -> int:
    settings = _settings()
    review = _review(settings, args.id)
    with open_for_cli(settings).reader() as uow:
        actions = uow.review_actions.find(review_id=review.id, order_by="recorded_at")
        attempts = uow.review_results.find(review_id=review.id, order_by="at")
    if args.json:
        _dump(
            {
                "review": review.model_dump(mode="json"),
                "actions": [a.model_dump(mode="json") for a in actions],
                "results": [a.model_dump(mode="json") for a in attempts],
            }
        )
        return 0
    print(f"{review.id}  ({review.kind}, {review.status})")
    print(f"  reason:   {review.reason or '—'}")
    print(f"  meeting:  {_when(review.meeting_at)}")
    print(f"  period:   {_when(review.period_start)} → {_when(review.period_end)}")
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
    from schemas.records import ManagementReview

    settings = _settings()
    by = _who(args.by, "who requests the review")
    reason = _text(args.reason, "--reason", "say why a review is needed now")
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
    event = ReviewRequestedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"{review.id}:requested",
            "source": "urn:aims:cli",
            "time": now.isoformat(),
            "data": {
                "review_id": review.id,
                "reason": reason,
                "trigger": review.trigger,
                "requested_by": by,
                "requested_at": now.isoformat(),
            },
        }
    )
    try:
        with open_for_cli(settings).unit_of_work(f"cli:{by}") as uow:
            if not uow.reviews.add_if_absent(review):
                print(f"{review.id}: already requested today for this reason; nothing changed")
                return 0
            keys = stage(uow, [event], settings.events_topic)
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    print(f"{review.id}: requested by {by}")
    _send_now(settings, keys, done="sent: hold-management-review prepares the pack and invites the attendees")
    return 0


def cmd_review_result(args: argparse.Namespace) -> int:
    from connectors.register.store import RegisterError
    from flows.commands import Actor, Context, cli_text, handle
    from flows.reviews.commands import RecordReviewResults, Result, ResultKind
    from schemas.payloads import DecisionChannel, Name

    settings = _settings()
    kind = ResultKind(args.kind)
    by = _who(args.by, "who records the result")
    text, owner, due, action = "", None, None, None
    if kind is ResultKind.decision:
        text = _text(args.text, "TEXT", "say what was decided")
    elif kind is ResultKind.action:
        text = _text(args.description, "--description", "say what the action does")
        owner = _arg(Name, args.owner, "--owner")
        due = _iso_date(args.due, "--due")
    elif kind in (ResultKind.action_done, ResultKind.action_dropped):
        action = _arg(Name, args.action, "ACTION")
        if "/A" not in action:
            raise CliError(
                f"invalid ACTION {action!r}: an action id is REVIEW/A<n>; `aims review show REVIEW` lists it"
            )
    review = _review(settings, action.rpartition("/")[0] if action else args.id)
    policy = _policy(settings, "check who may record review results")
    result = Result(review.id, kind, by, "cli", text=text, owner=owner, due=due, action_id=action)
    command = RecordReviewResults(
        actor=Actor(by, DecisionChannel.cli), at=result.at, review_id=review.id, results=(result,)
    )
    try:
        verdict = handle(command, Context(open_for_cli(settings), policy, settings.events_topic))
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

    try:
        tracker = jira_from_settings(settings)
        if tracker is None:
            return
        # A closed review's issue goes to Done (our own move: the gateway ignores its webhook).
        if kind is not ResultKind.close or not tracker.transition(issue, "Done", text):
            tracker.comment(issue, text)
    except TrackerError as exc:
        print(f"warning: recorded, but Jira {issue} was not told: {exc}", file=sys.stderr)


def cmd_parties_add(args: argparse.Namespace) -> int:
    from schemas.records import InterestedPartyNeed

    settings = _settings()
    by = _who(args.by, "who records the need")
    need = InterestedPartyNeed(
        party=_text(args.party, "--party", "say whose need it is"),
        need=_text(args.need, "--need", "say what they need or expect"),
        change=args.change,
        recorded_by=by,
    )
    with open_for_cli(settings).unit_of_work(f"cli:{by}") as uow:
        uow.party_needs.add(need)
    print(f"recorded {need.change} need of {need.party} ({need.id}); the next management review lists it")
    return 0


def cmd_parties_list(args: argparse.Namespace) -> int:
    with open_for_cli(_settings()).reader() as uow:
        needs = uow.party_needs.find(order_by="recorded_at", descending=True)
    if args.json:
        _dump(needs)
        return 0
    if not needs:
        return _empty("interested parties' needs", "`aims parties add --party … --need …` records one")
    rows = [[_when(n.recorded_at), n.party, n.change, n.need, n.recorded_by] for n in needs]
    print(render(rows, ["recorded", "party", "change", "need", "by"], widths=[20, 40, 9, 80, 40]))
    return 0


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
    show = sub.add_parser("show", help="one review: meeting, files, missing data, decisions, actions")
    show.add_argument("id", metavar="REVIEW")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    show.set_defaults(handler=cmd_review_show)
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

    parties = add(
        "parties",
        cmd_parties_list,
        "Needs and expectations of interested parties (4.2), an input of management reviews: list "
        "them (the default) or record one.",
    )
    parties.add_argument("--json", action="store_true")
    psub = parties.add_subparsers(dest="parties_command", required=False, metavar="ACTION")
    plist = psub.add_parser("list", help="every recorded need, newest first (the default)")
    plist.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    plist.set_defaults(handler=cmd_parties_list)
    padd = psub.add_parser("add", help="record a new, changed or withdrawn need of an interested party")
    padd.add_argument(
        "--party", metavar="TEXT", required=True, help="who, e.g. 'Market surveillance authority'"
    )
    padd.add_argument("--need", metavar="TEXT", required=True, help="what they need or expect")
    padd.add_argument("--change", choices=CHANGES, default="new", help="default: new")
    padd.add_argument("--by", metavar="NAME", help="who records it (default: login)")
    padd.set_defaults(handler=cmd_parties_add)
