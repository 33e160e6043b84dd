"""Tasks every flow uses to leave evidence: a stored record and a markdown artifact."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from prefect import runtime, task
from prefect.artifacts import create_markdown_artifact

from connectors.evidence import SqliteEvidenceStore
from schemas.events import AimsEvent
from schemas.records import EvidenceRecord
from schemas.settings import load_settings


def evidence_store() -> SqliteEvidenceStore:
    return SqliteEvidenceStore(load_settings().state_path / "evidence.sqlite")


@task(name="record-evidence")
def record_evidence(flow: str, event: AimsEvent, controls: list[str], outcome: dict[str, Any]) -> bool:
    """Write the evidence record; False when a retry finds it already written."""
    run_id = runtime.flow_run.id
    return evidence_store().record(
        EvidenceRecord(
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
    )


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
