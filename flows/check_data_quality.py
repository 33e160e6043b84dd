"""Check a changed dataset. For now: locate it and fingerprint it for provenance (A.7.5)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from prefect import flow, task

from flows.evidence import publish_summary, record_evidence
from schemas.events import DataChangedEvent
from schemas.payloads import DatasetLocation, FileLocation
from schemas.records import Dataset, DatasetVersion, Record

FLOW = "check-data-quality"
CONTROLS = ["A.6.2.8", "A.7.4", "A.7.5", "A.7.6"]
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri)


@task(name="fingerprint-location")
def fingerprint(location: DatasetLocation) -> dict[str, Any]:
    """Bad locations are findings, not crashes: the outcome says what a person can fix."""
    if not isinstance(location, FileLocation):
        return {"location": f"{location.table} at {location.url}", "fingerprint": "sql table"}
    path = local_path(location.uri)
    outcome: dict[str, Any] = {"location": str(path)}
    fmt = _FORMATS.get(path.suffix.lower())
    outcome["format"] = fmt or f"unsupported ({path.suffix or 'no extension'})"
    if not path.is_file():
        outcome["finding"] = "file not found"
        return outcome
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    outcome["bytes"] = path.stat().st_size
    outcome["sha256"] = digest.hexdigest()
    return outcome


def register_records(event: DataChangedEvent, outcome: dict[str, Any]) -> list[Record]:
    data = event.data
    return [
        Dataset(name=data.dataset_id),
        DatasetVersion(
            id=f"{data.dataset_id}@{data.version}",
            dataset=data.dataset_id,
            version=data.version,
            location=data.location.model_dump(mode="json"),
            content_hash=outcome.get("sha256"),
            size_bytes=outcome.get("bytes"),
            change_kind=data.change_kind.value,
            produced_by=event.source,
            provenance={"event_key": event.dedup_key, "source": event.source, "row_count": data.row_count},
        ),
    ]


@flow(name=FLOW, description="Check a changed dataset and record its provenance.")
def check_data_quality(event: DataChangedEvent) -> dict[str, Any]:
    data = event.data
    outcome = {
        "dataset": data.dataset_id,
        "version": data.version,
        "change": data.change_kind.value,
        "row_count": data.row_count if data.row_count is not None else "unknown",
        **fingerprint(data.location),
    }
    record_evidence(FLOW, event, CONTROLS, outcome, register_records(event, outcome))
    publish_summary(FLOW, f"Data changed: {data.dataset_id} {data.version}", event, CONTROLS, outcome)
    return outcome
