"""Part 1 of the data-quality benchmark (bench.data_quality): GX validation of a generated dataset
against a floor that computes the same verdicts with pandas and numpy alone, verdicts compared.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import Progress, fmt, load_average

if TYPE_CHECKING:
    import pandas as pd

    from schemas.suites import CheckOutcome, Suite


TARGET_RATIO = 10.0


DATASET = "loan-applications"  # the repository's suite checks it: every run validates, none drafts


TERMS = (12, 24, 36, 48, 60)


POSTCODE = r"^[0-9]{5}$"


ROW_COUNT_MIN = 1000


# Rows the generator spoils on purpose, so that some expectations fail with known counts.
BAD_AMOUNT_EVERY = 997


NULL_APPROVED_EVERY = 1009


BAD_POSTCODE_EVERY = 1013


DUPLICATE_IDS = 25


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bench_suite() -> Suite:
    """Ten expectations of the kinds the repository's suites use; three fail on the generated data."""
    from schemas.suites import Suite

    columns = ["applicant_id", "income", "amount", "term_months", "approved", "postcode"]
    specs: list[tuple[str, str, dict[str, Any]]] = [
        ("expect_table_columns_to_match_set", "critical", {"column_set": columns, "exact_match": True}),
        ("expect_table_row_count_to_be_between", "warning", {"min_value": ROW_COUNT_MIN}),
        ("expect_column_values_to_not_be_null", "critical", {"column": "applicant_id"}),
        ("expect_column_values_to_be_unique", "critical", {"column": "applicant_id"}),
        ("expect_column_values_to_be_between", "critical", _between("income", 0, 10**7)),
        ("expect_column_values_to_be_between", "critical", _between("amount", 100, 10**6)),
        ("expect_column_values_to_be_in_set", "critical", {"column": "term_months", "value_set": [*TERMS]}),
        ("expect_column_values_to_not_be_null", "critical", {"column": "approved"}),
        ("expect_column_values_to_match_regex", "warning", {"column": "postcode", "regex": POSTCODE}),
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            "warning",
            {"column_A": "income", "column_B": "amount", "mostly": 0.95},
        ),
    ]
    return Suite.model_validate(
        {
            "dataset": "bench-applications",
            "version": "1",
            "status": "reviewed",
            "expectations": [{"expectation": e, "severity": s, "kwargs": k} for e, s, k in specs],
        }
    )


def _between(column: str, low: float, high: float) -> dict[str, Any]:
    return {"column": column, "min_value": low, "max_value": high}


def generate(path: Path, rows: int) -> None:
    """Loan applications with a few spoiled rows (amounts, labels, postcodes, duplicate ids)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(42)
    ids = np.arange(rows, dtype=np.int64)
    ids[-DUPLICATE_IDS:] = ids[:DUPLICATE_IDS]  # each duplicated id appears twice
    income = rng.integers(20_000, 200_000, rows).astype(np.float64)
    amount = rng.integers(1_000, 40_000, rows).astype(np.float64)
    amount[::BAD_AMOUNT_EVERY] = 50.0
    approved = pd.Series(rng.random(rows) < 0.6, dtype="object")
    approved[::NULL_APPROVED_EVERY] = None
    postcode = pd.Series(rng.integers(10_000, 99_999, rows)).astype(str)
    postcode[::BAD_POSTCODE_EVERY] = "N/A"
    frame = pd.DataFrame(
        {
            "applicant_id": ids,
            "income": income,
            "amount": amount,
            "term_months": rng.choice(np.array(TERMS), rows),
            "approved": approved,
            "postcode": postcode,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


@dataclass(frozen=True)
class Verdict:
    """One expectation's answer: what both sides must agree on."""

    success: bool
    unexpected: int | None = None  # rows, for column expectations
    observed: Any = None  # for table expectations


def _column_verdict(unexpected: int, nonnull: int, mostly: float) -> Verdict:
    # GX: the share of non-null values that meet the expectation must reach `mostly`.
    share = 1.0 if nonnull == 0 else (nonnull - unexpected) / nonnull
    return Verdict(success=share >= mostly, unexpected=unexpected)


def floor_verdicts(frame: pd.DataFrame, suite: Suite) -> list[Verdict]:
    """The suite's verdicts with plain pandas/numpy, one vectorized pass per expectation."""
    return [_floor_one(frame, spec.expectation, spec.kwargs) for spec in suite.expectations]


def _floor_one(frame: pd.DataFrame, name: str, kw: dict[str, Any]) -> Verdict:
    if name == "expect_table_columns_to_match_set":
        observed = [str(c) for c in frame.columns]
        return Verdict(success=set(observed) == set(kw["column_set"]), observed=sorted(observed))
    if name == "expect_table_row_count_to_be_between":
        return Verdict(success=len(frame) >= kw["min_value"], observed=len(frame))
    if name == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = frame[kw["column_A"]], frame[kw["column_B"]]
        both = a.notna() & b.notna()
        unexpected = int((both & ~(a > b)).sum())
        return _column_verdict(unexpected, int(both.sum()), kw.get("mostly", 1.0))
    column = frame[kw["column"]]
    if name == "expect_column_values_to_not_be_null":
        nulls = int(column.isna().sum())
        return Verdict(success=nulls == 0, unexpected=nulls)
    values = column.dropna()
    if name == "expect_column_values_to_be_unique":
        unexpected = int(values.duplicated(keep=False).sum())  # GX counts every copy
    elif name == "expect_column_values_to_be_between":
        unexpected = int((~values.between(kw["min_value"], kw["max_value"])).sum())
    elif name == "expect_column_values_to_be_in_set":
        unexpected = int((~values.isin(kw["value_set"])).sum())
    elif name == "expect_column_values_to_match_regex":
        unexpected = int((~values.astype(str).str.contains(kw["regex"], regex=True)).sum())
    else:
        raise ValueError(f"the floor has no equivalent of {name}")
    return _column_verdict(unexpected, len(values), kw.get("mostly", 1.0))


def gx_verdicts(outcome: CheckOutcome) -> list[Verdict]:
    verdicts = []
    for e in outcome.expectations:
        if e.exception is not None:
            raise RuntimeError(f"GX could not evaluate {e.expectation}: {e.exception}")
        if e.expectation.startswith("expect_table_"):
            observed = e.observed_value
            observed = sorted(observed) if isinstance(observed, list) else observed
            verdicts.append(Verdict(success=e.success, observed=observed))
        else:
            verdicts.append(Verdict(success=e.success, unexpected=e.unexpected_count))
    return verdicts


def disagreements(suite: Suite, gx: list[Verdict], floor: list[Verdict]) -> list[str]:
    return [
        f"{spec.expectation}({spec.kwargs.get('column', '')}): GX {g} vs floor {f}"
        for spec, g, f in zip(suite.expectations, gx, floor, strict=True)
        if g != f
    ]


@dataclass
class ValidationRound:
    gx_s: float
    floor_s: float
    read_s: float


def validation_round(path: Path, suite: Suite) -> tuple[ValidationRound, list[Verdict]]:
    import pandas as pd

    from connectors.great_expectations import GxEngine
    from connectors.great_expectations.common import FileTarget

    location = FileTarget(path.resolve())
    t0 = time.perf_counter()
    outcome = GxEngine().validate(location, suite, data_version="bench")
    gx_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame = pd.read_parquet(path)
    read_s = time.perf_counter() - t0
    floor = floor_verdicts(frame, suite)
    floor_s = time.perf_counter() - t0
    gx = gx_verdicts(outcome)
    problems = disagreements(suite, gx, floor)
    if problems:
        raise AssertionError("the floor and GX disagree:\n  " + "\n  ".join(problems))
    return ValidationRound(gx_s=gx_s, floor_s=floor_s, read_s=read_s), floor


def measure_validation(root: Path, args: argparse.Namespace, say: Progress) -> dict[str, Any]:
    import great_expectations  # noqa: F401 - imported before timing: the flow-run process pays it once

    suite = bench_suite()
    path = root / f"applications-{args.rows}.parquet"
    if not path.is_file():
        say(f"VALIDATION: generating {args.rows:,} rows → {path}")
        generate(path, args.rows)
    load = [load_average()]
    rounds: list[ValidationRound] = []
    verdicts: list[Verdict] = []
    for n in range(args.repeat):
        measured, verdicts = validation_round(path, suite)
        rounds.append(measured)
        say(
            f"  round {n + 1}/{args.repeat}: GX {measured.gx_s:.2f}s, floor {measured.floor_s:.2f}s "
            f"(of which reading {measured.read_s:.2f}s); verdicts agree"
        )
    load.append(load_average())
    gx, floor, read = (median([getattr(r, k) for r in rounds]) for k in ("gx_s", "floor_s", "read_s"))
    failed = [s.expectation for s, v in zip(suite.expectations, verdicts, strict=True) if not v.success]
    return {
        "rows": args.rows,
        "expectations": len(suite.expectations),
        "failing": failed,
        "gx_s": gx,
        "floor_s": floor,
        "read_s": read,
        "ratio": gx / floor,
        "ratio_without_read": (gx - read) / (floor - read) if floor > read else float("nan"),
        "load": load,
    }


def report_validation(result: dict[str, Any], repeat: int) -> None:
    ratio = result["ratio"]
    print(
        f"VALIDATION: {result['rows']:,} rows × {result['expectations']} expectations, Parquet, medians of "
        f"{repeat} rounds (load {result['load'][0]}→{result['load'][1]}, 2 cores, shared)"
    )
    print(f"  GX (GxEngine.validate, pandas engine, file read included): {result['gx_s']:.2f} s")
    print(f"  floor (pandas/numpy, file read included):                  {result['floor_s']:.2f} s")
    print(
        f"  ratio GX / floor: {ratio:.1f}× (target ≤ {TARGET_RATIO:g}×: "
        f"{'meets' if ratio <= TARGET_RATIO else 'MISSES'}); without the file read "
        f"({result['read_s']:.2f} s on both sides): {fmt(result['ratio_without_read'], '.1f')}×"
    )
    print(f"  both agree on every verdict and count; failing as generated: {', '.join(result['failing'])}")
