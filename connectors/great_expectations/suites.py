"""Suite files checked against GX: every expectation's name and kwargs, with "did you mean" hints.
GX is imported only when a check runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas.suites import (
    Loc,
    Suite,
)
from schemas.suites import load_suite as _load_suite

# Arguments every GX expectation has; the rest are the expectation's own (for "did you mean").
_BASE_FIELDS = {
    "id",
    "meta",
    "notes",
    "result_format",
    "description",
    "catch_exceptions",
    "rendered_content",
    "severity",
    "windows",
}


def load_suite(path: Path) -> Suite:
    """`schemas.suites.load_suite` with every expectation checked against GX (name and kwargs)."""
    return _load_suite(path, check=check_expectation)


def check_expectation(name: str, kwargs: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Problems with one expectation entry, located relative to it: an unknown name, bad kwargs."""
    from great_expectations.compatibility import pydantic as gx_pydantic
    from great_expectations.exceptions import GreatExpectationsError

    known = _expectation_names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}?" if close else "see https://greatexpectations.io/expectations"
        return [(("expectation",), f"not a Great Expectations expectation; {hint}")]
    cls = expectation_class(name)
    try:
        cls(**kwargs)
    except gx_pydantic.ValidationError as exc:
        return _kwargs_problems(name, cls, exc.errors())
    except (TypeError, ValueError, ArithmeticError, KeyError, AttributeError, GreatExpectationsError) as exc:
        return [(("kwargs",), f"{name} refuses these kwargs: {exc}")]
    return []


def _expectation_names() -> list[str]:
    from great_expectations.expectations import registry

    registry.register_core_expectations()
    return sorted(registry.list_registered_expectation_implementations())


def expectation_class(name: str) -> Any:
    from great_expectations.expectations.registry import get_expectation_impl

    return get_expectation_impl(name)


def _kwargs_problems(name: str, cls: Any, errors: Sequence[Mapping[str, Any]]) -> list[tuple[Loc, str]]:
    """GX's (pydantic v1) errors, one per argument: a union reports each member; keep the telling one."""
    own = sorted(set(cls.__fields__) - _BASE_FIELDS)
    by_field: dict[str, list[str]] = {}
    roots: list[str] = []
    for err in errors:
        loc = err.get("loc") or ("__root__",)
        key, kind, msg = str(loc[0]), str(err.get("type", "")), str(err.get("msg", ""))
        if key == "__root__":
            roots.append(msg)
        elif kind == "value_error.extra":
            close = difflib.get_close_matches(key, own, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "it takes: " + ", ".join(own)
            by_field.setdefault(key, []).append(f"{name} has no argument {key!r}; {hint}")
        elif kind == "value_error.missing":
            by_field.setdefault(key, []).append(f"{name} needs {key!r}")
        else:
            by_field.setdefault(key, []).append(msg)
    problems: list[tuple[Loc, str]] = []
    for key, messages in by_field.items():
        # "not a valid dict" is the suite-parameter alternative ({"$PARAMETER": …}) of every argument
        telling = [m for m in messages if m != "value is not a valid dict"] or messages
        problems.append((("kwargs", key), telling[0]))
    if not problems:  # a check across arguments; when an argument failed it is mostly a knock-on
        problems += [(("kwargs",), msg) for msg in dict.fromkeys(roots)]
    return problems
