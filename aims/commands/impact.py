"""`aims impact [list|complete]`: AI system impact assessments (6.1.4, A.5)."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from aims.commands.common import (
    AddCommand,
    cli_settings,
    dump,
    empty,
    listing_options,
    open_register,
    validated,
)
from aims.errors import CliError
from aims.tables import show

if TYPE_CHECKING:
    from schemas.records import ImpactAssessment


def _impact_order(ia: ImpactAssessment) -> tuple[Any, ...]:
    # Open first, then by due date (undated last), then by id for a stable order.
    return (ia.status != "open", ia.due is None, ia.due or date.max, ia.id)


def _due(ia: ImpactAssessment, today: date) -> str:
    if ia.due is None:
        return "—"
    overdue = ia.status == "open" and ia.due < today
    return f"{ia.due.isoformat()} OVERDUE" if overdue else ia.due.isoformat()


def cmd_impact_list(args: argparse.Namespace) -> int:
    """`aims impact [list]`: impact assessments, open first then by due date."""
    filters = {k: v for k, v in (("system", args.system), ("status", args.status)) if v}
    register = open_register(cli_settings())
    with register.reader() as uow:
        found = sorted(uow.impact_assessments.find(**filters), key=_impact_order)
    if args.json:
        dump(found)
        return 0
    if not found:
        if filters:
            wanted = " and ".join(f"{k} {v}" for k, v in filters.items())
            print(f"no impact assessments with {wanted}; `aims impact` lists them all")
            return 0
        return empty("impact assessments", "the reassess-risk flow opens one for each new model version")
    today = datetime.now(UTC).date()
    show(
        [
            (
                ia.id,
                ia.system,
                ia.model_version_id,
                ia.status,
                _due(ia, today),
                ia.assessor,
                ia.completed_at,
            )
            for ia in found
        ],
        ["id", "system", "model version", "status", "due", "assessor", "completed"],
        [40, 20, 34, 9, 18, 24, 16],
    )
    return 0


def cmd_impact_complete(args: argparse.Namespace) -> int:
    """`aims impact complete ID --by NAME --summary TEXT`: record who completed it and what it found."""
    from connectors.register.store import RegisterError
    from schemas.payloads import Name, Text

    by = validated(Name, args.by, "--by")
    if not args.summary.strip():
        raise CliError("--summary is empty: say what the impact assessment found")
    summary = validated(Text, args.summary.strip(), "--summary")
    register = open_register(cli_settings())
    now = datetime.now(UTC)
    try:
        with register.unit_of_work(f"cli:{by}") as uow:
            ia = uow.impact_assessments.get(args.id)
            if ia is None:
                raise CliError(f"no impact assessment {args.id!r} in the register; `aims impact` lists them")
            if ia.status == "completed":
                when = f"{ia.completed_at:%Y-%m-%d %H:%M} UTC" if ia.completed_at else "at an unrecorded time"
                raise CliError(
                    f"impact assessment {args.id} was already completed {when} by {ia.assessor or 'someone'}"
                    "; nothing changed"
                )
            uow.impact_assessments.update(
                args.id, status="completed", assessor=by, summary=summary, completed_at=now
            )
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    print(f"impact assessment {args.id} of {ia.system} completed by {by} at {now:%Y-%m-%d %H:%M} UTC")
    return 0


def add_commands(add: AddCommand) -> None:
    impact = add(
        "impact",
        cmd_impact_list,
        "AI system impact assessments (6.1.4, A.5): list them (the default) or complete one.",
    )
    listing_options(impact, statuses=["open", "completed"])
    isub = impact.add_subparsers(dest="impact_command", required=False, metavar="ACTION")
    ilist = isub.add_parser(
        "list",
        help="impact assessments, open first then by due date (the default)",
        description="List impact assessments, open first then by due date.",
    )
    listing_options(ilist, statuses=["open", "completed"], nested=True)
    ilist.set_defaults(handler=cmd_impact_list)
    complete = isub.add_parser(
        "complete",
        help="record an impact assessment as completed, by whom and with what result",
        description="Complete an open impact assessment; the audit log records the actor cli:NAME.",
    )
    complete.add_argument("id", metavar="ID")
    complete.add_argument("--by", metavar="NAME", required=True, help="who completed it")
    complete.add_argument("--summary", metavar="TEXT", required=True, help="what it found")
    complete.set_defaults(handler=cmd_impact_complete)
