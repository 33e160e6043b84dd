"""`aims parties [list|add]`: needs and expectations of interested parties (4.2), a review input."""

from __future__ import annotations

import argparse

from aims.commands.common import (
    AddCommand,
    checked_text,
    cli_settings,
    dump,
    empty,
    identity,
    open_register,
    utc_time,
)
from aims.tables import show

CHANGES = ("new", "changed", "withdrawn")


def cmd_parties_add(args: argparse.Namespace) -> int:
    from schemas.records import InterestedPartyNeed

    settings = cli_settings()
    by = identity(args.by, "who records the need")
    need = InterestedPartyNeed(
        party=checked_text(args.party, "--party", "say whose need it is"),
        need=checked_text(args.need, "--need", "say what they need or expect"),
        change=args.change,
        recorded_by=by,
    )
    with open_register(settings).unit_of_work(f"cli:{by}") as uow:
        uow.party_needs.add(need)
    print(f"recorded {need.change} need of {need.party} ({need.id}); the next management review lists it")
    return 0


def cmd_parties_list(args: argparse.Namespace) -> int:
    with open_register(cli_settings()).reader() as uow:
        needs = uow.party_needs.find(order_by="recorded_at", descending=True)
    if args.json:
        dump(needs)
        return 0
    if not needs:
        return empty("interested parties' needs", "`aims parties add --party … --need …` records one")
    rows = [[utc_time(n.recorded_at), n.party, n.change, n.need, n.recorded_by] for n in needs]
    show(rows, ["recorded", "party", "change", "need", "by"], widths=[20, 40, 9, 80, 40])
    return 0


def add_commands(add: AddCommand) -> None:
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
