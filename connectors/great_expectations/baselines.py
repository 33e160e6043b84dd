"""Drafting a baseline suite from a dataset's facts: the columns, the row count, no nulls, ranges
and value sets seen, each widened a little, for a person to review.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from connectors.great_expectations.common import VALUE_SET_MAX, json_safe
from connectors.great_expectations.profiling import Facts
from schemas.suites import (
    Suite,
    SuiteStatus,
)


def baseline_suite(facts: Facts, dataset: str, version: str, display: str) -> Suite:
    n = facts.rows
    entries: list[dict[str, Any]] = [
        {
            "expectation": "expect_table_columns_to_match_set",
            "severity": "critical",
            "kwargs": {"column_set": [c.name for c in facts.columns], "exact_match": True},
            "notes": "The columns at baseline.",
        },
        {
            "expectation": "expect_table_row_count_to_be_between",
            "severity": "warning",
            "kwargs": {"min_value": n // 2, "max_value": max(2 * n, 1)},
            "notes": f"{n} rows at baseline; the range allows halving or doubling.",
        },
    ]
    for col in facts.columns:
        if n and col.nulls == 0:
            entries.append(
                {
                    "expectation": "expect_column_values_to_not_be_null",
                    "severity": "warning",
                    "kwargs": {"column": col.name},
                    "notes": f"No nulls in {n} rows at baseline.",
                }
            )
        if col.numeric and col.min is not None and col.max is not None and math.isfinite(col.max - col.min):
            low, high = _slack_range(col.min, col.max, col.integer)
            entries.append(
                {
                    "expectation": "expect_column_values_to_be_between",
                    "severity": "warning",
                    "kwargs": {"column": col.name, "min_value": low, "max_value": high},
                    "notes": f"Observed {_num(col.min)} to {_num(col.max)} at baseline, "
                    "widened by 10% of the span.",
                }
            )
        elif not col.numeric and 0 < col.distinct <= VALUE_SET_MAX and col.count >= 2 * col.distinct:
            values = [json_safe(v) for v, _ in col.top]
            entries.append(
                {
                    "expectation": "expect_column_values_to_be_in_set",
                    "severity": "warning",
                    "kwargs": {"column": col.name, "value_set": values},
                    "notes": f"The {len(values)} values seen at baseline.",
                }
            )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return Suite.model_validate(
        {
            "dataset": dataset,
            "version": version,
            "status": SuiteStatus.baseline,
            "description": f"Generated on {today} from {display} ({n} rows).",
            "expectations": entries,
        }
    )


def _slack_range(low: float, high: float, integer: bool) -> tuple[float | int, float | int]:
    """[low, high] widened by 10% of the span (or of the value, for a constant), rounded outward to a
    round number; never below 0 for a column that had no negative value."""
    slack = (high - low) * 0.1 or max(abs(high) * 0.1, 1.0)
    step = 10.0 ** math.floor(math.log10(slack))
    lo = math.floor((low - slack) / step) * step
    hi = math.ceil((high + slack) / step) * step
    if low >= 0:
        lo = max(lo, 0.0)
    if integer:
        return math.floor(lo), math.ceil(hi)
    digits = max(0, -math.floor(math.log10(step)))
    return round(lo, digits), round(hi, digits)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
