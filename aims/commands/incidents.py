"""`aims incidents [list|show|contain|report|cause|action|done|verify|close]` (10.2, A.8.4, Art. 73).

Updates go through `flows.commands.handle` (an `UpdateIncident` command), the path a Slack button or a
Jira transition takes: incident responders only, in order; every attempt is recorded.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
)
from aims.errors import CliError
from aims.tables import cell, fields, show

if TYPE_CHECKING:
    from flows.incidents.rules import Update
    from schemas.payloads import IncidentUpdateKind
    from schemas.records import Incident


def _short(action_id: str | None) -> str:
    """`urn:support#77/A2` → `A2`: the form people type."""
    return action_id.rsplit("/", 1)[-1] if action_id else "—"


def _left(incident: Incident, now: datetime) -> tuple[str, int | None]:
    """Time left on the Art. 73 clock, as text and in seconds; "—" and None when no clock runs."""
    from flows.incidents.clocks import format_left, time_left

    left = time_left(incident, now)
    return ("—", None) if left is None else (format_left(left), int(left.total_seconds()))


def _no_clock(incident: Incident) -> str:
    """Why no Art. 73 clock runs for an incident, for `show`."""
    if incident.closed_at is not None:
        return "— (closed)"
    if incident.reported_to_authority_at is not None:
        return f"— (reported to the authority {cell(incident.reported_to_authority_at)})"
    if not incident.serious:
        return "— (not a serious incident under Art. 73)"
    return "—"


def cmd_incidents(args: argparse.Namespace) -> int:
    """`aims incidents [list] [--open]`: incidents, newest first, with the time left to report them."""
    from flows.incidents.commands import load_state
    from flows.incidents.rules import stage_of

    register = open_register(cli_settings())
    now = datetime.now(UTC)
    only_open = getattr(args, "open", False)
    with register.reader() as uow:
        filters: dict[str, Any] = {"closed_at": None} if only_open else {}
        incidents = uow.incidents.find(order_by="detected_at", descending=True, **filters)
        states = {i.id: load_state(uow, i.id) for i in incidents}
    stages = {key: stage_of(state).value if state else "?" for key, state in states.items()}
    clocks = {i.id: _left(i, now) for i in incidents}
    if args.json:
        # The records as before, each with its stage and clock.
        listed = [
            {
                **i.model_dump(mode="json"),
                "stage": stages[i.id],
                "time_left": None if clocks[i.id][1] is None else clocks[i.id][0],
                "time_left_seconds": clocks[i.id][1],
            }
            for i in incidents
        ]
        json.dump(listed, sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    if not incidents:
        if only_open:
            print("no open incidents; `aims incidents` lists them all")
            return 0
        return empty("incidents", "an incident-reported event records one")
    show(
        [
            (
                i.id,
                i.system,
                i.severity,
                i.category,
                stages[i.id],
                i.serious,
                i.detected_at,
                i.reporting_due_at if i.serious else None,
                clocks[i.id][0],
            )
            for i in incidents
        ],
        [
            "id",
            "system",
            "severity",
            "category",
            "status",
            "serious",
            "detected",
            "reporting due",
            "time left",
        ],
        # Ids in full: people copy them into `aims incidents show|contain|…`.
        [80, 20, 8, 22, 21, 7, 16, 16, 24],
    )
    return 0


def cmd_incidents_show(args: argparse.Namespace) -> int:
    """`aims incidents show ID`: facts, clock, root cause, actions, every update, what blocks closing."""
    from flows.incidents.commands import load_state
    from flows.incidents.rules import close_blockers, stage_of
    from schemas.payloads import Name

    incident_id = arg(Name, args.id, "ID")
    register = open_register(cli_settings())
    now = datetime.now(UTC)
    with register.reader() as uow:
        state = load_state(uow, incident_id)
        if state is None:
            raise CliError(f"no incident {incident_id!r} in the register; `aims incidents` lists them")
        updates = uow.incident_updates.find(incident_id=incident_id, order_by="at")
        notices = uow.incident_notices.find(incident_id=incident_id, order_by="sent_at")
    incident, nc, actions = state.incident, state.nonconformity, state.actions
    stage = stage_of(state)
    left, seconds = _left(incident, now)
    blockers = close_blockers(state) if incident.closed_at is None else []
    if args.json:
        dump(
            {
                "incident": incident.model_dump(mode="json"),
                "stage": stage.value,
                "time_left": None if seconds is None else left,
                "time_left_seconds": seconds,
                "nonconformity": nc.model_dump(mode="json") if nc else None,
                "corrective_actions": [
                    {**a.model_dump(mode="json"), "short_id": _short(a.id)} for a in actions
                ],
                "updates": [u.model_dump(mode="json") for u in updates],
                "notices": [n.model_dump(mode="json") for n in notices],
                "close_blockers": blockers,
            }
        )
        return 0
    severity = incident.severity.value
    if incident.reported_severity is not None and incident.reported_severity != incident.severity:
        severity += f" (reported as {incident.reported_severity.value}, raised to the policy's floor)"
    print(
        fields(
            [
                ("id", incident.id),
                ("system", incident.system),
                ("title", incident.title),
                ("description", incident.description or None),
                ("category", incident.category),
                ("severity", severity),
                ("status", stage),
                ("serious", incident.serious),
                ("criteria", incident.criteria),
                ("occurred", incident.occurred_at),
                ("detected", incident.detected_at),
                ("reported by", incident.reported_by),
                ("triaged", incident.triaged_at),
                ("reporting due", incident.reporting_due_at),
                ("deadline basis", incident.deadline_basis),
                ("time left", left if seconds is not None else _no_clock(incident)),
                ("contained", incident.contained_at),
                ("reported to authority", incident.reported_to_authority_at),
                ("authority reference", incident.authority_reference),
                ("closed", incident.closed_at),
                ("slack", f"{incident.slack_channel} {incident.slack_ts}" if incident.slack_ts else None),
                ("jira issue", incident.jira_issue),
            ]
        )
    )
    if nc is not None and nc.root_cause:
        print(f"\nroot cause (10.2, nonconformity {nc.id}, {nc.status}):\n  {nc.root_cause}")
    else:
        print(
            f"\nroot cause (10.2): not recorded yet — `aims incidents cause {incident.id} --root-cause TEXT`"
        )
    print(f"\ncorrective actions ({len(actions)}):")
    if actions:
        show(
            [
                (_short(a.id), a.description, a.owner, a.due, a.status, a.effectiveness, a.verified_by)
                for a in actions
            ],
            ["action", "description", "owner", "due", "status", "effectiveness", "verified by"],
            [6, 40, 30, 10, 8, 40, 30],
        )
    print(f"\nupdates ({len(updates)}, refused ones too):")
    for u in updates:
        action = f" {_short(u.action_id)}" if u.action_id else ""
        detail = f" — {cell(u.detail, 120)}" if u.detail else ""
        refused = f"  REFUSED: {u.refusal}" if not u.accepted else ""
        print(f"  {u.at:%Y-%m-%d %H:%M} {u.by} via {u.channel}: {u.kind}{action}{detail}{refused}")
    if notices:
        print(f"\nnotices ({len(notices)}):")
        for n in notices:
            step = f" {n.step}" if n.step else ""
            print(f"  {n.sent_at:%Y-%m-%d %H:%M} {n.kind}{step} → {', '.join(n.recipients) or '—'}")
    if incident.closed_at is None:
        if blockers:
            print("\nbefore it can close:")
            for blocker in blockers:
                print(f"  - {blocker}")
        else:
            print(f"\nnothing blocks closing: `aims incidents close {incident.id}`")
    return 0


def _update_from(args: argparse.Namespace, kind: IncidentUpdateKind, by: str, at: datetime) -> Update:
    """The update the arguments describe, every one of them checked; raises CliError on bad input."""
    from flows.incidents.rules import Update
    from schemas.payloads import DecisionChannel, IncidentUpdateKind, Name, Text

    incident_id = arg(Name, args.id, "ID")
    detail, action, owner, due = "", None, None, None
    if kind in (IncidentUpdateKind.contain, IncidentUpdateKind.action_done) and args.note is not None:
        detail = arg(Text, args.note.strip(), "--note") if args.note.strip() else ""
    elif kind is IncidentUpdateKind.report:
        detail = arg(Name, args.reference, "--reference")
    elif kind is IncidentUpdateKind.root_cause:
        detail = checked_text(args.root_cause, "--root-cause", "say what caused the incident")
    elif kind is IncidentUpdateKind.plan_action:
        detail = checked_text(args.description, "--description", "say what the action does")
        owner = arg(Name, args.owner, "--owner")
        due = iso_date(args.due, "--due")
    elif kind is IncidentUpdateKind.verify_action:
        detail = checked_text(args.effectiveness, "--effectiveness", "say what shows the action worked")
    if kind in (IncidentUpdateKind.action_done, IncidentUpdateKind.verify_action):
        action = arg(Name, args.action, "ACTION")
    return Update(
        incident_id=incident_id,
        kind=kind,
        by=by,
        channel=DecisionChannel.cli.value,
        at=at,
        detail=detail,
        action_id=action,
        owner=owner,
        due=due,
    )


def cmd_incidents_update(args: argparse.Namespace) -> int:
    """`aims incidents contain|report|cause|action|done|verify|close ID …`: an update on the verified path.

    Every argument is checked before anything is opened; an unknown incident or action is refused
    before anything is written. The rules (who may, in what order) are `flows.incidents.rules.check`,
    the same for Slack, Jira and this command; a refusal they make is recorded and says why.
    """
    from connectors.register.store import RegisterError
    from flows.commands import Context, cli_text, handle
    from flows.incidents.commands import UpdateIncident, load_state, resolve_action
    from schemas.payloads import IncidentUpdateKind

    settings = cli_settings()
    kind = IncidentUpdateKind(args.kind)
    by = identity(args.by, "who updates the incident")
    update = _update_from(args, kind, by, datetime.now(UTC))
    policy = load_policy(settings, "check who may update incidents")
    register = open_register(settings)
    with register.reader() as uow:
        state = load_state(uow, update.incident_id)
    if state is None:
        raise CliError(
            f"no incident {update.incident_id!r} in the register; `aims incidents` lists them "
            "(nothing was recorded)"
        )
    if update.action_id is not None and state.action(resolve_action(state, update.action_id)) is None:
        known = ", ".join(_short(a.id) for a in state.actions) or "none yet"
        raise CliError(
            f"incident {update.incident_id} has no corrective action {update.action_id!r} "
            f"(actions: {known}; `aims incidents show {update.incident_id}` lists them); nothing was recorded"
        )
    try:
        verdict = handle(UpdateIncident.of(update), Context(register, policy, settings.events_topic))
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    text, code = cli_text(verdict, update.incident_id, by)
    if code:
        raise CliError(text)
    print(text)
    if verdict.duplicate:
        return 0
    if kind is IncidentUpdateKind.plan_action and verdict.ref is not None:
        short = _short(verdict.ref)
        print(f"action {short}: when it is done, `aims incidents done {update.incident_id} {short}`")
    send_now(settings, list(verdict.keys), done="sent to the track-incident flow (Slack and Jira follow)")
    return 0


# The actions besides `list` and `show`: (name, update kind, help).
UPDATES = (
    ("contain", "contain", "record that the incident is contained"),
    ("report", "report", "record the Art. 73 report to the authority; stops the clock"),
    ("cause", "root-cause", "record the root cause (10.2)"),
    ("action", "plan-action", "plan a corrective action; prints its id (A1, A2 …)"),
    ("done", "action-done", "mark a corrective action done (its owner may too)"),
    ("verify", "verify-action", "record that a done action was effective (not by its owner)"),
    ("close", "close", "close the incident once nothing blocks it"),
)
ACTIONS = ("list", "show", *(name for name, _, _ in UPDATES))
# The options of `aims incidents` itself; none takes a value, so the first other word is the action.
GROUP_FLAGS = ("--open", "--json", "-h", "--help")


def show_by_default(argv: Sequence[str], incidents: argparse.ArgumentParser) -> list[str]:
    """`aims incidents ID …` means `aims incidents show ID …`: the command line with `show` put in.

    A word close to an action's name is a typo, not an id: a usage error that suggests the action.
    """
    words = list(argv)
    if not words or words[0] != "incidents":
        return words
    for at, word in enumerate(words[1:], start=1):
        if word in GROUP_FLAGS:
            continue
        if word.startswith("-") or word in ACTIONS:
            return words
        near = difflib.get_close_matches(word, ACTIONS, n=1, cutoff=0.75)
        if near:
            incidents.error(
                f"argument ACTION: invalid choice: {word!r} "
                f"(did you mean {near[0]!r}? choose from {', '.join(ACTIONS)})"
            )
        return [*words[:at], "show", *words[at:]]
    return words


def add_commands(add: AddCommand) -> argparse.ArgumentParser:
    """Add `aims incidents`; returns its parser, which `show_by_default` needs."""
    incidents = add(
        "incidents",
        cmd_incidents,
        "Incidents (10.2, A.8.4, EU AI Act Art. 73): list them with the time left to report them "
        "(the default), show one, or record its containment, report, root cause, actions and closing.",
    )
    incidents.add_argument("--open", action="store_true", help="only incidents not closed")
    incidents.add_argument("--json", action="store_true")
    isub = incidents.add_subparsers(dest="incidents_command", required=False, metavar="ACTION")
    ilist = isub.add_parser(
        "list",
        help="every incident, newest first, with its Art. 73 clock (the default)",
        description="List incidents, newest first: severity, status, whether serious, when the report "
        "to the authority is due and the time left.",
    )
    ilist.add_argument(
        "--open", action="store_true", default=argparse.SUPPRESS, help="only incidents not closed"
    )
    ilist.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    ilist.set_defaults(handler=cmd_incidents)
    ishow = isub.add_parser(
        "show",
        help="one incident: facts, clock, root cause, actions, updates (refused too), what blocks closing",
        description="One incident in full; `aims incidents ID` is the same.",
    )
    ishow.add_argument("id", metavar="ID")
    ishow.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    ishow.set_defaults(handler=cmd_incidents_show)

    parsers = {}
    for name, kind, help_text in UPDATES:
        p = isub.add_parser(
            name,
            help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]}. Checked like a Slack button or a Jira "
            "transition: incident responders only (the policy's `incidents.responders`), in order; "
            "a refusal is recorded and says why.",
        )
        p.add_argument("id", metavar="ID", help="the incident")
        p.add_argument("--by", metavar="EMAIL", help="who, as the policy lists them (default: login)")
        p.set_defaults(handler=cmd_incidents_update, kind=kind)
        parsers[name] = p
    parsers["contain"].add_argument("--note", metavar="TEXT", help="how it was contained")
    parsers["report"].add_argument(
        "--reference", metavar="REF", required=True, help="the authority's reference (e.g. its case number)"
    )
    parsers["cause"].add_argument(
        "--root-cause", metavar="TEXT", required=True, help="what caused the incident"
    )
    action = parsers["action"]
    action.add_argument("--description", metavar="TEXT", required=True, help="what the action does")
    action.add_argument("--owner", metavar="EMAIL", required=True, help="who does it")
    action.add_argument("--due", metavar="YYYY-MM-DD", required=True, help="by when")
    done = parsers["done"]
    done.add_argument("action", metavar="ACTION", help="the action: A1, A2 … or its full id")
    done.add_argument("--note", metavar="TEXT", help="what was done")
    verify = parsers["verify"]
    verify.add_argument("action", metavar="ACTION", help="the action: A1, A2 … or its full id")
    verify.add_argument("--effectiveness", metavar="TEXT", required=True, help="what shows the action worked")
    return incidents
