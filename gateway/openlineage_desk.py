"""The OpenLineage desk: a run event → one register row (and its data-changed events), once per run
and transition.

Every run event the gateway takes is recorded as a `WebhookDelivery` keyed
`openlineage#<run id>.<eventType>` (kind `openlineage.<eventType>`, subject the job), with the
data-changed events of its mapped outputs staged in the outbox in the same unit of work and sent after
the commit (the router's relay sends what a dead gateway left). What each event becomes is
`flows.data_quality.lineage_intake`'s: outcome `data-changed`, `unmapped` (a COMPLETE run none of whose
outputs the policy maps, each with its reason) or `recorded` (every other transition).

The same run and transition again is answered 200 "replayed" and produces nothing: unlike MLflow's
deliveries (answered 409), OpenLineage clients treat any non-2xx answer as a failure of the pipeline's
emit, and a producer resending an event it is unsure was taken (a timeout, a restarted job) has done
nothing wrong. Spark-style producers send several RUNNING events per run: the first is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from connectors.register.outbox import stage
from flows.data_quality.lineage_intake import SENDER, delivery_key, intake
from gateway.answers import Outcome
from schemas.trail import WebhookDelivery

if TYPE_CHECKING:
    from connectors.register.store import Register
    from schemas.openlineage import RunEvent
    from schemas.policy import Policy

log = logging.getLogger("aims.gateway")

ACTOR = "gateway:openlineage"


class OpenLineageDesk:
    def __init__(
        self,
        register: Register,
        policy: Callable[[], Policy],
        topic: str,
        send: Callable[[list[str]], object],
    ) -> None:
        self.register = register
        self.policy = policy
        self.topic = topic
        self.send = send

    def __call__(self, event: RunEvent) -> Outcome:
        key = delivery_key(event.run_id, event.eventType)
        with self.register.reader() as uow:
            if uow.webhook_deliveries.get(key) is not None:
                return _replayed(key)
        got = intake(event, self.policy())
        row = WebhookDelivery(
            key=key,
            sender=SENDER,
            kind=f"{SENDER}.{event.eventType.value}",
            subject=got.subject,
            outcome=got.outcome,
            reasons=got.reasons,
            notes=got.notes,
            data={
                "run_id": event.run_id,
                "event_type": event.eventType.value,
                "producer": event.producer,
                "job": {"namespace": event.job.namespace, "name": event.job.name},
                "outputs": got.outputs,
                "inputs": got.inputs,
            },
            event_key=got.events[0].dedup_key if got.events else None,
            sent_at=event.eventTime,
        )
        with self.register.unit_of_work(ACTOR) as uow:
            # Writers are serialized: a concurrent copy of this event finds this row, or we find its.
            if not uow.webhook_deliveries.add_if_absent(row):
                return _replayed(key)
            keys = stage(uow, got.events, self.topic)
        log.info("OpenLineage %s %s: %s", row.kind, row.subject, row.outcome)
        body = {"status": got.outcome, "subject": got.subject, "checks": len(got.events)}
        outcome = Outcome(200, body)
        if keys:
            # Committed already: a send that fails now is only late (the relay sends it).
            outcome.later.append(lambda: self.send(keys))
        return outcome


def _replayed(key: str) -> Outcome:
    return Outcome(200, {"status": "replayed", "recorded": key})
