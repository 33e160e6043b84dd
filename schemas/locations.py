"""Where a dataset version can be read: a file or a SQL table (the deprecated `location` of
data-changed events; new producers name a data source of the policy instead)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from schemas.envelope import printable, shown
from schemas.fields import Name, Payload


class FileLocation(Payload):
    kind: Literal["file"] = Field("file", description="A CSV or Parquet file.")
    uri: Name = Field(description="Local path or file:// URI of the file.")


# SQLAlchemy's own URL grammar: user names stop at ':' or '/', passwords run to the '@'.
_URL_PASSWORD = re.compile(r"^[\w+.-]+://[^:/@]*:[^@]*@")


class SqlTableLocation(Payload):
    kind: Literal["sql"] = Field("sql", description="A table reached through SQLAlchemy.")
    url: Name = Field(description="SQLAlchemy URL without a password; credentials come from the environment.")
    table: Name = Field(description="Table name, optionally schema-qualified.")

    @model_validator(mode="after")
    def _no_password(self) -> SqlTableLocation:
        # Events are stored and replayed; a password in one would leak into logs and evidence.
        if _URL_PASSWORD.match(self.url) or "password=" in self.url.lower():
            raise ValueError("the SQL URL carries a password; pass credentials through the environment")
        return self


# The keys that say which shape a location is when `kind` is left out.
_FILE_KEYS: Final = ("uri",)
_SQL_KEYS: Final = ("url", "table")
LOCATION_TAGS: Final = ("file", "sql")
# One example of each accepted shape, quoted by every location error; a test validates both.
FILE_EXAMPLE: Final = {"uri": "/data/loans.csv"}
SQL_EXAMPLE: Final = {"url": "postgresql://host/db", "table": "loans"}
_SEND = f"Send a file as {json.dumps(FILE_EXAMPLE)} or a SQL table as {json.dumps(SQL_EXAMPLE)}"


def _location_shape(value: Any) -> Any:
    """Refuse a location whose shape cannot be told, in words that say what to send instead.

    Without this, pydantic's discriminator answers a plain string with "Unable to extract tag using
    discriminator _location_kind()". Everything whose shape is clear goes on to the two models,
    whose own errors (a missing `table`, a password in the URL) are readable.
    """
    if isinstance(value, FileLocation | SqlTableLocation):
        return value
    if not isinstance(value, dict):
        raise _shape_error(f"expected an object but got {shown(value)}")
    file_keys = [k for k in _FILE_KEYS if k in value]
    sql_keys = [k for k in _SQL_KEYS if k in value]
    kind = value.get("kind")
    if kind is not None and kind not in LOCATION_TAGS:
        raise _shape_error(f'kind must be "file" or "sql" (or left out) but got {shown(kind)}')
    if file_keys and sql_keys:
        raise _shape_error(
            f"has both a file's {_listed(file_keys)} and a SQL table's {_listed(sql_keys)}:"
            " a location is one or the other"
        )
    if kind is None and not file_keys and not sql_keys:
        keys = _listed(list(value)) if value else "none"
        raise _shape_error(
            f'has neither a file\'s "uri" nor a SQL table\'s "url" and "table" (its keys: {keys})'
        )
    wrong = sql_keys if kind == "file" else file_keys if kind == "sql" else []
    if wrong:
        raise _shape_error(
            f'kind is "{kind}" but the object has {_listed(wrong)}, which belong to the other shape'
        )
    return value


def _shape_error(problem: str) -> PydanticCustomError:
    # The message is complete here: no template context, so a "{...}" the producer sent stays text.
    return PydanticCustomError("location_shape", f"{problem}. {_SEND}")


def _listed(keys: list[Any]) -> str:
    # The keys may be the producer's: a few of them, each cut short and escaped.
    quoted = [f'"{printable(str(k), 20)}"' for k in keys[:5]]
    more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
    return ", ".join(quoted[:-1]) + (" and " if len(quoted) > 1 else "") + quoted[-1] + more


def _location_kind(value: Any) -> str | None:
    # Producers may leave `kind` out: a `url` or `table` means SQL, a `uri` means a file.
    # (`_location_shape` has already refused the mixed and the shapeless.)
    if isinstance(value, dict):
        kind = value.get("kind")
        if kind is None:
            return "sql" if any(k in value for k in _SQL_KEYS) else "file"
        return str(kind)
    return "none" if value is None else getattr(value, "kind", None)


DatasetLocation = Annotated[
    Annotated[FileLocation, Tag("file")]
    | Annotated[SqlTableLocation, Tag("sql")]
    # Only the default of a field left out: `_location_shape` refuses an explicit null, and the
    # JSON Schema does not offer it.
    | Annotated[SkipJsonSchema[None], Tag("none")],
    Discriminator(_location_kind),
    # Runs first: a before-validator wraps the union, and leaves its JSON Schema as it is.
    BeforeValidator(_location_shape),
]
