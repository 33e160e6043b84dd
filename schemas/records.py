"""Records the flows write as evidence. Issue 3 moves them into the AIMS register."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EvidenceRecord(BaseModel):
    """One event handled by one flow, and what came of it (ISO 42001 A.6.2.8 event logs)."""

    model_config = ConfigDict(frozen=True)

    event_key: str = Field(description="source#id of the event: unique across redeliveries.")
    flow: str = Field(description="The flow that handled the event.")
    event_type: str = Field(description="CloudEvents type.")
    subject: str = Field(description="AI system, model or dataset the event is about.")
    flow_run_id: str | None = Field(None, description="The Prefect flow run that recorded it.")
    recorded_at: datetime = Field(description="When the evidence was written (UTC).")
    controls: list[str] = Field(description="ISO/IEC 42001 clauses and Annex A controls evidenced.")
    outcome: dict[str, Any] = Field(description="What the flow found or did.")
    event: dict[str, Any] = Field(description="The event as received.")
