"""`aims lineage [list] [--outcome O] [--event E]`: what the gateway made of OpenLineage run events.

Every run transition the gateway took is in the register (`WebhookDelivery`, sender openlineage), so
a finished run whose outputs no data source claims is listed here as unmapped with its reasons,
rather than lost: map its datasets in the policy's `openlineage.dataset_locations` and the next run
of the job is checked.
"""

from __future__ import annotations

import argparse
from typing import Any

from aims.commands.common import AddCommand, cli_settings, dump, empty, open_register, utc_time
from aims.tables import show
from schemas.openlineage import EventType

OUTCOMES = ("data-changed", "unmapped", "recorded")


def outputs_text(outputs: list[dict[str, Any]]) -> str:
    """Each output: the dataset and version it became, or its name and why it did not."""
    shown = []
    for o in outputs:
        if "event_key" in o:
            where = f"{o['dataset_id']}@{o['version']}"
        else:
            unmapped = " (unmapped)" if "reason" in o else ""
            where = f"{o.get('namespace', '?')} {o.get('name', '?')}{unmapped}"
        if "assertions" in o:
            where += f" [producer: {o['passed']} passed, {o['failed']} failed]"
        shown.append(where)
    return "; ".join(shown) or "—"


def cmd_lineage_list(args: argparse.Namespace) -> int:
    filters: dict[str, Any] = {"outcome": args.outcome} if args.outcome else {}
    if args.event:
        filters["kind"] = f"openlineage.{args.event}"
    with open_register(cli_settings()).reader() as uow:
        found = uow.webhook_deliveries.find(
            order_by="received_at", descending=True, sender="openlineage", **filters
        )
    if args.json:
        dump(found)
        return 0
    if not found:
        if filters:
            print("no OpenLineage events like that; `aims lineage` lists them all")
            return 0
        hint = "point a pipeline's OpenLineage HTTP transport at the gateway's /api/v1/lineage"
        return empty("OpenLineage events", hint)
    rows = [
        [
            utc_time(d.received_at),
            d.kind.removeprefix("openlineage."),
            d.subject,
            str(d.data.get("run_id", "—")),
            d.outcome,
            outputs_text(d.data.get("outputs", [])),
            "; ".join([*d.reasons, *d.notes]) or "—",
        ]
        for d in found
    ]
    show(
        rows,
        ["received", "event", "job", "run", "outcome", "outputs", "why"],
        widths=[20, 9, 32, 36, 13, 100, 80],
    )
    return 0


def add_commands(add: AddCommand) -> None:
    events = [e.value for e in EventType]
    lineage = add(
        "lineage",
        cmd_lineage_list,
        "OpenLineage run events as the gateway recorded them, newest first: finished runs whose outputs "
        "became data-quality checks, or unmapped (with why), and the other transitions (start, fail…).",
    )
    lineage.add_argument("--outcome", choices=OUTCOMES, help="only these (unmapped: the datasets to map)")
    lineage.add_argument("--event", choices=events, help="only this eventType")
    lineage.add_argument("--json", action="store_true")
    lsub = lineage.add_subparsers(dest="lineage_command", required=False, metavar="ACTION")
    llist = lsub.add_parser("list", help="every recorded run event, newest first (the default)")
    llist.add_argument("--outcome", choices=OUTCOMES, default=argparse.SUPPRESS)
    llist.add_argument("--event", choices=events, default=argparse.SUPPRESS)
    llist.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    llist.set_defaults(handler=cmd_lineage_list)
