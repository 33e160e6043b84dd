"""`aims systems|risks|impact|approvals|incidents`, `aims audit verify`, `aims register upgrade`.

Every command reads through the same register interface the flows and the router write through.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from aims.errors import CliError
from aims.tables import cell, fields, render

if TYPE_CHECKING:
    from connectors.register.store import Register
    from schemas.records import ImpactAssessment, Record, RiskAssessment, RiskVersion
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


def cmd_risks_list(args: argparse.Namespace) -> int:
    """`aims risks [list] [--system S]`: the risk register, with version trails for one system."""
    system = getattr(args, "system", None)
    register = open_for_cli(_settings())
    with register.reader() as uow:
        filters = {"system": system} if system else {}
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
    if system:
        for risk in risks:
            versions = history[risk.id]
            if len(versions) > 1:
                print(f"\n{risk.title}: " + " → ".join(f"v{v.version} {v.residual_level}" for v in versions))
    return 0


# What a reassessment can change in a risk, with the label the history shows for it.
VERSIONED_FIELDS = {
    "likelihood": "likelihood",
    "impact": "impact",
    "inherent_level": "inherent",
    "residual_level": "residual",
    "treatment": "treatment",
    "controls": "controls",
}


def version_changes(versions: Sequence[RiskVersion]) -> list[dict[str, Any]]:
    """What changed between consecutive versions of one risk: {from, to, assessment_id, changed}."""
    changes = []
    for old, new in itertools.pairwise(versions):
        before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
        changed = {f: [before[f], after[f]] for f in VERSIONED_FIELDS if before[f] != after[f]}
        changes.append(
            {"from": old.version, "to": new.version, "assessment_id": new.assessment_id, "changed": changed}
        )
    return changes


def _quoted(text: str) -> str:
    return f'"{cell(text, 60)}"' if text else "—"


def _describe_change(field: str, old: Any, new: Any) -> str:
    label = VERSIONED_FIELDS[field]
    if field == "controls":
        added = [c for c in new if c not in old]
        removed = [c for c in old if c not in new]
        moves = [f"+{c}" for c in added] + [f"−{c}" for c in removed]
        return f"{label} " + (", ".join(moves) if moves else "reordered")
    if field == "treatment":
        return f"{label} {_quoted(old)} → {_quoted(new)}"
    return f"{label} {old}→{new}"


def _why(version: RiskVersion, assessments: dict[str, RiskAssessment]) -> str:
    if version.assessment_id is None:
        return f"{version.assessed_by}, {version.assessed_at:%Y-%m-%d %H:%M}"
    assessment = assessments.get(version.assessment_id)
    return f"{version.assessment_id}, {assessment.reason}" if assessment else version.assessment_id


def cmd_risks_show(args: argparse.Namespace) -> int:
    """`aims risks show SYSTEM`: current risks, the assessments behind them, and how each risk moved."""
    register = open_for_cli(_settings())
    with register.reader() as uow:
        if uow.systems.get(args.system) is None:
            raise CliError(f"no AI system {args.system!r} in the register; `aims systems` lists them")
        risks = uow.risks.find(system=args.system, order_by="category")
        assessments = uow.assessments.find(system=args.system, order_by="assessed_at", descending=True)
        history = {r.id: uow.risk_versions.find(risk_id=r.id, order_by="version") for r in risks}
    changes = {risk_id: version_changes(versions) for risk_id, versions in history.items()}
    if args.json:
        _dump(
            {
                "system": args.system,
                "risks": [r.model_dump(mode="json") for r in risks],
                "assessments": [a.model_dump(mode="json") for a in assessments],
                "history": {k: [v.model_dump(mode="json") for v in vs] for k, vs in history.items()},
                "changes": changes,
            }
        )
        return 0
    if not risks:
        print(f"{args.system}: not assessed yet — `aims risks reassess {args.system}`")
    else:
        print(f"{args.system}: {len(risks)} risk(s)\n")
        print(
            render(
                [
                    (
                        r.category,
                        f"{r.likelihood}×{r.impact}",
                        r.inherent_level,
                        r.residual_level,
                        r.status,
                        r.version,
                        r.next_review,
                    )
                    for r in risks
                ],
                ["category", "L×I", "inherent", "residual", "status", "version", "next review"],
                [20, 5, 9, 9, 9, 7, 11],
            )
        )
    if assessments:
        print(f"\nassessments ({len(assessments)}, newest first):")
        print(
            render(
                [
                    (
                        a.id,
                        a.assessed_at,
                        a.reason,
                        a.evidence,
                        a.highest_inherent,
                        a.highest_residual,
                        a.gated,
                        a.approval_id,
                        "BLOCKED" if a.blocked else "",
                    )
                    for a in assessments
                ],
                ["id", "when", "reason", "evidence", "inherent", "residual", "gated", "approval", "blocked"],
                [20, 16, 20, 40, 9, 9, 30, 34, 7],
            )
        )
    by_id = {a.id: a for a in assessments}
    for risk in risks:
        versions = history[risk.id]
        if not versions:
            continue
        print(f"\n{risk.category} — {risk.title}:")
        first = versions[0]
        print(
            f"  {risk.category} v{first.version} ({_why(first, by_id)}): likelihood {first.likelihood}, "
            f"impact {first.impact}, inherent {first.inherent_level}, residual {first.residual_level}"
        )
        for change, version in zip(changes[risk.id], versions[1:], strict=True):
            what = ", ".join(_describe_change(f, old, new) for f, (old, new) in change["changed"].items())
            print(
                f"  {risk.category} v{change['from']} → v{change['to']} ({_why(version, by_id)}): "
                f"{what or 'no change'}"
            )
        latest = versions[-1]
        if latest.rationale:
            print(f"  why v{latest.version}:")
            for step in latest.rationale:
                print(
                    f"    {step.get('rule', '?')} — {step.get('evidence', '?')} → {step.get('effect', '?')}"
                )
    return 0


# Pydantic's wording of the checks on payload names and texts, as a person would say it.
PLAIN = {
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
    "string_pattern_mismatch": "must not be blank or start or end with a space",
}


def _validated(kind: Any, value: str, flag: str) -> str:
    """`value` checked against a payload type (Name, Text); a failure names the flag."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return str(TypeAdapter(kind).validate_python(value))
    except ValidationError as exc:
        problems = "; ".join(PLAIN.get(e["type"], e["msg"]) for e in exc.errors(include_url=False))
        raise CliError(f"invalid {flag} {value!r}: {problems}") from None


def cmd_risks_reassess(args: argparse.Namespace) -> int:
    """`aims risks reassess SYSTEM`: ask the reassess-risk flow to assess a system now (8.2)."""
    import getpass
    import uuid

    from pydantic import ValidationError

    from schemas.events import RiskReassessmentRequestedEvent
    from schemas.payloads import Name, ReassessmentReason, Text

    settings = _settings()
    asker = args.by
    if asker is None:
        try:
            asker = getpass.getuser()
        except (OSError, KeyError, ImportError):  # no login name here: the user must say
            raise CliError("cannot tell who is asking: pass --by NAME") from None
    by = _validated(Name, asker, "--by")
    details = {"requested_by": by}
    if args.note is not None:
        details["note"] = _validated(Text, args.note, "--note")
    register = open_for_cli(settings)
    with register.reader() as uow:
        if uow.systems.get(args.system) is None:
            raise CliError(
                f"no AI system {args.system!r} in the register; `aims systems` lists them "
                "(nothing was published)"
            )
    try:
        event = RiskReassessmentRequestedEvent.model_validate(
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "urn:aims:cli",
                "time": datetime.now(UTC).isoformat(),
                "data": {
                    "ai_system": args.system,
                    "reason": ReassessmentReason.manual.value,
                    "evidence": f"cli:{by}",
                    "details": details,
                },
            }
        )
    except ValidationError as exc:
        from aims.emit import explain

        raise CliError(f"cannot request a reassessment of {args.system!r}:\n{explain(exc)}") from None

    from kafka.errors import KafkaError

    from aims.endpoints import resolve
    from events.producer import EventPublisher

    endpoints = resolve(settings)
    try:
        publisher = EventPublisher(endpoints.bootstrap, settings.events_topic)
        try:
            partition = publisher.publish(event)
        finally:
            publisher.close()
    except KafkaError as exc:
        raise CliError(
            f"could not publish the request to Kafka at {endpoints.bootstrap}: {exc}; "
            "is the stack up (`aims status`)?"
        ) from None
    print(
        f"requested reassessment of {args.system}: event {event.id} → {settings.events_topic}[{partition}]; "
        "the reassess-risk flow run shows in the Prefect UI"
    )
    return 0


def cmd_approvals_show(args: argparse.Namespace) -> int:
    """`aims approvals show ID`: one approval with every decision on it, refused ones too."""
    register = open_for_cli(_settings())
    with register.reader() as uow:
        approval = uow.approvals.get(args.id)
        if approval is None:
            raise CliError(f"no approval {args.id!r} in the register; `aims approvals` lists them")
        decisions = uow.decisions.find(approval_id=args.id, order_by="decided_at")
        notices = uow.notices.find(approval_id=args.id, order_by="sent_at")
    if args.json:
        _dump(
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
        print(f"  {when} {d.decided_by} via {d.channel}: {d.decision} — {d.reason}{refused}")
    if notices:
        print(f"\nnotices ({len(notices)}):")
        for n in notices:
            print(f"  {n.sent_at:%Y-%m-%d %H:%M} {n.kind} {n.step} → {', '.join(n.recipients)}")
    return 0


def cmd_approvals_decide(args: argparse.Namespace) -> int:
    """`aims approvals approve|reject ID --by EMAIL --reason TEXT`: a decision on the verified path."""
    import getpass

    from aims.policy_file import PolicyError, load_policy
    from flows.approval_rules import Attempt
    from flows.decisions import submit
    from schemas.payloads import Decision, DecisionChannel, Name, Text

    settings = _settings()
    who = args.by
    if who is None:
        try:
            who = getpass.getuser()
        except (OSError, KeyError, ImportError):
            raise CliError("cannot tell who decides: pass --by EMAIL") from None
    approver = _validated(Name, who, "--by")
    reason = _validated(Text, args.reason, "--reason") if args.reason is not None else ""
    try:
        policy = load_policy(settings.policy_file)
    except (PolicyError, OSError) as exc:
        raise CliError(f"cannot check who may decide: {exc}") from None
    register = open_for_cli(settings)
    attempt = Attempt(
        approval_id=args.id,
        approver=approver,
        decision=Decision(args.decision),
        channel=DecisionChannel.cli,
        reason=reason,
        at=datetime.now(UTC),
    )
    result = submit(register, policy, attempt, settings.events_topic)
    if result.status == "refused":
        logged = "; the attempt is logged" if result.decision else ""
        raise CliError(f"refused: {result.message}{logged}")
    if result.status == "duplicate":
        print(f"{args.id}: {result.message}; nothing changed")
        return 0
    print(f"{args.id}: {result.message} for {approver}")
    _send_now(settings, list(result.keys))
    return 0


def _send_now(settings: AimsSettings, keys: list[str]) -> None:
    """Publish the decision at once; if Kafka is away it is safe in the outbox and goes later."""
    from kafka.errors import KafkaError

    from aims.endpoints import resolve
    from events.kafka_clients import make_producer
    from events.outbox import OutboxRelay

    try:
        endpoints = resolve(settings)
        producer = make_producer(endpoints.bootstrap, client_id="aims-cli")
        try:
            sent = OutboxRelay(open_for_cli(settings), producer, "cli").send(keys)
        finally:
            producer.close(timeout=10)
    except (CliError, KafkaError) as exc:
        print(f"warning: not sent yet ({exc}); the router's outbox relay sends it", file=sys.stderr)
        return
    if sent < len(keys):
        print("warning: not sent yet; the router's outbox relay sends it", file=sys.stderr)
        return
    print("sent to the waiting request-approval run")


def cmd_approvals(args: argparse.Namespace) -> int:
    register = open_for_cli(_settings())
    with register.reader() as uow:
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


# -- impact assessments (6.1.4, A.5) ---------------------------------------------------------------


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
    register = open_for_cli(_settings())
    with register.reader() as uow:
        found = sorted(uow.impact_assessments.find(**filters), key=_impact_order)
    if args.json:
        _dump(found)
        return 0
    if not found:
        if filters:
            wanted = " and ".join(f"{k} {v}" for k, v in filters.items())
            print(f"no impact assessments with {wanted}; `aims impact` lists them all")
            return 0
        return _empty("impact assessments", "the reassess-risk flow opens one for each new model version")
    today = datetime.now(UTC).date()
    print(
        render(
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
    )
    return 0


def cmd_impact_complete(args: argparse.Namespace) -> int:
    """`aims impact complete ID --by NAME --summary TEXT`: record who completed it and what it found."""
    from connectors.register.store import RegisterError
    from schemas.payloads import Name, Text

    by = _validated(Name, args.by, "--by")
    if not args.summary.strip():
        raise CliError("--summary is empty: say what the impact assessment found")
    summary = _validated(Text, args.summary.strip(), "--summary")
    register = open_for_cli(_settings())
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


def _listing_options(
    parser: argparse.ArgumentParser, statuses: list[str] | None, nested: bool = False
) -> None:
    """--system/--status/--json, on a command group and again on its `list` action.

    On the action they default to SUPPRESS, so `aims risks --json list` keeps the group's value.
    """
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if nested else {}
    parser.add_argument("--system", metavar="S", help="only this AI system", **default)
    if statuses:
        parser.add_argument("--status", choices=statuses, **default)
    parser.add_argument("--json", action="store_true", **default)


def add_commands(add: AddCommand) -> None:
    systems = add("systems", cmd_systems, "List the AI system inventory, or show one system.")
    systems.add_argument("name", nargs="?")
    systems.add_argument("--json", action="store_true")
    risks = add(
        "risks",
        cmd_risks_list,
        "The risk register: list it (the default), show one system's risks with their history, "
        "or ask for a reassessment.",
    )
    _listing_options(risks, statuses=None)
    rsub = risks.add_subparsers(dest="risks_command", required=False, metavar="ACTION")
    rlist = rsub.add_parser("list", help="every risk (the default)", description="List the risk register.")
    _listing_options(rlist, statuses=None, nested=True)
    rlist.set_defaults(handler=cmd_risks_list)
    show = rsub.add_parser(
        "show",
        help="one system's risks, assessments, version history and rationale",
        description="One system's current risks, its assessments newest first, what changed between "
        "versions of each risk and why the latest version scored as it did.",
    )
    show.add_argument("system", metavar="SYSTEM")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    show.set_defaults(handler=cmd_risks_show)
    reassess = rsub.add_parser(
        "reassess",
        help="ask the reassess-risk flow to assess a system now",
        description="Publish a risk-reassessment request (reason: manual) for an AI system in the register.",
    )
    reassess.add_argument("system", metavar="SYSTEM")
    reassess.add_argument("--by", metavar="NAME", help="who asks (default: your login name)")
    reassess.add_argument("--note", metavar="TEXT", help="why, for the reviewer")
    reassess.set_defaults(handler=cmd_risks_reassess)
    impact = add(
        "impact",
        cmd_impact_list,
        "AI system impact assessments (6.1.4, A.5): list them (the default) or complete one.",
    )
    _listing_options(impact, statuses=["open", "completed"])
    isub = impact.add_subparsers(dest="impact_command", required=False, metavar="ACTION")
    ilist = isub.add_parser(
        "list",
        help="impact assessments, open first then by due date (the default)",
        description="List impact assessments, open first then by due date.",
    )
    _listing_options(ilist, statuses=["open", "completed"], nested=True)
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
    approvals = add(
        "approvals",
        cmd_approvals,
        "Approvals: list them (the default), show one with its decisions, or approve or reject one.",
    )
    statuses = ["pending", "approved", "rejected", "expired"]
    approvals.add_argument("--status", choices=statuses)
    approvals.add_argument("--json", action="store_true")
    asub_ = approvals.add_subparsers(dest="approvals_command", required=False, metavar="ACTION")
    alist = asub_.add_parser("list", help="every approval, newest first (the default)")
    alist.add_argument("--status", choices=statuses, default=argparse.SUPPRESS)
    alist.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    alist.set_defaults(handler=cmd_approvals)
    ashow = asub_.add_parser("show", help="one approval with its decisions (refused ones too) and notices")
    ashow.add_argument("id", metavar="ID")
    ashow.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    ashow.set_defaults(handler=cmd_approvals_show)
    for verb, what in (("approve", "approve"), ("reject", "reject")):
        decide = asub_.add_parser(
            verb,
            help=f"{what} a pending approval, as one of its approvers",
            description=f"{what.capitalize()} a pending approval. Checked like a Slack click: your group, "
            "separation of duties, quorum; a refusal is recorded and says why.",
        )
        decide.add_argument("id", metavar="ID")
        decide.add_argument(
            "--by", metavar="EMAIL", help="who decides, as the policy lists them (default: login)"
        )
        decide.add_argument(
            "--reason", metavar="TEXT", required=verb == "reject", help="why (required to reject)"
        )
        decide.set_defaults(handler=cmd_approvals_decide, decision=verb)
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
