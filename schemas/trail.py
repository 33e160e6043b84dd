"""The event trail: what came in, what went out, what each flow made of it, and the audit log.

Register records like those of schemas.records, kept apart because they describe the system's own
traffic rather than the management system's objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from schemas.records import Record, utcnow


class EventReceived(Record):
    """An event the router accepted, once per source#id however often it was delivered (A.6.2.8)."""

    key: str = Field(description="source#id")
    type: str
    source: str
    subject: str
    event_time: AwareDatetime | None = None
    received_at: AwareDatetime = Field(default_factory=utcnow)
    flow_runs: list[str] = Field(default_factory=list, description="Flow runs it started.")
    data: dict[str, Any] = Field(default_factory=dict)
    content_hash: str | None = Field(
        None,
        description="SHA-256 of the event's canonical form (schemas.signing.content_hash): a later "
        "delivery under this source#id with another hash is a conflicting duplicate, not a redelivery. "
        "None on receipts written before it was kept.",
    )


class OutboxMessage(Record):
    """An event a flow decided to publish, written in the unit of work that records what it reports.

    A crash between the commit and the send then delays the event instead of losing it: the flow
    sends its own messages right after the commit, and the router relays any left behind.
    """

    key: str = Field(description="source#id of the event.")
    topic: str
    event: dict[str, Any] = Field(description="The CloudEvent, as JSON.")
    created_at: AwareDatetime = Field(default_factory=utcnow)
    sent_at: AwareDatetime | None = None


class EvidenceRecord(Record):
    """One event handled by one flow, and what came of it."""

    event_key: str = Field(description="source#id of the event: unique across redeliveries.")
    flow: str = Field(description="The flow that handled the event.")
    event_type: str = Field(description="CloudEvents type.")
    subject: str = Field(description="AI system, model or dataset the event is about.")
    flow_run_id: str | None = Field(None, description="The Prefect flow run that recorded it.")
    recorded_at: AwareDatetime = Field(default_factory=utcnow, description="When it was written (UTC).")
    controls: list[str] = Field(description="ISO/IEC 42001 clauses and Annex A controls evidenced.")
    outcome: dict[str, Any] = Field(description="What the flow found or did.")
    event: dict[str, Any] = Field(description="The event as received.")
    # None on evidence recorded before 0015: it was collected when it was recorded, and judged by the
    # policy's maximum ages.
    collected_at: AwareDatetime | None = Field(
        None,
        description="When the evidence was collected: the check ran, the document was signed. It may be "
        "earlier than recorded_at (evidence supplied later).",
    )
    valid_until: AwareDatetime | None = Field(
        None,
        description="End of the period it is valid for: the policy's shortest maximum age among its "
        "controls when it was collected, or what the person who supplied it said.",
    )

    @property
    def collected(self) -> datetime:
        return self.collected_at or self.recorded_at


class AuditEntry(Record):
    """One append to the audit log; `hash` covers every other field and the previous hash."""

    seq: int
    at: str = Field(description="ISO-8601 UTC time of the write.")
    actor: str
    action: str = Field(description="insert, update or delete.")
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


class WebhookDelivery(Record):
    """A webhook delivery the gateway took (MLflow's model registry, OpenLineage run events), once per
    sender#delivery id.

    Recorded whatever became of it (onboarded, an unmapped candidate, an alias or tag change, a
    deployment without approval, a data change, ignored), so a replayed delivery is refused and an
    unmapped model or dataset stays visible (`aims mlflow`, `aims lineage`) instead of being dropped.
    """

    key: str = Field(
        description="<sender>#<delivery id>: X-MLflow-Delivery-Id for MLflow, <runId>.<eventType> for "
        "OpenLineage."
    )
    sender: str = Field(description="Who sent it: mlflow or openlineage.")
    kind: str = Field(description="<entity>.<action>, e.g. model_version.created; openlineage.<eventType>.")
    subject: str = Field(
        description="The registered model, and /<version> where the delivery names one; the OpenLineage "
        "job (<namespace>/<name>)."
    )
    ai_system: str | None = Field(None, description="The AI system it was mapped to, if any.")
    outcome: str = Field(
        description="onboarded, unmapped, recorded, deployed-without-approval or ignored (see flows/models); "
        "data-changed, unmapped or recorded for OpenLineage (flows/data_quality/lineage_intake.py)."
    )
    reasons: list[str] = Field(default_factory=list, description="Why it is unmapped or a finding.")
    notes: list[str] = Field(default_factory=list, description="What the intake noticed on the way.")
    data: dict[str, Any] = Field(default_factory=dict, description="The delivery's data, as parsed.")
    event_key: str | None = Field(
        None,
        description="source#id of the (first) event it produced, if any; an OpenLineage run's "
        "events are under data.outputs[].event_key.",
    )
    sent_at: AwareDatetime = Field(description="When the sender built the delivery (its signed timestamp).")
    received_at: AwareDatetime = Field(default_factory=utcnow)
