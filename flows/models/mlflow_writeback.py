"""What MLflow should say of the versions AIMS governs: tags and the approved alias (issue 21).

After each risk assessment and approval decision of an AI system, every version of it that came from
MLflow (its `ModelVersion.event_key` is the MLflow gateway's) gets, when the policy's
`mlflow.write_back` asks for them:

- tags: `aims.assessment` (the governing assessment's id), `aims.risk.highest_residual`, `aims.approval`
  (approved, pending, rejected, expired, not-required, or none before any assessment) and links to
  the assessment's run and the approval (its Jira issue, else its run) where the settings know the
  Prefect UI and Jira;
- the approved alias (`write_back.approved_alias`) on the newest *cleared* version of each registered
  model, and on none of them while none is cleared (a later assessment blocks the system).

A version's governing assessment is the latest of its own (evidence = its register id) and the
system's assessments about no particular version (a failed check, drift, an incident, the schedule, a
person): another version's assessment says nothing of this one. A version is cleared when that
assessment exists, its approval (if it asked one) was granted, and no risk approval of the system is
pending now. `RiskAssessment.blocked` says whether one was pending when it was assessed: frozen, so
it stays true after the approval it waited for was granted; the live pending list replaces it here.
The gateway's finding (`mlflow_intake.not_cleared`) applies the same rule, so the alias this sets
never raises a finding, and the same alias set by hand before approval does.

Everything is recomputed from the register each time, never from the event that prompted it: runs
in any order, repeated or concurrent, converge on the same state. No Prefect or Kafka, and no I/O of
its own: the register's unit of work and MLflow's registry (`Writer`) are handed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from schemas.records import Approval, ModelVersion, RiskAssessment

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas.mlflow import MlflowWriteBack
    from schemas.settings import AimsSettings

TAG_ASSESSMENT: Final = "aims.assessment"
TAG_RESIDUAL: Final = "aims.risk.highest_residual"
TAG_APPROVAL: Final = "aims.approval"
TAG_ASSESSMENT_LINK: Final = "aims.assessment.url"
TAG_APPROVAL_LINK: Final = "aims.approval.url"
# The approval decisions that hold an AI system's deployment while pending (flows/risk/reassess_risk.py).
RISK_DECISIONS: Final = frozenset({"risk-acceptance", "risk-treatment"})
MLFLOW_EVENT_PREFIX: Final = "urn:aims:gateway:mlflow#"
NO_APPROVAL: Final = "not-required"


@dataclass(frozen=True)
class Links:
    """Where people can see an assessment or approval; None where the settings do not say."""

    prefect_ui: str | None = None
    jira: str | None = None

    def run(self, flow_run_id: str | None) -> str | None:
        if self.prefect_ui is None or not flow_run_id:
            return None
        return f"{self.prefect_ui.rstrip('/')}/runs/flow-run/{flow_run_id}"

    def issue(self, key: str | None) -> str | None:
        if self.jira is None or not key:
            return None
        return f"{self.jira.rstrip('/')}/browse/{key}"


def links_of(settings: AimsSettings) -> Links:
    """The Prefect UI is its API's address without /api (as `aims status` shows it); Jira's site."""
    api = settings.prefect_api_url
    return Links(prefect_ui=api.rstrip("/").removesuffix("/api") if api else None, jira=settings.jira_url)


@dataclass(frozen=True)
class VersionPlan:
    """What one MLflow version should carry."""

    version_id: str
    name: str
    version: str
    tags: dict[str, str]
    # Why it may not go live, or None when it may.
    not_cleared: str | None


@dataclass(frozen=True)
class AliasPlan:
    """Where a registered model's approved alias should point: `version`, or nowhere (None)."""

    name: str
    alias: str
    version: str | None
    # The model's versions AIMS governs: the alias is taken only from one of these.
    ours: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Plan:
    versions: tuple[VersionPlan, ...]
    aliases: tuple[AliasPlan, ...]


def from_mlflow(version: ModelVersion) -> bool:
    return (version.event_key or "").startswith(MLFLOW_EVENT_PREFIX)


def governing(
    assessments: Iterable[RiskAssessment], version_id: str, version_ids: frozenset[str]
) -> RiskAssessment | None:
    """The latest assessment that speaks of `version_id`: its own, or one about no version."""
    relevant = [a for a in assessments if a.evidence == version_id or a.evidence not in version_ids]
    # assessed_at, then id: two assessments at the same instant still give one answer in any order.
    return max(relevant, key=lambda a: (a.assessed_at, a.id), default=None)


def approval_status(assessment: RiskAssessment | None, approvals: Mapping[str, Approval]) -> str:
    if assessment is None:
        return "none"
    if assessment.approval_id is None:
        return NO_APPROVAL
    approval = approvals.get(assessment.approval_id)
    return approval.status if approval is not None else "missing"


def why_not_cleared(
    version_id: str, assessment: RiskAssessment | None, status: str, pending: Sequence[str]
) -> str | None:
    """Why the version may not go live, or None. `pending`: the system's pending risk approvals now."""
    if assessment is None:
        return f"version {version_id} has no risk assessment"
    if status not in {"approved", NO_APPROVAL}:
        return f"the approval {assessment.approval_id} of version {version_id} is {status}, not approved"
    if pending:
        return (
            f"risk assessment {assessment.id} of version {version_id} blocks its deployment: "
            f"approval {', '.join(sorted(pending))} of {assessment.system} is pending"
        )
    return None


def tags_for(
    assessment: RiskAssessment | None, status: str, approvals: Mapping[str, Approval], links: Links
) -> dict[str, str]:
    if assessment is None:
        return {TAG_APPROVAL: status}
    tags = {
        TAG_ASSESSMENT: assessment.id,
        TAG_RESIDUAL: assessment.highest_residual.value,
        TAG_APPROVAL: status,
    }
    if (url := links.run(assessment.flow_run_id)) is not None:
        tags[TAG_ASSESSMENT_LINK] = url
    approval = approvals.get(assessment.approval_id or "")
    if approval is not None:
        url = links.issue(approval.jira_issue) or links.run(approval.flow_run_id)
        if url is not None:
            tags[TAG_APPROVAL_LINK] = url
    return tags


def pending_risk_approvals(approvals: Iterable[Approval]) -> list[str]:
    return sorted(a.id for a in approvals if a.status == "pending" and a.requested_decision in RISK_DECISIONS)


def plan(
    versions: Sequence[ModelVersion],
    assessments: Sequence[RiskAssessment],
    approvals: Sequence[Approval],
    approved_alias: str | None,
    links: Links = Links(),
) -> Plan:
    """The MLflow state of one AI system's versions, from its register rows (all of the system's)."""
    by_id = {a.id: a for a in approvals}
    pending = pending_risk_approvals(approvals)
    ids = frozenset(v.id for v in versions)
    planned = []
    for v in sorted((v for v in versions if from_mlflow(v)), key=lambda v: (v.model_name, _number(v))):
        assessment = governing(assessments, v.id, ids)
        status = approval_status(assessment, by_id)
        planned.append(
            VersionPlan(
                v.id,
                v.model_name,
                v.version,
                tags_for(assessment, status, by_id, links),
                why_not_cleared(v.id, assessment, status, pending),
            )
        )
    aliases = []
    if approved_alias is not None:
        for name in sorted({p.name for p in planned}):
            mine = [p for p in planned if p.name == name]
            cleared = [p for p in mine if p.not_cleared is None]
            newest = max(cleared, key=lambda p: int(p.version)).version if cleared else None
            aliases.append(AliasPlan(name, approved_alias, newest, frozenset(p.version for p in mine)))
    return Plan(tuple(planned), tuple(aliases))


@dataclass(frozen=True)
class AliasStep:
    """One change to make to an alias: set it on `version`, or delete it (version None)."""

    name: str
    alias: str
    version: str | None
    why: str


def alias_step(wanted: AliasPlan, now: Mapping[str, str]) -> AliasStep | None:
    """The change that brings the alias (`now`: the model's aliases → versions) to `wanted`; None
    when it is there already. An alias on a version AIMS does not govern is taken from no one."""
    holder = now.get(wanted.alias)
    if wanted.version is not None:
        if holder == wanted.version:
            return None
        return AliasStep(wanted.name, wanted.alias, wanted.version, "newest cleared version")
    if holder is None:
        return None
    if holder not in wanted.ours:
        return None
    return AliasStep(wanted.name, wanted.alias, None, f"version {holder} is not cleared")


def tag_changes(wanted: Mapping[str, str], now: Mapping[str, str]) -> dict[str, str]:
    """The tags to set: those missing or different (setting one again is harmless, but each set is a
    webhook delivery and a register row on the way back)."""
    return {k: v for k, v in wanted.items() if now.get(k) != v}


def _number(version: ModelVersion) -> int:
    return int(version.version) if version.version.isdigit() else -1


class Writer(Protocol):
    """MLflow's registry as the write-back uses it (connectors.mlflow_registry.MlflowRegistry)."""

    def version_tags(self, name: str, version: str) -> dict[str, str]: ...

    def aliases(self, name: str) -> dict[str, str]: ...

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...


def plan_of(uow: UnitOfWork, system: str, policy: MlflowWriteBack, links: Links) -> Plan | str:
    """The plan of the system's versions from the register, or why nothing is written."""
    if not policy.tags and policy.approved_alias is None:
        return "the policy's mlflow.write_back sets neither tags nor an approved alias"
    versions = uow.model_versions.find(system=system)
    if not any(from_mlflow(v) for v in versions):
        return f"no version of {system} came from MLflow"
    found = plan(
        versions,
        uow.assessments.find(system=system),
        uow.approvals.find(system=system),
        policy.approved_alias,
        links,
    )
    return found if policy.tags else Plan((), found.aliases)


def write(mlflow: Writer, wanted: Plan, dry_run: bool = False) -> dict[str, list[str]]:
    """Bring MLflow to `wanted` (reading first, so a repeat writes nothing); what was (or, dry, would
    be) changed."""
    tags_set: list[str] = []
    for version in wanted.versions:
        changes = tag_changes(version.tags, mlflow.version_tags(version.name, version.version))
        for key, value in sorted(changes.items()):
            if not dry_run:
                mlflow.set_version_tag(version.name, version.version, key, value)
            tags_set.append(f"{version.version_id} {key}={value}")
    aliases: list[str] = []
    for alias in wanted.aliases:
        step = alias_step(alias, mlflow.aliases(alias.name))
        if step is None:
            continue
        if step.version is None:
            if not dry_run:
                mlflow.delete_alias(step.name, step.alias)
            aliases.append(f"{step.name} @{step.alias} taken away ({step.why})")
        else:
            if not dry_run:
                mlflow.set_alias(step.name, step.alias, step.version)
            aliases.append(f"{step.name} @{step.alias} → version {step.version} ({step.why})")
    return {"tags_set": tags_set, "aliases": aliases}


def write_back_headline(outcome: Mapping[str, Any]) -> str:
    """What a write-back changed in MLflow, in one sentence, first in the run's artifact."""
    cleared, versions = len(outcome["cleared"]), len(outcome["versions"])
    changed = [f"{len(outcome['tags_set'])} tag(s) set"] if outcome["tags_set"] else ["no tag changed"]
    changed += [f"alias {a}" for a in outcome["aliases_changed"]]
    return f"{outcome['ai_system']}: {cleared} of {versions} MLflow version(s) cleared; " + ", ".join(changed)


def outcome_of(system: str, wanted: Plan, written: Mapping[str, list[str]]) -> dict[str, Any]:
    """The evidence of a write-back: what the register said and what was changed in MLflow."""
    return {
        "ai_system": system,
        "written": True,
        "versions": [v.version_id for v in wanted.versions] or [a.name for a in wanted.aliases],
        "cleared": [v.version_id for v in wanted.versions if v.not_cleared is None],
        "not_cleared": [v.not_cleared for v in wanted.versions if v.not_cleared is not None],
        "alias_targets": {f"{a.name}@{a.alias}": a.version for a in wanted.aliases},
        "tags_set": written["tags_set"],
        "aliases_changed": written["aliases"],
    }
