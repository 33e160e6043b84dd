"""Tasks every flow uses to leave evidence: register records and a markdown artifact."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prefect import runtime, task
from prefect.artifacts import create_markdown_artifact

from schemas.events import AimsEvent
from schemas.records import EvidenceRecord, Record
from schemas.settings import load_settings

if TYPE_CHECKING:
    from connectors.register.store import Register


@functools.cache
def register() -> Register:
    """The register of this process (a flow-run process runs one flow, so once per run)."""
    from connectors.register import open_register

    return open_register(load_settings())


def actor(flow: str) -> str:
    run_id = runtime.flow_run.id
    return f"flow:{flow}/{run_id}" if run_id else f"flow:{flow}"


def evidence_record(
    flow: str, event: AimsEvent, controls: list[str], outcome: dict[str, Any]
) -> EvidenceRecord:
    run_id = runtime.flow_run.id
    return EvidenceRecord(
        event_key=event.dedup_key,
        flow=flow,
        event_type=event.type,
        subject=event.key,
        flow_run_id=str(run_id) if run_id else None,
        recorded_at=datetime.now(UTC),
        controls=controls,
        outcome=outcome,
        event=event.model_dump(mode="json"),
    )


@task(name="record-evidence")
def record_evidence(
    flow: str,
    event: AimsEvent,
    controls: list[str],
    outcome: dict[str, Any],
    records: Sequence[Record] = (),
) -> bool:
    """Write what the flow learnt and the evidence record in one transaction.

    Idempotent: a retried or resumed run finds its records there and writes nothing; returns False then.
    """
    evidence = evidence_record(flow, event, controls, outcome)
    with register().unit_of_work(actor(flow)) as uow:
        for item in records:
            uow.repository(type(item)).add_if_absent(item)
        return uow.evidence.add_if_absent(evidence)


def artifact_key(flow: str, subject: str) -> str:
    # Artifact keys allow lower-case letters, digits and dashes only.
    slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:60] or "subject"
    return f"{flow}-{slug}"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


@task(name="publish-summary")
def publish_summary(
    flow: str, title: str, event: AimsEvent, controls: list[str], outcome: dict[str, Any]
) -> None:
    rows = "\n".join(f"| {_cell(k)} | {_cell(v)} |" for k, v in outcome.items())
    markdown = (
        f"# {title}\n\n"
        f"Event `{event.type}` **{event.id}** from `{event.source}` about **{event.key}**.\n\n"
        f"| finding | value |\n|---|---|\n{rows}\n\n"
        f"Evidence for: {', '.join(controls)}\n"
    )
    create_markdown_artifact(key=artifact_key(flow, event.key), markdown=markdown, description=title)
