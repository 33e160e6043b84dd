"""What a data-quality check announces: its result id and the data-quality-validated event. Pure.

Superseded changes get an event id of their own (a version may be announced, and superseded, by
several changes); a judged version has exactly one result, whichever run judged it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from schemas.events import DataChangedEvent, DataQualityValidatedEvent
from schemas.payloads import DataQualityValidated, Verdict

SOURCE = "urn:aims:check-data-quality"


def version_id(dataset: str, version: str) -> str:
    return f"{dataset}@{version}"


def validated_event(
    event: DataChangedEvent,
    verdict: Verdict,
    summary: dict[str, Any],
    suite: str | None = None,
    suite_version: str | None = None,
    failed_critical: list[str] | None = None,
    failed_warning: list[str] | None = None,
    drifted: list[str] | None = None,
) -> DataQualityValidatedEvent:
    data = event.data
    result_id = version_id(data.dataset_id, data.version)
    # One check per version, but a version may be announced (and superseded) by several changes.
    event_id = f"validated:{result_id}"
    if verdict is Verdict.superseded:
        event_id = f"superseded:{result_id}:{hashlib.sha256(event.dedup_key.encode()).hexdigest()[:16]}"
    return DataQualityValidatedEvent(
        specversion="1.0",
        id=event_id,
        source=SOURCE,
        data=DataQualityValidated(
            dataset_id=data.dataset_id,
            version=data.version,
            verdict=verdict,
            suite=suite,
            suite_version=suite_version,
            failed_critical=failed_critical or [],
            failed_warning=failed_warning or [],
            drifted_columns=drifted or [],
            content_hash=summary.get("sha256"),
            result_id=result_id if verdict is not Verdict.superseded else None,
        ),
    )
