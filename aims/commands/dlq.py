"""`aims dlq list|show|replay`: dead letters, read back and sent through again once fixed."""

from __future__ import annotations

import argparse
import json

from aims.commands.common import AddCommand, cli_settings
from aims.errors import CliError


def cmd_dlq(args: argparse.Namespace) -> int:
    from aims.dlq import parse_position, read_dead_letters, render_list, render_one, replay
    from aims.endpoints import resolve

    settings = cli_settings()
    kafka = resolve(settings).kafka
    letters = list(read_dead_letters(settings, kafka))
    if args.dlq_command == "list":
        if args.reason:
            letters = [d for d in letters if d.reason == args.reason]
        letters = letters[-args.limit :]
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "position": f"{d.partition}:{d.offset}",
                            "reason": d.reason,
                            "detail": d.detail,
                            "key": (d.key or b"").decode("utf-8", "replace"),
                        }
                        for d in letters
                    ],
                    indent=2,
                )
            )
        else:
            print(render_list(letters))
        return 0
    by_position = {(d.partition, d.offset): d for d in letters}
    positions = [parse_position(p) for p in getattr(args, "positions", []) or []]
    missing = [f"{p}:{o}" for p, o in positions if (p, o) not in by_position]
    if missing:
        raise CliError(f"no dead letter at {', '.join(missing)} (see `aims dlq list`)")
    if args.dlq_command == "show":
        print("\n\n".join(render_one(by_position[p]) for p in positions))
        return 0
    if args.all:
        chosen = [d for d in letters if not args.reason or d.reason == args.reason]
        references = [d for d in chosen if d.is_reference]
        if references:
            # They hold no original to publish (see `aims dlq show`); the rest can still go.
            print(f"skipped {len(references)} reference(s) to records too large to copy")
            chosen = [d for d in chosen if not d.is_reference]
    elif positions:
        chosen = [by_position[p] for p in positions]
    else:
        raise CliError("say what to replay: PARTITION:OFFSET … or --all [--reason R]")
    count = replay(settings, kafka, chosen)
    print(f"replayed {count} dead letter(s) to {settings.events_topic}")
    return 0


def add_commands(add: AddCommand) -> None:
    dlq = add("dlq", cmd_dlq, "Manage dead letters.")
    dsub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlist = dsub.add_parser("list", help="list dead letters with their reasons")
    dlist.add_argument("--reason", help="only this reason (e.g. invalid-payload)")
    dlist.add_argument("--limit", type=int, default=50)
    dlist.add_argument("--json", action="store_true")
    dshow = dsub.add_parser("show", help="show dead letters in full")
    dshow.add_argument("positions", nargs="+", metavar="PARTITION:OFFSET")
    dreplay = dsub.add_parser("replay", help="publish dead letters to the events topic again")
    dreplay.add_argument("positions", nargs="*", metavar="PARTITION:OFFSET")
    dreplay.add_argument(
        "--all", action="store_true", help="every dead letter (with --reason: of that reason)"
    )
    dreplay.add_argument("--reason")
