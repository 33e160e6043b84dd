"""The MLflow desk: an authenticated delivery → one register row (and its events), once per delivery id.

Every delivery the gateway takes is recorded as a `WebhookDelivery` keyed `mlflow#<delivery id>`,
with its events staged in the outbox in the same unit of work and sent after the commit (the
router's relay sends what a dead gateway left); a delivery id seen before is refused (409) with
nothing produced. What each kind of delivery becomes:

- model_version.created: what MLflow's REST adds (`connectors.mlflow_registry`) and the intake
  (`flows.models.mlflow_intake`) make it a model-version-registered event (→ onboard-model), or an
  unmapped candidate recorded with its reasons (`aims mlflow` would list them; no event);
- model_version_alias.created with one of the policy's deployment aliases on a version that is not
  cleared: an incident-reported event (an incident-grade finding), recorded as such;
- every other alias, tag and registered-model change: recorded.

MLflow unreachable while a new version is read is answered 503 and nothing is recorded, so
MLflow's own retries (same delivery id) can still be taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.mlflow_registry import RegistryAnswerInvalid, RegistryUnavailable
from connectors.register.outbox import stage
from flows.models.mlflow_intake import (
    Onboarding,
    deployment_finding,
    intake,
    not_cleared,
    registered_event,
)
from gateway.answers import Outcome
from schemas.mlflow import (
    Delivery,
    ModelVersionAliasCreated,
    ModelVersionCreated,
    VersionFacts,
)
from schemas.trail import WebhookDelivery

if TYPE_CHECKING:
    from connectors.mlflow_registry import VersionFactsSource
    from connectors.register.store import Register, UnitOfWork
    from schemas.events import AimsEvent
    from schemas.policy import Policy

log = logging.getLogger("aims.gateway")

SENDER = "mlflow"
ACTOR = "gateway:mlflow"


def delivery_key(delivery_id: str) -> str:
    return f"{SENDER}#{delivery_id}"


@dataclass
class Entry:
    """What one delivery becomes: its register row's content and the events staged with it."""

    subject: str
    outcome: str
    ai_system: str | None = None
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: list[AimsEvent[Any]] = field(default_factory=list)


class MlflowDesk:
    def __init__(
        self,
        register: Register,
        policy: Callable[[], Policy],
        topic: str,
        send: Callable[[list[str]], object],
        registry: VersionFactsSource | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.register = register
        self.policy = policy
        self.topic = topic
        self.send = send
        self.registry = registry
        self.clock = clock

    def __call__(self, delivery: Delivery) -> Outcome:
        key = delivery_key(delivery.delivery_id)
        with self.register.reader() as uow:
            if uow.webhook_deliveries.get(key) is not None:
                return _replayed()
        facts, notes = VersionFacts(), list[str]()
        if isinstance(delivery.data, ModelVersionCreated):
            # Asked before the write, outside its transaction: it is a network call.
            try:
                facts, notes = self._facts(delivery.data)
            except RegistryUnavailable as exc:
                log.warning("MLflow delivery %s held: %s", delivery.delivery_id, exc)
                return Outcome(503, {"error": f"MLflow could not be asked about the version: {exc}"})
        policy = self.policy()
        with self.register.unit_of_work(ACTOR) as uow:
            entry = self._entry(uow, delivery, facts, policy)
            entry.notes[:0] = notes
            row = WebhookDelivery(
                key=key,
                sender=SENDER,
                kind=f"{delivery.entity.value}.{delivery.action.value}",
                subject=entry.subject,
                ai_system=entry.ai_system,
                outcome=entry.outcome,
                reasons=entry.reasons,
                notes=entry.notes,
                data=delivery.data.model_dump(mode="json"),
                event_key=entry.events[0].dedup_key if entry.events else None,
                sent_at=delivery.timestamp,
            )
            # Writers are serialized: a concurrent copy of this delivery finds this row, or we find its.
            if not uow.webhook_deliveries.add_if_absent(row):
                return _replayed()
            keys = stage(uow, entry.events, self.topic)
        log.info("MLflow %s %s: %s", row.kind, row.subject, row.outcome)
        outcome = Outcome(200, {"status": entry.outcome, "subject": entry.subject})
        if keys:
            # Committed already: a send that fails now is only late (the relay sends it).
            outcome.later.append(lambda: self.send(keys))
        return outcome

    def _facts(self, created: ModelVersionCreated) -> tuple[VersionFacts, list[str]]:
        if self.registry is None:
            return VersionFacts(), [
                "AIMS_MLFLOW_TRACKING_URI is not set: who registered it and its run's datasets are unknown"
            ]
        try:
            return self.registry.facts(created.name, created.version, created.run_id), []
        except RegistryAnswerInvalid as exc:
            return VersionFacts(), [f"MLflow's answer about the version was not usable: {exc}"]

    def _entry(self, uow: UnitOfWork, delivery: Delivery, facts: VersionFacts, policy: Policy) -> Entry:
        data = delivery.data
        if isinstance(data, ModelVersionCreated):
            result = intake(data, facts, policy.mlflow, policy.people)
            subject = f"{data.name}/{data.version}"
            if isinstance(result, Onboarding):
                event = registered_event(result.payload, delivery.timestamp)
                return Entry(subject, "onboarded", result.payload.ai_system, [], list(result.notes), [event])
            return Entry(subject, "unmapped", result.ai_system, list(result.reasons), list(result.notes))
        if isinstance(data, ModelVersionAliasCreated):
            return self._alias(uow, delivery, data, policy)
        version = getattr(data, "version", None)
        subject = f"{data.name}/{version}" if version else data.name
        return Entry(subject, "recorded", self._system(uow, policy, data.name))

    def _alias(
        self, uow: UnitOfWork, delivery: Delivery, data: ModelVersionAliasCreated, policy: Policy
    ) -> Entry:
        subject = f"{data.name}/{data.version}"
        system = self._system(uow, policy, data.name, data.version)
        if not policy.mlflow.is_deployment(data.alias):
            return Entry(subject, "recorded", system)
        if system is None:
            why = f"no AI system is known for {data.name!r}, so nothing cleared it"
            return Entry(subject, "deployed-without-approval", None, [why])
        why_not = not_cleared(uow, system, data.name, data.version)
        if why_not is None:
            return Entry(
                subject, "recorded", system, notes=[f"deployment alias {data.alias!r} on a cleared version"]
            )
        event = deployment_finding(
            system, data.name, data.version, data.alias, why_not, delivery.timestamp, delivery.delivery_id
        )
        return Entry(subject, "deployed-without-approval", system, [why_not], [], [event])

    def _system(self, uow: UnitOfWork, policy: Policy, name: str, version: str | None = None) -> str | None:
        """The AI system a model's versions were onboarded under, else the policy's mapping."""
        if version is not None:
            found = uow.model_versions.find(model_name=name, version=version, limit=1)
        else:
            found = uow.model_versions.find(model_name=name, limit=1)
        if found:
            return found[0].system
        mapped = policy.mlflow.mapping(name)
        return mapped.ai_system if mapped is not None else None


def _replayed() -> Outcome:
    return Outcome(409, {"error": "replayed delivery id: this delivery was recorded already"})
