"""Reassess an AI system's risks from the evidence in the register, and gate what got worse.

One run per risk-reassessment-requested event, whatever asked for it: a new model version (which also
opens its impact assessment, 6.1.4), a failed data-quality check or drift, an incident, the schedule,
or a person (`aims risks reassess`). In one unit of work the run gathers the evidence, scores every
Annex C risk (`flows.risk.scoring`), writes a new version of each risk, the assessment with the
evidence it used, one approval request when a risk crossed a gate, and the risk-assessed event (in
the outbox). The assessment's id derives from the request, so a redelivered or retried request finds
it done and writes nothing again: one assessment, one approval request.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows.approvals.commands import requested_event
from flows.approvals.rules import submitters
from flows.evidence import (
    actor,
    artifact_key,
    evidence_ids,
    evidence_record,
    load_policy,
    names_its_run,
    register,
    run_id,
    run_settings,
    send_outbox,
)
from flows.risk.scoring import (
    CATEGORIES,
    Gate,
    IncidentFact,
    RiskEvidence,
    RiskScore,
    gates,
    highest,
    score,
)
from flows.text import markdown_text
from schemas.events import AimsEvent, RiskAssessedEvent, RiskReassessmentRequestedEvent
from schemas.payloads import AssessedRisk, ReassessmentReason, RiskAssessed, RiskLevel, Verdict
from schemas.records import Approval, ImpactAssessment, Risk, RiskAssessment, RiskVersion

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas.policy import Policy

FLOW = "reassess-risk"
# 6.1.2/8.2 assessment, 6.1.3/8.3 treatment, 6.1.4/A.5.2 impact assessment, A.6.2.8 event logs
RISK_DECISIONS = ("risk-acceptance", "risk-treatment")
# The source of the approval requests this flow announces (their run's idempotency key is source#id).
REQUEST_SOURCE = f"urn:aims:{FLOW}"
LEVEL_MARK = {RiskLevel.low: "🟩", RiskLevel.medium: "🟨", RiskLevel.high: "🟧", RiskLevel.critical: "🟥"}
# Checks that judged the data (not baselines, superseded versions or unreadable inputs).
CHECKED = {Verdict.passed, Verdict.failed, Verdict.warning}
ASSESSED_FIELDS = ("category", "likelihood", "impact", "inherent", "residual", "previous")


def assessment_id(event: RiskReassessmentRequestedEvent) -> str:
    return "ra-" + hashlib.sha256(event.dedup_key.encode()).hexdigest()[:16]


def risk_id(system: str, category: str) -> str:
    return f"{system}:{category}"


def as_of(event: RiskReassessmentRequestedEvent) -> datetime:
    if event.time is None:
        return datetime.now(UTC)
    return event.time.replace(tzinfo=UTC) if event.time.tzinfo is None else event.time.astimezone(UTC)


# -- evidence -------------------------------------------------------------------------------------


def gather_evidence(
    uow: UnitOfWork, event: RiskReassessmentRequestedEvent, policy: Policy, as_of: datetime
) -> RiskEvidence | None:
    """What the register knows about the system; None when the system is not in the inventory."""
    request = event.data
    system = uow.systems.get(request.ai_system)
    if system is None:
        return None
    since = as_of - timedelta(days=policy.risk.evidence_window_days)
    versions = uow.model_versions.find(system=system.name, order_by="registered_at")
    current = next((v for v in versions if v.id == request.evidence), versions[-1] if versions else None)
    previous = None
    if current is not None:
        earlier = [v for v in versions if v.registered_at < current.registered_at and v.id != current.id]
        previous = earlier[-1] if earlier else None
    datasets = sorted({name for v in versions for name in v.dataset_names})
    unpinned = sorted(current.unpinned_datasets) if current else []

    checks, failed, drift_critical, drift_warning = 0, [], [], []
    for dataset in datasets:
        latest_drift: tuple[datetime, str, dict[str, Any]] | None = None
        for version in uow.dataset_versions.find(dataset=dataset, order_by="received_at"):
            for result in uow.data_quality.find(dataset_version_id=version.id, order_by="checked_at"):
                if result.checked_at < since or result.verdict not in CHECKED:
                    continue
                checks += 1
                if result.verdict == Verdict.failed:
                    failed.append(f"{dataset}@{version.version}")
                if latest_drift is None or result.checked_at >= latest_drift[0]:
                    latest_drift = (result.checked_at, f"{dataset}@{version.version}", result.drift)
        # Drift that a later version no longer shows is no evidence any more: the latest check counts.
        if latest_drift is not None:
            _, label, drift = latest_drift
            for column, finding in sorted(drift.items()):
                psi = f" PSI {finding['psi']}" if "psi" in finding else ""
                if finding.get("level") == "critical":
                    drift_critical.append(f"{label}.{column}{psi}")
                elif finding.get("level") == "warning":
                    drift_warning.append(f"{label}.{column}{psi}")

    incidents = [
        IncidentFact(id=i.id, category=i.category, severity=i.severity)
        for i in uow.incidents.find(system=system.name, order_by="detected_at")
        if i.detected_at >= since
    ]
    open_ias = [ia.id for ia in uow.impact_assessments.find(system=system.name, status="open", order_by="id")]
    return RiskEvidence(
        system=system.name,
        reason=request.reason,
        risk_tier=system.risk_tier,
        window_days=policy.risk.evidence_window_days,
        datasets=datasets,
        unpinned_datasets=unpinned,
        checks=checks,
        failed_checks=failed,
        drift_critical=drift_critical,
        drift_warning=drift_warning,
        incidents=incidents,
        model_version=current.version if current else None,
        previous_version=previous.version if previous else None,
        open_impact_assessments=open_ias,
    )


# -- recording ------------------------------------------------------------------------------------


def request_approval(
    uow: UnitOfWork,
    aid: str,
    system: str,
    crossed: list[Gate],
    scores: list[RiskScore],
    policy: Policy,
    now: datetime,
) -> Approval:
    """One pending approval for everything this assessment gated, at the highest level among them."""
    level = highest([g.level for g in crossed])
    rule, sla = policy.approvals[level], policy.slas[level]
    residual = {s.category: s.residual_level for s in scores}
    still_above = [g.category for g in crossed if policy.needs_approval(residual[g.category])]
    versions = uow.model_versions.find(system=system, order_by="registered_at")
    owner = versions[-1].submitted_by if versions else None
    approval = Approval(
        id=f"approval-{aid}",
        subject=f"risk-assessment:{aid}",
        system=system,
        # Accept what the treatment leaves above the appetite; otherwise approve the treatment plan.
        requested_decision="risk-acceptance" if still_above else "risk-treatment",
        risk_level=level,
        approver_group=",".join(rule.groups),
        quorum=rule.quorum,
        context={
            "assessment_id": aid,
            "groups": list(rule.groups),
            "distinct_groups": rule.distinct_groups,
            "separation_of_duties": rule.separation_of_duties,
            # Separation of duties: whoever submitted the model may not approve its risks; a team
            # is its members, and an owner the policy does not know costs one more approver.
            "submitted_by": owner,
            **submitters(policy, owner).context(),
            "risks": [
                {
                    "category": g.category,
                    "previous": g.previous.value if g.previous else None,
                    "inherent": g.level.value,
                    "residual": residual[g.category].value,
                    "why": g.why,
                }
                for g in crossed
            ],
        },
        requested_by=actor(FLOW),
        requested_at=now,
        due_at=now + timedelta(hours=sla.decision_hours),
        flow_run_id=run_id(),
    )
    uow.approvals.add(approval)
    return approval


def write_versions(
    uow: UnitOfWork, aid: str, evidence: RiskEvidence, scores: list[RiskScore], policy: Policy, now: datetime
) -> None:
    owner = uow.systems.one(evidence.system).owner
    next_review = (now + timedelta(days=policy.risk.reassessment_days)).date()
    for s in scores:
        rid = risk_id(evidence.system, s.category)
        current = uow.risks.get(rid)
        number = current.version + 1 if current else 1
        fields = {
            "likelihood": s.likelihood,
            "impact": s.impact,
            "inherent_level": s.inherent_level,
            "treatment": s.treatment,
            "controls": s.controls,
            "residual_level": s.residual_level,
        }
        # A concurrent assessment of the same system loses here (unique risk_id, version) and retries.
        uow.risk_versions.add(
            RiskVersion(
                id=f"{rid}@v{number}",
                risk_id=rid,
                version=number,
                rationale=[step.model_dump() for step in s.rationale],
                assessed_by=actor(FLOW),
                assessed_at=now,
                assessment_id=aid,
                **fields,
            )
        )
        if current is None:
            uow.risks.add(
                Risk(
                    id=rid,
                    system=evidence.system,
                    category=s.category,
                    title=s.title,
                    owner=owner,
                    next_review=next_review,
                    version=1,
                    updated_at=now,
                    **fields,
                )
            )
        else:
            uow.risks.update(rid, next_review=next_review, version=number, updated_at=now, **fields)


def assessed_event(assessment: RiskAssessment, risks: list[dict[str, Any]]) -> RiskAssessedEvent:
    return RiskAssessedEvent(
        specversion="1.0",
        id=f"assessed:{assessment.id}",
        source=f"urn:aims:{FLOW}",
        time=assessment.assessed_at,
        data=RiskAssessed(
            ai_system=assessment.system,
            assessment_id=assessment.id,
            reason=assessment.reason,
            risks=[AssessedRisk(**{k: r[k] for k in ASSESSED_FIELDS}) for r in risks],
            highest_inherent=assessment.highest_inherent,
            highest_residual=assessment.highest_residual,
            blocked=assessment.blocked,
            approval_id=assessment.approval_id,
        ),
    )


def assessed_risks(uow: UnitOfWork, assessment: RiskAssessment) -> list[dict[str, Any]]:
    """The assessment's risk versions, with the level each had before; read back from the register."""
    rows = []
    for category in CATEGORIES:
        rid = risk_id(assessment.system, category.name)
        mine = uow.risk_versions.find(risk_id=rid, assessment_id=assessment.id)
        if not mine:
            continue
        version = mine[0]
        before = uow.risk_versions.find(risk_id=rid, version=version.version - 1)
        rows.append(
            {
                "category": category.name,
                "title": category.title,
                "likelihood": version.likelihood,
                "impact": version.impact,
                "inherent": version.inherent_level.value,
                "residual": version.residual_level.value,
                "previous": before[0].inherent_level.value if before else None,
                "version": version.version,
                "controls": version.controls,
                "rationale": version.rationale,
            }
        )
    return rows


@task(name="assess-risks")
def approval_summary(assessment: RiskAssessment) -> str:
    return (
        f"Risk assessment {assessment.id} of {assessment.system} ({assessment.reason}): highest inherent "
        f"{assessment.highest_inherent.value}, residual {assessment.highest_residual.value}; "
        f"gated: {', '.join(assessment.gated)}."
    )


def assess(event: RiskReassessmentRequestedEvent) -> dict[str, Any]:
    """Gather, score and record in one unit of work; return what was assessed and the outbox keys."""
    from connectors.register.outbox import stage

    policy = load_policy()
    aid = assessment_id(event)
    request = event.data
    # As of the request, not of this attempt: a retry computes the same window and review date.
    now = as_of(event)
    with register().unit_of_work(actor(FLOW)) as uow:
        assessment = uow.assessments.get(aid)
        if assessment is None:
            new_version = request.reason is ReassessmentReason.new_model_version
            if new_version and uow.model_versions.get(request.evidence):
                uow.impact_assessments.add_if_absent(
                    ImpactAssessment(
                        id=f"ia:{request.evidence}",
                        system=request.ai_system,
                        model_version_id=request.evidence,
                        due=(now + timedelta(days=policy.risk.impact_assessment_days)).date(),
                        opened_at=now,
                    )
                )
            evidence = gather_evidence(uow, event, policy, now)
            if evidence is None:
                outcome = {
                    "ai_system": request.ai_system,
                    "assessed": False,
                    "why": "not in the AI system inventory: register a model version of it first",
                }
                uow.evidence.add_if_absent(evidence_record(FLOW, event, outcome))
                return {"outcome": outcome, "risks": [], "keys": []}
            scores = score(evidence, policy)
            previous = {r.category: r.inherent_level for r in uow.risks.find(system=evidence.system)}
            crossed = gates(previous, scores, policy)
            write_versions(uow, aid, evidence, scores, policy, now)
            approval = None
            if crossed:
                approval = request_approval(uow, aid, evidence.system, crossed, scores, policy, now)
            pending = [
                a
                for a in uow.approvals.find(system=evidence.system, status="pending")
                if a.requested_decision in RISK_DECISIONS
            ]
            assessment = RiskAssessment(
                id=aid,
                system=evidence.system,
                reason=request.reason.value,
                trigger=event.dedup_key,
                evidence=request.evidence,
                inputs=evidence.model_dump(mode="json"),
                highest_inherent=highest([s.inherent_level for s in scores]),
                highest_residual=highest([s.residual_level for s in scores]),
                gated=[g.category for g in crossed],
                approval_id=approval.id if approval else None,
                blocked=bool(pending),
                assessed_by=actor(FLOW),
                assessed_at=now,
                flow_run_id=run_id(),
            )
            uow.assessments.add(assessment)
        risks = assessed_risks(uow, assessment)
        outcome = {
            "ai_system": assessment.system,
            "assessed": True,
            "assessment_id": assessment.id,
            "reason": assessment.reason,
            "highest_inherent": assessment.highest_inherent.value,
            "highest_residual": assessment.highest_residual.value,
            "gated": ", ".join(assessment.gated) or "none",
            "approval_id": assessment.approval_id,
            "blocked": assessment.blocked,
        }
        uow.evidence.add_if_absent(evidence_record(FLOW, event, outcome))
        announce: list[AimsEvent] = [assessed_event(assessment, risks)]
        if assessment.approval_id and (approval := uow.approvals.get(assessment.approval_id)):
            announce.append(requested_event(approval, REQUEST_SOURCE, approval_summary(assessment)))
        keys = stage(uow, announce, run_settings().events_topic)
    return {"outcome": outcome, "risks": risks, "keys": keys, "scales": _scales(policy)}


def _scales(policy: Policy) -> dict[str, Any]:
    return {
        "likelihood": [lvl.name for lvl in policy.risk.likelihood],
        "impact": [lvl.name for lvl in policy.risk.impact],
        "levels": {
            f"{li}x{im}": policy.level_for(li, im).value
            for li in range(1, len(policy.risk.likelihood) + 1)
            for im in range(1, len(policy.risk.impact) + 1)
        },
    }


# -- the artifact ---------------------------------------------------------------------------------


def risk_markdown(outcome: dict[str, Any], risks: list[dict[str, Any]], scales: dict[str, Any]) -> str:
    """The risk table and a likelihood × impact heat map of inherent levels.

    Names, titles, categories and reasons come from events: every one is escaped (`_cell`), and none
    is put in a code span, which a backtick in it would close.
    """
    system = outcome["ai_system"]
    blocked = "**deployment blocked** until approval " if outcome["blocked"] else "not blocked "
    lines = [
        f"# Risk assessment of {_cell(system)}",
        "",
        f"Assessment {_cell(outcome['assessment_id'])} ({_cell(outcome['reason'])}): highest inherent "
        f"**{_cell(outcome['highest_inherent'])}**, residual **{_cell(outcome['highest_residual'])}**; "
        f"{blocked}{_cell(outcome['approval_id']) if outcome['approval_id'] else ''}.",
        "",
        "| risk | L × I | inherent | was | residual | controls | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in risks:
        moved = [s for s in r["rationale"][1:] if "residual" not in s["effect"]]
        why = "; ".join(f"{s['rule'].split(':')[0]} ({s['evidence']}) → {s['effect']}" for s in moved)
        was = r["previous"] or "new"
        lines.append(
            f"| {_cell(r['title'])} ({_cell(r['category'])}) | {r['likelihood']} × {r['impact']} | "
            f"{LEVEL_MARK[RiskLevel(r['inherent'])]} {_cell(r['inherent'])} | {_cell(was)} | "
            f"{_cell(r['residual'])} | {_cell(', '.join(r['controls']))} | {_cell(why) or 'baseline'} |"
        )
    likelihood, impact = scales["likelihood"], scales["impact"]
    header = " | ".join(f"{i + 1} {_cell(name)}" for i, name in enumerate(impact))
    rule = "|---" * (len(impact) + 1) + "|"
    lines += ["", "## Heat map (inherent)", "", f"| likelihood \\ impact | {header} |", rule]
    for li in range(len(likelihood), 0, -1):
        cells = []
        for im in range(1, len(impact) + 1):
            here = [r["category"] for r in risks if r["likelihood"] == li and r["impact"] == im]
            mark = LEVEL_MARK[RiskLevel(scales["levels"][f"{li}x{im}"])]
            cells.append(f"{mark} **{_cell(', '.join(here))}**" if here else mark)
        lines.append(f"| {li} {_cell(likelihood[li - 1])} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "🟩 low · 🟨 medium · 🟧 high · 🟥 critical",
        "",
        f"Evidence for: {', '.join(evidence_ids(FLOW))}",
    ]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    # Shown as text on one line: no link, image, HTML or emphasis, and no forged table row.
    return markdown_text(str(text))


def risk_headline(outcome: dict[str, Any]) -> str:
    """The assessment in one sentence, first in its artifact."""
    head = (
        f"{outcome['ai_system']}: highest residual risk {outcome['highest_residual']}"
        f" (inherent {outcome['highest_inherent']})"
    )
    if outcome.get("gated") and outcome["gated"] != "none":
        head += f"; past the gate: {outcome['gated']}"
    if outcome.get("blocked"):
        return (
            head + f"; deployment blocked until approval {outcome.get('approval_id') or 'pending'} is granted"
        )
    return head + "; not blocked"


@task(name="publish-risk-table")
def publish_risk_table(result: dict[str, Any]) -> None:
    outcome = result["outcome"]
    create_markdown_artifact(
        key=artifact_key(FLOW, outcome["ai_system"]),
        markdown=risk_markdown(outcome, result["risks"], result["scales"]),
        description=_cell(risk_headline(outcome)),
    )


@flow(
    name=FLOW,
    description="Reassess an AI system's risks from the register's evidence; request approval past a gate.",
    flow_run_name=names_its_run(FLOW),
    retries=2,
    retry_delay_seconds=3,
)
def reassess_risk(event: RiskReassessmentRequestedEvent) -> dict[str, Any]:
    result = assess(event)
    send_outbox(FLOW, result["keys"])
    if result["outcome"]["assessed"]:
        publish_risk_table(result)
    outcome: dict[str, Any] = result["outcome"]
    return outcome
