"""`aims audit verify` and `aims register upgrade`: the register's integrity and its schema."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from aims.commands.common import AddCommand, cli_settings, dump, open_register, usage_only
from aims.errors import CliError

if TYPE_CHECKING:
    from connectors.register.anchors import Anchor, AnchorSet
    from connectors.register.store import Register
    from schemas.settings import AimsSettings


def cmd_audit_verify(args: argparse.Namespace) -> int:
    settings = cli_settings()
    register = open_register(settings)
    anchors, note = audit_anchors(args, settings, register)
    report = register.verify_audit(anchors)
    if args.json:
        dump(
            {
                "ok": report.ok,
                "entries": report.entries,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash,
                "keyed_from": report.keyed_from,
                "anchors_checked": report.anchors_checked,
                "last_good_anchor": report.last_good_anchor,
                "anchors_rejected": report.anchors_rejected,
                "anchors_note": note,
                "problem": None
                if report.problem is None
                else {
                    "seq": report.problem.seq,
                    "kind": report.problem.kind,
                    "detail": report.problem.detail,
                },
            }
        )
        return 0 if report.ok else 1
    keyed = (
        f"keyed from entry {report.keyed_from}" if report.keyed_from else "not keyed (no AIMS_AUDIT_KEY yet)"
    )
    if report.ok:
        print(
            f"audit log intact: {report.entries} entries; head {report.head_seq} {report.head_hash}; {keyed}"
        )
    else:
        print(f"AUDIT LOG BROKEN at {report.problem}", file=sys.stderr)
        if report.last_good_anchor is not None:
            print(
                f"the last published anchor that matched is entry {report.last_good_anchor}: "
                f"entries from {report.last_good_anchor + 1} on cannot be trusted",
                file=sys.stderr,
            )
    if anchors is not None:
        print(f"anchors: {report.anchors_checked} matched the log ({anchors.source})")
    if report.anchors_rejected:
        print(
            f"WARNING: {report.anchors_rejected} record(s) on the anchors topic are not valid anchors "
            "(ignored)"
        )
    if note:
        print(f"anchors: {note}")
    return 0 if report.ok else 1


def audit_anchors(
    args: argparse.Namespace, settings: AimsSettings, register: Register
) -> tuple[AnchorSet | None, str]:
    """The anchors to check against: `--anchor`s (from review packs) and the anchors topic's; and a note
    on what was not checked, and why."""
    from connectors.register.anchors import AnchorSet

    given = [parse_anchor(text) for text in args.anchor]
    if args.no_anchors:
        return (
            AnchorSet.of(given, source="given") if given else None
        ), "the anchors topic was not read (--no-anchors)"
    if register.audit_key is None:
        return (AnchorSet.of(given, source="given") if given else None), (
            "no audit key: published anchors cannot be authenticated (set AIMS_AUDIT_KEY)"
        )
    from infra.stack import StackInfo

    info = StackInfo.load(settings.state_path)
    bootstrap = settings.kafka_bootstrap_servers or (info.bootstrap if info else None)
    if not bootstrap:
        note = (
            "no Kafka known (start the stack or set KAFKA_BOOTSTRAP_SERVERS): published anchors not checked"
        )
        return (AnchorSet.of(given, source="given") if given else None), note
    from events.anchors import read_anchors
    from events.kafka_clients import KafkaConnection

    try:
        published = read_anchors(
            KafkaConnection.from_settings(settings, bootstrap),
            settings.audit_anchors_topic,
            register.audit_key,
        )
    except Exception as exc:  # noqa: BLE001 - any Kafka failure: the check is incomplete, and says so
        raise CliError(
            f"could not read the audit anchors from {settings.audit_anchors_topic}: {exc}; "
            "`--no-anchors` checks the log against the key alone"
        ) from None
    anchors: list[Anchor] = [*given, *published.by_seq.values()]
    return AnchorSet.of(anchors, published.rejected, published.source), ""


def parse_anchor(text: str) -> Anchor:
    from connectors.register.anchors import Anchor

    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise CliError(f"--anchor {text!r}: expected SEQ:HASH, as a review pack states it")
    return Anchor(seq=int(seq), head=digest.lower(), keyed_from=None, at="--anchor")


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
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="an anchor kept elsewhere (a review pack states one); repeatable",
    )
    verify.add_argument(
        "--no-anchors",
        action="store_true",
        help="do not read the anchors topic (check against the key alone)",
    )
    verify.set_defaults(handler=cmd_audit_verify)
    reg = add("register", usage_only, "Manage the register's database.")
    rsub = reg.add_subparsers(dest="register_command", required=True, metavar="ACTION")
    rsub.add_parser("upgrade", help="apply the database migrations").set_defaults(
        handler=cmd_register_upgrade
    )
