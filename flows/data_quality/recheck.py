"""A data-changed event that asks for a recorded version to be checked again (`aims dq check`, and
`collect-evidence` when a data-quality control's evidence went stale). Pure.

The event names the data as the version's first event did (a data source and path or table, or a
location), so it is read from where the policy allows, exactly as then.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from schemas.events import DataChangedEvent
from schemas.records import DatasetVersion


def latest_versions(versions: Iterable[DatasetVersion]) -> list[DatasetVersion]:
    """The newest recorded version of each dataset, by dataset name."""
    newest: dict[str, DatasetVersion] = {}
    for v in versions:
        if v.dataset not in newest or v.received_at > newest[v.dataset].received_at:
            newest[v.dataset] = v
    return [newest[name] for name in sorted(newest)]


def recheck_event(version: DatasetVersion, event_id: str, source: str, at: datetime) -> DataChangedEvent:
    """Raises pydantic's ValidationError when the register's record of the version makes no event."""
    named = dict(version.location)
    data: dict[str, Any] = {
        "dataset_id": version.dataset,
        "version": version.version,
        "change_kind": version.change_kind or "updated",
    }
    if "source" in named:
        data.update({k: named[k] for k in ("source", "path", "table") if k in named})
    else:
        data["location"] = named
    return DataChangedEvent.model_validate(
        {"specversion": "1.0", "id": event_id, "source": source, "time": at, "data": data}
    )
