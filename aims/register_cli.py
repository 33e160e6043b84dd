"""`aims systems|risks|impact|approvals|incidents`, `aims audit verify`, `aims register upgrade`.

Every command reads through the same register interface the flows and the router write through.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from aims.errors import CliError
from aims.tables import cell, fields, render

if TYPE_CHECKING:
    from connectors.register.store import Register
    from flows.incidents.rules import Update
    from schemas.payloads import IncidentUpdateKind
    from schemas.records import ImpactAssessment, Incident, Record, RiskAssessment, RiskVersion
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

    from flows.approvals.commands import DecideApproval
    from flows.commands import Actor, Context, cli_text, handle
    from schemas.payloads import Decision, DecisionChannel, Name, Text
    from schemas.policy_file import PolicyError, load_policy

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
    command = DecideApproval(
        actor=Actor(approver, DecisionChannel.cli),
        approval_id=args.id,
        decision=Decision(args.decision),
        reason=reason,
    )
    verdict = handle(command, Context(register, policy, settings.events_topic))
    text, code = cli_text(verdict, args.id, approver, on_behalf="for")
    if code:
        raise CliError(text)
    print(text)
    if verdict.accepted:
        _send_now(settings, list(verdict.keys))
    return 0


def _send_now(
    settings: AimsSettings, keys: list[str], done: str = "sent to the waiting request-approval run"
) -> None:
    """Publish the staged events at once; if Kafka is away they are safe in the outbox and go later."""
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
    print(done)


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


# -- incidents (10.2, A.8.4, EU AI Act Art. 73) ----------------------------------------------------


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

    register = open_for_cli(_settings())
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
        return _empty("incidents", "an incident-reported event records one")
    print(
        render(
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
    )
    return 0


def cmd_incidents_show(args: argparse.Namespace) -> int:
    """`aims incidents show ID`: facts, clock, root cause, actions, every update, what blocks closing."""
    from flows.incidents.commands import load_state
    from flows.incidents.rules import close_blockers, stage_of
    from schemas.payloads import Name

    incident_id = _arg(Name, args.id, "ID")
    register = open_for_cli(_settings())
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
        _dump(
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
        print(
            render(
                [
                    (_short(a.id), a.description, a.owner, a.due, a.status, a.effectiveness, a.verified_by)
                    for a in actions
                ],
                ["action", "description", "owner", "due", "status", "effectiveness", "verified by"],
                [6, 40, 30, 10, 8, 40, 30],
            )
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


def _arg(kind: Any, value: str, flag: str) -> str:
    """`_validated`, and no NUL: PostgreSQL cannot store one, so it is refused here, not there."""
    if "\x00" in value:
        raise CliError(f"invalid {flag} {value!r}: must not contain a NUL character")
    return _validated(kind, value, flag)


def _who(by: str | None, what: str) -> str:
    """--by, or the login name when it is not given, checked as a name."""
    import getpass

    from schemas.payloads import Name

    if by is None:
        try:
            by = getpass.getuser()
        except (OSError, KeyError, ImportError):  # no login name here: the user must say
            raise CliError(f"cannot tell {what}: pass --by EMAIL") from None
    return _arg(Name, by, "--by")


def _text(value: str, flag: str, what: str) -> str:
    """A free text, stripped; blank is refused here, before anything is recorded."""
    from schemas.payloads import Text

    if not value.strip():
        raise CliError(f"invalid {flag} {value!r}: must not be empty; {what}")
    return _arg(Text, value.strip(), flag)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: str, flag: str) -> date:
    """A calendar date written YYYY-MM-DD, and only that."""
    example = (datetime.now(UTC).date() + timedelta(days=14)).isoformat()
    if not _ISO_DATE.fullmatch(value):
        raise CliError(f"invalid {flag} {value!r}: expected a date as YYYY-MM-DD, e.g. {example}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"invalid {flag} {value!r}: there is no such date (YYYY-MM-DD, e.g. {example})"
        ) from None


def _update_from(args: argparse.Namespace, kind: IncidentUpdateKind, by: str, at: datetime) -> Update:
    """The update the arguments describe, every one of them checked; raises CliError on bad input."""
    from flows.incidents.rules import Update
    from schemas.payloads import DecisionChannel, IncidentUpdateKind, Name, Text

    incident_id = _arg(Name, args.id, "ID")
    detail, action, owner, due = "", None, None, None
    if kind in (IncidentUpdateKind.contain, IncidentUpdateKind.action_done) and args.note is not None:
        detail = _arg(Text, args.note.strip(), "--note") if args.note.strip() else ""
    elif kind is IncidentUpdateKind.report:
        detail = _arg(Name, args.reference, "--reference")
    elif kind is IncidentUpdateKind.root_cause:
        detail = _text(args.root_cause, "--root-cause", "say what caused the incident")
    elif kind is IncidentUpdateKind.plan_action:
        detail = _text(args.description, "--description", "say what the action does")
        owner = _arg(Name, args.owner, "--owner")
        due = _iso_date(args.due, "--due")
    elif kind is IncidentUpdateKind.verify_action:
        detail = _text(args.effectiveness, "--effectiveness", "say what shows the action worked")
    if kind in (IncidentUpdateKind.action_done, IncidentUpdateKind.verify_action):
        action = _arg(Name, args.action, "ACTION")
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
    from schemas.policy_file import PolicyError, load_policy

    settings = _settings()
    kind = IncidentUpdateKind(args.kind)
    by = _who(args.by, "who updates the incident")
    update = _update_from(args, kind, by, datetime.now(UTC))
    try:
        policy = load_policy(settings.policy_file)
    except (PolicyError, OSError) as exc:
        raise CliError(f"cannot check who may update incidents: {exc}") from None
    register = open_for_cli(settings)
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
    _send_now(settings, list(verdict.keys), done="sent to the track-incident flow (Slack and Jira follow)")
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


class _ShowByDefault(argparse._SubParsersAction):
    """Subcommands whose first word may also be an ID: `aims incidents ID` means `aims incidents show ID`."""

    class _AnyWord:
        """The choices argparse checks: every command name, and any other word (an ID)."""

        def __init__(self, names: dict[str, argparse.ArgumentParser]) -> None:
            self.names = names

        def __contains__(self, value: object) -> bool:
            return isinstance(value, str)

        def __iter__(self) -> Any:
            return iter(self.names)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse checks the first word against `choices` before calling the action.
        self.choices = cast("dict[str, Any]", self._AnyWord(self._name_parser_map))

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        import difflib

        if values and values[0] not in self._name_parser_map:
            near = difflib.get_close_matches(values[0], list(self._name_parser_map), n=1, cutoff=0.75)
            if near:
                choices = ", ".join(self._name_parser_map)
                raise argparse.ArgumentError(
                    self, f"invalid choice: {values[0]!r} (did you mean {near[0]!r}? choose from {choices})"
                )
            values = ["show", *values]
        super().__call__(parser, namespace, values, option_string)


def _incident_commands(add: AddCommand) -> None:
    incidents = add(
        "incidents",
        cmd_incidents,
        "Incidents (10.2, A.8.4, EU AI Act Art. 73): list them with the time left to report them "
        "(the default), show one, or record its containment, report, root cause, actions and closing.",
    )
    incidents.add_argument("--open", action="store_true", help="only incidents not closed")
    incidents.add_argument("--json", action="store_true")
    isub = incidents.add_subparsers(
        dest="incidents_command", required=False, metavar="ACTION", action=_ShowByDefault
    )
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

    def update(name: str, kind: str, help_text: str) -> argparse.ArgumentParser:
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
        return p

    contain = update("contain", "contain", "record that the incident is contained")
    contain.add_argument("--note", metavar="TEXT", help="how it was contained")
    report = update("report", "report", "record the Art. 73 report to the authority; stops the clock")
    report.add_argument(
        "--reference", metavar="REF", required=True, help="the authority's reference (e.g. its case number)"
    )
    cause = update("cause", "root-cause", "record the root cause (10.2)")
    cause.add_argument("--root-cause", metavar="TEXT", required=True, help="what caused the incident")
    action = update("action", "plan-action", "plan a corrective action; prints its id (A1, A2 …)")
    action.add_argument("--description", metavar="TEXT", required=True, help="what the action does")
    action.add_argument("--owner", metavar="EMAIL", required=True, help="who does it")
    action.add_argument("--due", metavar="YYYY-MM-DD", required=True, help="by when")
    done = update("done", "action-done", "mark a corrective action done (its owner may too)")
    done.add_argument("action", metavar="ACTION", help="the action: A1, A2 … or its full id")
    done.add_argument("--note", metavar="TEXT", help="what was done")
    verify = update("verify", "verify-action", "record that a done action was effective (not by its owner)")
    verify.add_argument("action", metavar="ACTION", help="the action: A1, A2 … or its full id")
    verify.add_argument("--effectiveness", metavar="TEXT", required=True, help="what shows the action worked")
    update("close", "close", "close the incident once nothing blocks it")


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
    _incident_commands(add)
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
