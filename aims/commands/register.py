"""`aims audit verify` and `aims register upgrade`: the register's integrity and its schema."""

from __future__ import annotations

import argparse
import sys

from aims.commands.common import AddCommand, cli_settings, dump, open_register, usage_only
from aims.errors import CliError


def cmd_audit_verify(args: argparse.Namespace) -> int:
    register = open_register(cli_settings())
    report = register.verify_audit()
    if args.json:
        dump(
            {
                "ok": report.ok,
                "entries": report.entries,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash,
                "problem": None
                if report.problem is None
                else {
                    "seq": report.problem.seq,
                    "kind": report.problem.kind,
                    "detail": report.problem.detail,
                },
            }
        )
    elif report.ok:
        print(f"audit log intact: {report.entries} entries; head {report.head_seq} {report.head_hash}")
        print("keep the head hash outside the register to detect a rewrite of the whole log later")
    else:
        print(f"AUDIT LOG BROKEN at {report.problem}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_register_upgrade(args: argparse.Namespace) -> int:
    from connectors.register import open_register as open_as_is
    from connectors.register.store import RegisterError, display_url

    settings = cli_settings()
    try:
        register = open_as_is(settings, migrate=False)
        before = register.revision()
        register.migrate()
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    print(f"register {display_url(register.url)}: {before or 'empty'} → {register.revision()}")
    return 0


def add_commands(add: AddCommand) -> None:
    audit = add("audit", usage_only, "Check the audit log.")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = asub.add_parser(
        "verify", help="report the first audit entry that was altered, deleted or reordered"
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=cmd_audit_verify)
    reg = add("register", usage_only, "Manage the register's database.")
    rsub = reg.add_subparsers(dest="register_command", required=True, metavar="ACTION")
    rsub.add_parser("upgrade", help="apply the database migrations").set_defaults(
        handler=cmd_register_upgrade
    )
