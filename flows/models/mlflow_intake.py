"""A new MLflow model version → the model-version-registered payload, or an unmapped candidate.

What MLflow knows of a version is its webhook (name, version, source, run, tags, description) and what
its REST API adds (`VersionFacts`: who registered it, the registered model's tags, the run's logged
datasets). The policy's `mlflow` section says what that is in AIMS terms:

- the AI system: the policy's mapping of the registered-model name wins; else the system tag on the
  version, else on the registered model. A tag is set by whoever may edit the model, the policy is
  reviewed: where they disagree the policy wins and the disagreement is noted.
- the owner (the submitter, kept out of approving it): the person the policy pins the MLflow user
  who registered it to (`people.<name>.mlflow`), else that user name as MLflow gives it (an e-mail
  address is then the person of that address; any other name makes the approval ask one more
  approver, flows/approvals/rules.submitters). MLflow without authentication records no user, and
  then the policy's owner of the model answers for it.
- the training datasets: the run's logged inputs whose context is training (or unstated), each at its
  digest; one logged from a location under none of the policy's data sources is kept (it was trained
  on) and noted, since its quality cannot be checked.

A version that cannot become a complete payload (no system, no owner, no run, a name our contract
refuses) is an `Unmapped` candidate with every reason, to be recorded and shown, never dropped.

Setting a deployment alias (the policy's `deployment_aliases`) on a version that is not cleared
(no risk assessment of it, an approval not granted, or one of its system's pending) is an
incident-grade finding: an incident is reported, so it is triaged, tracked and reviewed like any
other (`deployment_finding`).

Pure: no Prefect, no Kafka, no I/O of its own (the register is handed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from flows.models.mlflow_writeback import (
    approval_status,
    governing,
    pending_risk_approvals,
    why_not_cleared,
)
from schemas.events import IncidentReportedEvent, ModelVersionRegisteredEvent
from schemas.mlflow import MlflowIntake, ModelVersionCreated, VersionFacts
from schemas.payloads import (
    DatasetRef,
    IncidentCategory,
    IncidentReported,
    ModelVersionRegistered,
    Severity,
)
from schemas.people import by_mlflow, by_name

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas.people import Person

# The CloudEvents source of what the gateway makes of MLflow's deliveries.
SOURCE = "urn:aims:gateway:mlflow"
REPORTER = "mlflow-webhook"

# Logged input contexts that are no training data (mlflow.data.context).
NOT_TRAINING = frozenset({"eval", "evaluation", "test", "testing", "validation", "inference"})


@dataclass(frozen=True)
class Onboarding:
    """The payload to publish, and what the intake noticed on the way (for the record, not refusals)."""

    payload: ModelVersionRegistered
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unmapped:
    """A version the intake cannot make a complete payload of, with every reason why."""

    name: str
    version: str
    ai_system: str | None
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = ()


def ai_system_of(
    created: ModelVersionCreated, facts: VersionFacts, policy: MlflowIntake
) -> tuple[str | None, list[str]]:
    """The AI system and what was noticed finding it."""
    tag = policy.system_tag
    tagged = (created.tags.get(tag) or facts.model_tags.get(tag) or "").strip() or None
    mapped = policy.mapping(created.name)
    if mapped is None:
        return tagged, []
    notes = []
    if tagged is not None and tagged != mapped.ai_system:
        notes.append(
            f"tag {tag} names AI system {tagged!r}; the policy maps the model to {mapped.ai_system!r}"
        )
    return mapped.ai_system, notes


def training_datasets(facts: VersionFacts, policy: MlflowIntake) -> tuple[list[DatasetRef], list[str]]:
    refs: dict[tuple[str, str | None], DatasetRef] = {}
    notes = []
    for logged in facts.datasets:
        if logged.context is not None and logged.context.casefold() in NOT_TRAINING:
            continue
        if policy.source_of(logged.source_uri or "") is None:
            where = logged.source_uri or "an unstated location"
            notes.append(f"training dataset {logged.name!r} was read from {where!r}, in no data source")
        # One run may log the same dataset once per context; it is one training dataset.
        refs.setdefault(
            (logged.name, logged.digest), DatasetRef(dataset_id=logged.name, version=logged.digest)
        )
    return list(refs.values()), notes


def registered_by(user_id: str | None, people: Mapping[str, Person]) -> tuple[str | None, list[str]]:
    """The person (or, failing that, the MLflow user name) who registered a version, and any note."""
    user = (user_id or "").strip()
    if not user:
        return None, []
    person = by_mlflow(people, user)
    if person is not None:
        return person, []
    if people and by_name(people, user) is None:
        return user, [
            f"MLflow user {user!r} is no person of the policy (people.<name>.mlflow): separation of "
            "duties cannot tell who they are"
        ]
    return user, []


def intake(
    created: ModelVersionCreated,
    facts: VersionFacts,
    policy: MlflowIntake,
    people: Mapping[str, Person] | None = None,
) -> Onboarding | Unmapped:
    """The model-version-registered payload of a new version, or why there is none."""
    system, notes = ai_system_of(created, facts, policy)
    mapped = policy.mapping(created.name)
    datasets, dataset_notes = training_datasets(facts, policy)
    notes += dataset_notes
    reasons = []
    if system is None:
        reasons.append(
            f"no AI system: the policy's mlflow.models does not map {created.name!r} and no "
            f"{policy.system_tag!r} tag names one"
        )
    user, user_notes = registered_by(facts.user_id, people or {})
    notes += user_notes
    owner = user or (mapped.owner if mapped is not None else None)
    if owner is None:
        reasons.append("no owner: MLflow names no user who registered it and the policy maps no owner")
    # The registered model's description is about the model; the version's, about this candidate.
    described = facts.model_description or created.description or ""
    intended_use = (mapped.intended_use if mapped is not None else described).strip()
    if not intended_use:
        reasons.append("no intended use: neither the policy nor the model's description states one")
    if created.run_id is None:
        reasons.append("no run: the version was registered from a path, so its training is unknown")
    if reasons:
        return Unmapped(created.name, created.version, system, tuple(reasons), tuple(notes))
    assert system is not None and owner is not None and created.run_id is not None  # no reasons: all there
    try:
        payload = ModelVersionRegistered(
            ai_system=system,
            name=created.name,
            version=created.version,
            source_uri=created.source,
            run_id=created.run_id,
            owner=owner,
            intended_use=intended_use,
            training_datasets=datasets,
        )
    except ValidationError as exc:
        found = tuple(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return Unmapped(created.name, created.version, system, found, tuple(notes))
    return Onboarding(payload, tuple(notes))


def registered_event(payload: ModelVersionRegistered, at: datetime) -> ModelVersionRegisteredEvent:
    """The event of a new version. Its id is the version's, so two webhooks (or two deliveries) for
    one version are one event to the outbox and the router (`source#id`)."""
    return ModelVersionRegisteredEvent(
        specversion="1.0",
        id=f"{payload.name}/{payload.version}",
        source=SOURCE,
        time=at,
        data=payload,
    )


def version_id(ai_system: str, name: str, version: str) -> str:
    # As onboard-model records it (flows/models/onboard_model.model_version_id).
    return f"{ai_system}/{name}/{version}"


def not_cleared(uow: UnitOfWork, ai_system: str, name: str, version: str) -> str | None:
    """Why the version may not go live, or None when it may: its governing risk assessment exists,
    any approval it asked for was granted, and no risk approval of the system is pending now (the
    write-back's rule, `mlflow_writeback`, so the alias AIMS moves itself is never a finding)."""
    vid = version_id(ai_system, name, version)
    ids = frozenset(v.id for v in uow.model_versions.find(system=ai_system)) | {vid}
    assessment = governing(uow.assessments.find(system=ai_system), vid, ids)
    approvals = uow.approvals.find(system=ai_system)
    status = approval_status(assessment, {a.id: a for a in approvals})
    return why_not_cleared(vid, assessment, status, pending_risk_approvals(approvals))


def deployment_finding(
    ai_system: str, name: str, version: str, alias: str, why: str, at: datetime, delivery_id: str
) -> IncidentReportedEvent:
    """The incident a deployment alias on an uncleared version is: a control failure (8.1, A.6.2.5)."""
    return IncidentReportedEvent(
        specversion="1.0",
        id=f"deployed-without-approval/{delivery_id}",
        source=SOURCE,
        time=at,
        data=IncidentReported(
            ai_system=ai_system,
            severity=Severity.high,
            category=IncidentCategory.other,
            description=(
                f"MLflow alias {alias!r} (a deployment alias of the policy) was set on {name} version "
                f"{version} without a granted approval: {why}."
            ),
            reporter=REPORTER,
            occurred_at=at,
            detected_at=at,
        ),
    )
