"""JSON Schema export of the event contract, for producers to validate against."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter

from schemas.events import EVENT_CLASSES, event_union


def export_json_schemas(directory: Path) -> list[Path]:
    """One schema per declared event type, and one for their union."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, cls in EVENT_CLASSES.items():
        schema = cls.model_json_schema(mode="validation")
        schema["$id"] = f"urn:aims:schema:{event_type}"
        path = directory / f"{event_type}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    union = TypeAdapter(event_union()).json_schema(mode="validation")
    union["$id"] = "urn:aims:schema:any-event"
    path = directory / "aims-event.schema.json"
    path.write_text(json.dumps(union, indent=2, sort_keys=True) + "\n")
    written.append(path)
    return written
