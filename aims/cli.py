"""The `aims` command: builds the parser from the command groups and dispatches. Nothing else."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aims.commands import (
    approvals,
    dashboard,
    datasets,
    dlq,
    dq,
    events,
    evidence,
    impact,
    incidents,
    iso,
    lineage,
    mlflow,
    parties,
    register,
    reviews,
    risks,
    stack,
    systems,
)
from aims.commands.common import Handler
from aims.errors import CliError

# In the order `aims --help` lists them: operating the stack, events, then the register's resources.
GROUPS = (
    stack,
    events,
    dlq,
    systems,
    datasets,
    dq,
    risks,
    impact,
    approvals,
    incidents,
    register,
    reviews,
    parties,
    mlflow,
    lineage,
    iso,
    evidence,
    dashboard,
)


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The `aims` parser, and the one of `aims incidents` (whose first word may be an incident id)."""
    parser = argparse.ArgumentParser(
        prog="aims",
        description="Event-driven orchestrator for the PDCA cycle of an ISO/IEC 42001 AI management system.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    incidents_parser = None
    for group in GROUPS:
        if group is incidents:
            incidents_parser = incidents.add_commands(add)
        else:
            group.add_commands(add)
    assert incidents_parser is not None
    return parser, incidents_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser, incidents_parser = build_parser()
    words = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(incidents.show_by_default(words, incidents_parser))
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"aims: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from connectors.register.store import RegisterError

        # A register problem the user can act on (unavailable, no audit key to write a keyed log
        # with): its message says what to do; a traceback would bury it.
        if not isinstance(exc, RegisterError):
            raise
        print(f"aims: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
