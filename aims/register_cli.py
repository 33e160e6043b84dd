"""`aims systems|risks|approvals|incidents`, `aims audit verify`, `aims register upgrade`.

Every command reads through the same register interface the flows and the router write through.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aims.errors import CliError
from aims.tables import fields, render

if TYPE_CHECKING:
    from connectors.register.store import Register
    from schemas.records import Record
    from schemas.settings import AimsSettings

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def open_for_cli(settings: AimsSettings) -> Register:
    from connectors.register import open_register
    from connectors.register.store import RegisterError

    try:
        return open_register(settings)
    except RegisterError as exc:
        raise CliError(str(exc)) from None


def _settings() -> AimsSettings:
    from aims.cli import _settings as settings

    return settings()


def _dump(records: Sequence[Record] | Record | dict[str, Any]) -> None:
    if isinstance(records, dict):
        payload: Any = records
    elif isinstance(records, Sequence):
        payload = [r.model_dump(mode="json") for r in records]
    else:
        payload = records.model_dump(mode="json")
    json.dump(payload, sys.stdout, indent=2, sort_keys=True)
    print()


def _empty(what: str, hint: str) -> int:
    print(f"no {what} in the register yet — {hint}")
    return 0


# -- views -----------------------------------------------------------------------------------------


def cmd_systems(args: argparse.Namespace) -> int:
    register = open_for_cli(_settings())
    with register.reader() as uow:
        if args.name:
            system = uow.systems.one(args.name) if uow.systems.get(args.name) else None
            if system is None:
                raise CliError(f"no AI system {args.name!r} in the register; `aims systems` lists them")
            versions = uow.model_versions.find(system=args.name, order_by="registered_at")
            risks = uow.risks.find(system=args.name, order_by="category")
            incidents = uow.incidents.find(system=args.name, order_by="detected_at")
            if args.json:
                _dump(
                    {
                        "system": system.model_dump(mode="json"),
                        "model_versions": [v.model_dump(mode="json") for v in versions],
                        "risks": [r.model_dump(mode="json") for r in risks],
                        "incidents": [i.model_dump(mode="json") for i in incidents],
                    }
                )
                return 0
            print(fields(list(system.model_dump().items())))
            print(f"\nmodel versions ({len(versions)}):")
            for v in versions:
                print(f"  {v.model_name} v{v.version}  by {v.submitted_by}  {v.registered_at:%Y-%m-%d %H:%M}")
            print(
                f"risks ({len(risks)}): "
                + (", ".join(f"{r.category}={r.residual_level}" for r in risks) or "none")
            )
            print(f"incidents ({len(incidents)}): " + (", ".join(i.id for i in incidents) or "none"))
            return 0
        systems = uow.systems.find(order_by="name")
    if args.json:
        _dump(systems)
        return 0
    if not systems:
        return _empty("AI systems", "a model-version-registered event adds its system (`aims emit`)")
    print(
        render(
            [
                (s.name, s.owner, s.lifecycle_stage, s.risk_tier or "not assessed", s.intended_use)
                for s in systems
            ],
            ["name", "owner", "stage", "risk tier", "intended use"],
            [30, 24, 12, 14, 50],
        )
    )
    return 0


def cmd_risks(args: argparse.Namespace) -> int:
    register = open_for_cli(_settings())
    with register.reader() as uow:
        filters = {"system": args.system} if args.system else {}
        risks = uow.risks.find(order_by="system", **filters)
        history = {r.id: uow.risk_versions.find(risk_id=r.id, order_by="version") for r in risks}
    if args.json:
        _dump(
            {
                "risks": [r.model_dump(mode="json") for r in risks],
                "history": {k: [v.model_dump(mode="json") for v in vs] for k, vs in history.items()},
            }
        )
        return 0
    if not risks:
        return _empty("risks", "risk assessment starts with the reassess-risk flow")
    print(
        render(
            [
                (
                    r.system,
                    r.category,
                    r.title,
                    f"{r.likelihood}×{r.impact}",
                    r.inherent_level,
                    r.residual_level,
                    r.status,
                    r.owner,
                    r.next_review,
                    r.version,
                )
                for r in risks
            ],
            ["system", "category", "title", "L×I", "inherent", "residual", "status", "owner", "review", "v"],
            [20, 14, 30, 5, 9, 9, 9, 16, 10, 3],
        )
    )
    if args.system:
        for risk in risks:
            versions = history[risk.id]
            if len(versions) > 1:
                print(f"\n{risk.title}: " + " → ".join(f"v{v.version} {v.residual_level}" for v in versions))
    return 0


def cmd_approvals(args: argparse.Namespace) -> int:
    register = open_for_cli(_settings())
    with register.reader() as uow:
        if args.id:
            approval = uow.approvals.get(args.id)
            if approval is None:
                raise CliError(f"no approval {args.id!r} in the register; `aims approvals` lists them")
            decisions = uow.decisions.find(approval_id=args.id, order_by="decided_at")
            if args.json:
                _dump(
                    {
                        "approval": approval.model_dump(mode="json"),
                        "decisions": [d.model_dump(mode="json") for d in decisions],
                    }
                )
                return 0
            print(fields(list(approval.model_dump().items())))
            print(f"\ndecisions ({len(decisions)}):")
            for d in decisions:
                refused = f" REFUSED: {d.refusal}" if not d.accepted else ""
                when = f"{d.decided_at:%Y-%m-%d %H:%M}"
                print(f"  {when} {d.decided_by} via {d.channel}: {d.decision} — {d.reason}{refused}")
            return 0
        filters = {"status": args.status} if args.status else {}
        approvals = uow.approvals.find(order_by="requested_at", descending=True, **filters)
    if args.json:
        _dump(approvals)
        return 0
    if not approvals:
        return _empty("approvals", "risk gates request them")
    print(
        render(
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
    )
    return 0


def _time_left(due: datetime | None, now: datetime) -> str:
    if due is None:
        return "—"
    seconds = (due - now).total_seconds()
    days, rest = divmod(abs(seconds), 86400)
    text = f"{int(days)}d {int(rest // 3600)}h"
    return f"{text} left" if seconds >= 0 else f"OVERDUE by {text}"


def cmd_incidents(args: argparse.Namespace) -> int:
    register = open_for_cli(_settings())
    now = datetime.now(UTC)
    with register.reader() as uow:
        if args.id:
            incident = uow.incidents.get(args.id)
            if incident is None:
                raise CliError(f"no incident {args.id!r} in the register; `aims incidents` lists them")
            if args.json:
                _dump(incident)
                return 0
            print(
                fields(
                    [
                        *incident.model_dump().items(),
                        ("time left", _time_left(incident.reporting_due_at, now)),
                    ]
                )
            )
            return 0
        incidents = uow.incidents.find(order_by="detected_at", descending=True)
    if args.json:
        _dump(incidents)
        return 0
    if not incidents:
        return _empty("incidents", "an incident-reported event records one")
    print(
        render(
            [
                (
                    i.id,
                    i.system,
                    i.severity,
                    i.category,
                    i.status,
                    i.serious,
                    i.detected_at,
                    _time_left(i.reporting_due_at, now) if i.closed_at is None else "closed",
                )
                for i in incidents
            ],
            ["id", "system", "severity", "category", "status", "serious", "detected", "reporting clock"],
            [36, 20, 8, 22, 12, 7, 16, 20],
        )
    )
    return 0


# -- audit and schema ------------------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace) -> int:
    register = open_for_cli(_settings())
    report = register.verify_audit()
    if args.json:
        _dump(
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
    from connectors.register.store import RegisterError, display_url

    settings = _settings()
    from connectors.register import open_register

    try:
        register = open_register(settings, migrate=False)
        before = register.revision()
        register.migrate()
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    print(f"register {display_url(register.url)}: {before or 'empty'} → {register.revision()}")
    return 0


def add_commands(add: AddCommand) -> None:
    systems = add("systems", cmd_systems, "List the AI system inventory, or show one system.")
    systems.add_argument("name", nargs="?")
    systems.add_argument("--json", action="store_true")
    risks = add("risks", cmd_risks, "List the risk register, or one system's risks with their history.")
    risks.add_argument("system", nargs="?")
    risks.add_argument("--json", action="store_true")
    approvals = add("approvals", cmd_approvals, "List approvals (pending first by time), or show one.")
    approvals.add_argument("id", nargs="?")
    approvals.add_argument("--status", choices=["pending", "approved", "rejected", "expired"])
    approvals.add_argument("--json", action="store_true")
    incidents = add("incidents", cmd_incidents, "List incidents with their reporting clocks, or show one.")
    incidents.add_argument("id", nargs="?")
    incidents.add_argument("--json", action="store_true")
    audit = add("audit", lambda _: 2, "Check the audit log.")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = asub.add_parser(
        "verify", help="report the first audit entry that was altered, deleted or reordered"
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=cmd_audit_verify)
    reg = add("register", lambda _: 2, "Manage the register's database.")
    rsub = reg.add_subparsers(dest="register_command", required=True, metavar="ACTION")
    rsub.add_parser("upgrade", help="apply the database migrations").set_defaults(
        handler=cmd_register_upgrade
    )
