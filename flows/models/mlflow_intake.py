"""A new MLflow model version → the model-version-registered payload, or an unmapped candidate.

What MLflow knows of a version is its webhook (name, version, source, run, tags, description) and what
its REST API adds (`VersionFacts`: who registered it, the registered model's tags, the run's logged
datasets). The policy's `mlflow` section says what that is in AIMS terms:

- the AI system: the policy's mapping of the registered-model name wins; else the system tag on the
  version, else on the registered model. A tag is set by whoever may edit the model, the policy is
  reviewed: where they disagree the policy wins and the disagreement is noted.
- the owner (the submitter, kept out of approving it): the MLflow user who registered it; MLflow
  without authentication records none, and then the policy's owner of the model answers for it.
- the training datasets: the run's logged inputs whose context is training (or unstated), each at its
  digest; one logged from a location under none of the policy's data sources is kept (it was trained
  on) and noted, since its quality cannot be checked.

A version that cannot become a complete payload (no system, no owner, no run, a name our contract
refuses) is an `Unmapped` candidate with every reason, to be recorded and shown, never dropped.

Pure: no Prefect, no Kafka, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from schemas.mlflow import MlflowIntake, ModelVersionCreated, VersionFacts
from schemas.payloads import DatasetRef, ModelVersionRegistered

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


def intake(created: ModelVersionCreated, facts: VersionFacts, policy: MlflowIntake) -> Onboarding | Unmapped:
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
    owner = (facts.user_id or "").strip() or (mapped.owner if mapped is not None else None)
    if owner is None:
        reasons.append("no owner: MLflow names no user who registered it and the policy maps no owner")
    intended_use = (
        mapped.intended_use if mapped is not None else (created.description or facts.model_description or "")
    ).strip()
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
