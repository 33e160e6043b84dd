"""What the parts of the GX adapter share: the limits on what a result keeps, `Location`,
`DataUnavailable`, and turning whatever GX, pandas or a driver hand back into plain JSON data.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from schemas.data_sources import SizeLimits

SAMPLE_SIZE = 20  # unexpected values kept per expectation


TOP_VALUES = 50  # categorical frequencies kept in a profile


VALUE_SET_MAX = 20  # a text column with at most this many values gets a value set in a baseline


QUANTILES = tuple(i / 100 for i in range(101))


DECILES = tuple(range(10, 100, 10))  # indices into QUANTILES of the histogram edges


_MAX_TEXT = 200  # longest sample value kept, in characters


PASSWORD_ENV = "AIMS_DQ_PASSWORD"


@dataclass(frozen=True)
class FileTarget:
    """A file to read, already resolved inside its data source (`flows/data_quality/sources.py`):
    the engine trusts the path and enforces only the caps."""

    path: Path
    limits: SizeLimits = field(default_factory=SizeLimits)
    # The folder the file must stay in, checked again on the opened file (a symlink swapped after
    # resolving); None for a path a test or a benchmark hands in.
    root: Path | None = None


@dataclass(frozen=True)
class SqlTarget:
    """A table of a declared SQL source; `password` is that source's own, never another's."""

    url: str
    table: str
    password: SecretStr | None = None
    password_env: str = PASSWORD_ENV
    limits: SizeLimits = field(default_factory=SizeLimits)


Target = FileTarget | SqlTarget


class DataUnavailable(Exception):
    """The data cannot be read; the message says what to fix. `retryable`: the database may come back."""

    def __init__(self, location: str, reason: str, *, retryable: bool = False) -> None:
        self.location = location
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"{location}: {reason}")


class TooLarge(DataUnavailable):
    """Over one of the source's caps: reading stopped there. Not retryable: the data stays as large."""

    def __init__(self, location: str, what: str, cap: int, setting: str) -> None:
        super().__init__(
            location,
            f"too large: {what} (the cap, {setting}, is {cap:,}); reading stopped. Split the data, or "
            f"raise data_sources.<id>.limits.{setting} (or data_quality.limits.{setting}) in the policy",
        )


def json_safe(value: Any, depth: int = 0) -> Any:
    """Plain JSON data: numpy scalars unwrapped, NaN null, dates ISO text, long text cut."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if _missing(value):
        return None
    if depth > 20:
        return str(value)[:_MAX_TEXT]
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, decimal.Decimal):
        return json_safe(float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return json_safe(value.hex())
    if hasattr(value, "isoformat") and callable(value.isoformat):  # pandas.Timestamp
        try:
            return str(value.isoformat())
        except ValueError:  # NaT
            return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return json_safe(value.item(), depth + 1)
        except (ValueError, TypeError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays
        return json_safe(value.tolist(), depth + 1)
    return json_safe(str(value))


def _missing(value: Any) -> bool:
    """NaN-likes that are not None: pandas' NaT and NA, numpy's NaN."""
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pandas.NA refuses bool(); an array is ambiguous
        return repr(value) == "<NA>"


def first_line(exc: BaseException) -> str:
    """The gist of an error: the driver's own message for a SQLAlchemy error, without the SQL."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
