"""The CloudEvents 1.0 envelope (https://github.com/cloudevents/spec, core attributes).

Every event on the wire is one of these. The typed events in `schemas.events` narrow `type` and
`data`; this module holds only what the spec itself says.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Extension attribute names: lower-case ASCII letters and digits only (spec §"Attribute Naming").
# The spec recommends at most 20 characters; we enforce it so producers notice early.
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
CORE_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data"}
)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event. Extension attributes are kept as extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=False)

    specversion: Literal["1.0"] = Field(
        description="CloudEvents specification version; required, and only 1.0 is accepted."
    )
    id: str = Field(
        min_length=1,
        max_length=256,
        description="Identifies the event. Producers make source + id unique; a redelivery keeps it.",
    )
    source: str = Field(
        min_length=1,
        max_length=1024,
        description="URI-reference of the context that produced the event, e.g. 'mlflow://prod'.",
    )
    type: str = Field(
        min_length=1,
        max_length=256,
        description="Event type, reverse-DNS style, e.g. 'org.aims.model.version.registered'.",
    )
    subject: str | None = Field(
        None,
        min_length=1,
        max_length=512,
        description="What the event is about (AI system, model or dataset). It is the Kafka key.",
    )
    time: datetime | None = Field(None, description="When the occurrence happened (RFC 3339).")
    datacontenttype: str | None = Field(
        "application/json", description="Media type of `data`; only JSON is accepted."
    )
    dataschema: str | None = Field(None, description="URI of the schema `data` adheres to.")
    data: Any = Field(None, description="The event payload.")

    @field_validator("datacontenttype")
    @classmethod
    def _json_only(cls, value: str | None) -> str | None:
        if value is not None and not (value == "application/json" or value.endswith("+json")):
            raise ValueError(f"datacontenttype {value!r} is not JSON; send application/json")
        return value

    @model_validator(mode="after")
    def _extension_names(self) -> CloudEvent:
        for name in self.model_extra or {}:
            if not _EXTENSION_NAME.match(name):
                raise ValueError(f"extension attribute {name!r} must be 1-20 lower-case letters or digits")
        return self

    @property
    def extensions(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def dedup_key(self) -> str:
        """Identity of the event across redeliveries: the spec makes source + id unique."""
        return f"{self.source}#{self.id}"
