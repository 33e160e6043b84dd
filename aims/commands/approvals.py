"""`aims approvals [list|show|approve|reject]`: approvals and their decisions, and deciding from the CLI.

A decision goes through `flows.commands.handle` (a `DecideApproval` command), the path a Slack click
takes: the approver's group, separation of duties and quorum are checked, and every attempt is recorded.
The command line proves its operator by the OS login (`aims.login.operator_login`), recorded beside
`--by`: the policy's `people` say which logins may decide as whom, and `--by` someone the login does
not map to is refused (and recorded).
"""

from __future__ import annotations

import argparse

from aims import login as os_login
from aims.commands.common import (
    AddCommand,
    cli_settings,
    dump,
    empty,
    identity,
    load_policy,
    open_register,
    send_now,
    validated,
)
from aims.errors import CliError
from aims.tables import fields, show


def cmd_approvals(args: argparse.Namespace) -> int:
    register = open_register(cli_settings())
    with register.reader() as uow:
        filters = {"status": args.status} if args.status else {}
        approvals = uow.approvals.find(order_by="requested_at", descending=True, **filters)
    if args.json:
        dump(approvals)
        return 0
    if not approvals:
        return empty("approvals", "risk gates request them")
    show(
        [
            (
                a.id,
                a.status,
                a.subject,
                a.requested_decision,
                a.risk_level,
                a.approver_group,
                a.quorum,
                a.requested_at,
                a.due_at,
            )
            for a in approvals
        ],
        ["id", "status", "subject", "decision", "level", "group", "quorum", "requested", "due"],
        [32, 9, 30, 14, 8, 16, 6, 16, 16],
    )
    return 0


def cmd_approvals_show(args: argparse.Namespace) -> int:
    """`aims approvals show ID`: one approval with every decision on it, refused ones too."""
    register = open_register(cli_settings())
    with register.reader() as uow:
        approval = uow.approvals.get(args.id)
        if approval is None:
            raise CliError(f"no approval {args.id!r} in the register; `aims approvals` lists them")
        decisions = uow.decisions.find(approval_id=args.id, order_by="decided_at")
        notices = uow.notices.find(approval_id=args.id, order_by="sent_at")
    if args.json:
        dump(
            {
                "approval": approval.model_dump(mode="json"),
                "decisions": [d.model_dump(mode="json") for d in decisions],
                "notices": [n.model_dump(mode="json") for n in notices],
            }
        )
        return 0
    print(fields(list(approval.model_dump().items())))
    print(f"\ndecisions ({len(decisions)}):")
    for d in decisions:
        refused = f" REFUSED: {d.refusal}" if not d.accepted else ""
        when = f"{d.decided_at:%Y-%m-%d %H:%M}"
        # What proved the person (Slack id, Jira account, OS login), and a decision nobody proved.
        proof = f" [{d.credential}]" if d.credential else ""
        proof += " UNAUTHENTICATED" if d.authenticated is False else ""
        print(f"  {when} {d.decided_by} via {d.channel}{proof}: {d.decision} — {d.reason}{refused}")
    if notices:
        print(f"\nnotices ({len(notices)}):")
        for n in notices:
            print(f"  {n.sent_at:%Y-%m-%d %H:%M} {n.kind} {n.step} → {', '.join(n.recipients)}")
    return 0


def cmd_approvals_decide(args: argparse.Namespace) -> int:
    """`aims approvals approve|reject ID --by EMAIL --reason TEXT`: a decision on the verified path."""
    from flows.approvals.commands import DecideApproval
    from flows.commands import Actor, Context, cli_text, handle
    from schemas.payloads import Decision, DecisionChannel, Text
    from schemas.people import by_login

    settings = cli_settings()
    login = os_login.operator_login()
    reason = validated(Text, args.reason, "--reason") if args.reason is not None else ""
    policy = load_policy(settings, "check who may decide")
    if args.by is not None:
        approver = identity(args.by, "who decides")
    elif login is not None and len(mine := by_login(policy.people, login)) == 1:
        approver = mine[0]  # the one person the policy maps this login to
    else:
        raise CliError(f"cannot tell who decides on login {login!r}: pass --by EMAIL")
    command = DecideApproval(
        actor=Actor(approver, DecisionChannel.cli, login),
        approval_id=args.id,
        decision=Decision(args.decision),
        reason=reason,
    )
    verdict = handle(command, Context(open_register(settings), policy, settings.events_topic))
    text, code = cli_text(verdict, args.id, approver, on_behalf="for")
    if code:
        raise CliError(text)
    print(text)
    if verdict.accepted:
        send_now(settings, list(verdict.keys))
    return 0


def add_commands(add: AddCommand) -> None:
    approvals = add(
        "approvals",
        cmd_approvals,
        "Approvals: list them (the default), show one with its decisions, or approve or reject one.",
    )
    statuses = ["pending", "approved", "rejected", "expired"]
    approvals.add_argument("--status", choices=statuses)
    approvals.add_argument("--json", action="store_true")
    asub = approvals.add_subparsers(dest="approvals_command", required=False, metavar="ACTION")
    alist = asub.add_parser("list", help="every approval, newest first (the default)")
    alist.add_argument("--status", choices=statuses, default=argparse.SUPPRESS)
    alist.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    alist.set_defaults(handler=cmd_approvals)
    ashow = asub.add_parser("show", help="one approval with its decisions (refused ones too) and notices")
    ashow.add_argument("id", metavar="ID")
    ashow.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    ashow.set_defaults(handler=cmd_approvals_show)
    for verb in ("approve", "reject"):
        decide = asub.add_parser(
            verb,
            help=f"{verb} a pending approval, as one of its approvers",
            description=f"{verb.capitalize()} a pending approval. Checked like a Slack click: your group, "
            "separation of duties, quorum; a refusal is recorded and says why.",
        )
        decide.add_argument("id", metavar="ID")
        decide.add_argument(
            "--by",
            metavar="EMAIL",
            help="who decides, as the policy lists them: a person your OS login may decide as "
            "(people: EMAIL: logins); default: the one person your login maps to",
        )
        decide.add_argument(
            "--reason", metavar="TEXT", required=verb == "reject", help="why (required to reject)"
        )
        decide.set_defaults(handler=cmd_approvals_decide, decision=verb)
