"""`aims risks [list|show|reassess]`: the risk register, one system's history, a manual reassessment (8.2)."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aims.commands.common import (
    AddCommand,
    cli_settings,
    dump,
    empty,
    identity,
    listing_options,
    open_register,
    validated,
)
from aims.errors import CliError
from aims.tables import cell, show

if TYPE_CHECKING:
    from schemas.records import RiskAssessment, RiskVersion


def cmd_risks_list(args: argparse.Namespace) -> int:
    """`aims risks [list] [--system S]`: the risk register, with version trails for one system."""
    system = getattr(args, "system", None)
    register = open_register(cli_settings())
    with register.reader() as uow:
        filters = {"system": system} if system else {}
        risks = uow.risks.find(order_by="system", **filters)
        history = {r.id: uow.risk_versions.find(risk_id=r.id, order_by="version") for r in risks}
    if args.json:
        dump(
            {
                "risks": [r.model_dump(mode="json") for r in risks],
                "history": {k: [v.model_dump(mode="json") for v in vs] for k, vs in history.items()},
            }
        )
        return 0
    if not risks:
        return empty("risks", "risk assessment starts with the reassess-risk flow")
    show(
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
    register = open_register(cli_settings())
    with register.reader() as uow:
        if uow.systems.get(args.system) is None:
            raise CliError(f"no AI system {args.system!r} in the register; `aims systems` lists them")
        risks = uow.risks.find(system=args.system, order_by="category")
        assessments = uow.assessments.find(system=args.system, order_by="assessed_at", descending=True)
        history = {r.id: uow.risk_versions.find(risk_id=r.id, order_by="version") for r in risks}
    changes = {risk_id: version_changes(versions) for risk_id, versions in history.items()}
    if args.json:
        dump(
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
        show(
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
    if assessments:
        print(f"\nassessments ({len(assessments)}, newest first):")
        show(
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


def cmd_risks_reassess(args: argparse.Namespace) -> int:
    """`aims risks reassess SYSTEM`: ask the reassess-risk flow to assess a system now (8.2)."""
    import uuid

    from pydantic import ValidationError

    from schemas.events import RiskReassessmentRequestedEvent
    from schemas.payloads import ReassessmentReason, RiskReassessmentRequested, Text

    settings = cli_settings()
    by = identity(args.by, "who is asking", "NAME")
    details = {"requested_by": by}
    if args.note is not None:
        details["note"] = validated(Text, args.note, "--note")
    register = open_register(settings)
    with register.reader() as uow:
        if uow.systems.get(args.system) is None:
            raise CliError(
                f"no AI system {args.system!r} in the register; `aims systems` lists them "
                "(nothing was published)"
            )
    try:
        event = RiskReassessmentRequestedEvent(
            specversion="1.0",
            id=str(uuid.uuid4()),
            source="urn:aims:cli",
            time=datetime.now(UTC),
            data=RiskReassessmentRequested(
                ai_system=args.system,
                reason=ReassessmentReason.manual,
                evidence=f"cli:{by}",
                details=details,
            ),
        )
    except ValidationError as exc:
        from aims.emit import explain

        raise CliError(f"cannot request a reassessment of {args.system!r}:\n{explain(exc)}") from None

    from kafka.errors import KafkaError

    from aims.endpoints import resolve
    from events.producer import EventPublisher
    from schemas.signing import SigningKeyMissing

    endpoints = resolve(settings)
    try:
        publisher = EventPublisher(
            endpoints.kafka, settings.events_topic, signing_key=settings.event_signing_key
        )
        try:
            partition = publisher.publish(event)
        finally:
            publisher.close()
    except SigningKeyMissing as exc:
        raise CliError(str(exc)) from None
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


def add_commands(add: AddCommand) -> None:
    risks = add(
        "risks",
        cmd_risks_list,
        "The risk register: list it (the default), show one system's risks with their history, "
        "or ask for a reassessment.",
    )
    listing_options(risks, statuses=None)
    rsub = risks.add_subparsers(dest="risks_command", required=False, metavar="ACTION")
    rlist = rsub.add_parser("list", help="every risk (the default)", description="List the risk register.")
    listing_options(rlist, statuses=None, nested=True)
    rlist.set_defaults(handler=cmd_risks_list)
    one = rsub.add_parser(
        "show",
        help="one system's risks, assessments, version history and rationale",
        description="One system's current risks, its assessments newest first, what changed between "
        "versions of each risk and why the latest version scored as it did.",
    )
    one.add_argument("system", metavar="SYSTEM")
    one.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    one.set_defaults(handler=cmd_risks_show)
    reassess = rsub.add_parser(
        "reassess",
        help="ask the reassess-risk flow to assess a system now",
        description="Publish a risk-reassessment request (reason: manual) for an AI system in the register.",
    )
    reassess.add_argument("system", metavar="SYSTEM")
    reassess.add_argument("--by", metavar="NAME", help="who asks (default: your login name)")
    reassess.add_argument("--note", metavar="TEXT", help="why, for the reviewer")
    reassess.set_defaults(handler=cmd_risks_reassess)
