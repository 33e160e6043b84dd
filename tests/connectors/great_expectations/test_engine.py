"""The GX adapter against real CSV and Parquet files and a real SQLite database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aims.demo import sample_events
from connectors.great_expectations import DataQualityEngine, GxEngine, load_suite
from connectors.great_expectations.common import FileTarget
from schemas.suites import Verdict
from tests.connectors.great_expectations.data import Location, expect, loans, suite, write_csv
from tests.connectors.great_expectations.loan_suites import PASSING
from tests.resources import REPO


def test_the_adapter_is_a_data_quality_engine_and_creates_nothing_up_front() -> None:
    adapter: DataQualityEngine = GxEngine()  # checked by mypy
    assert vars(adapter)["_context"] is None


def test_the_example_suite_passes_on_the_demo_dataset(engine: GxEngine, tmp_path: Path) -> None:
    sample_events(tmp_path)
    location = FileTarget(tmp_path / "loan-applications.csv")
    outcome = engine.validate(location, load_suite(REPO / "suites" / "loan-applications.yaml"))
    assert outcome.verdict is Verdict.passed, outcome.failures()
    assert outcome.statistics.evaluated == outcome.statistics.successful == len(outcome.expectations)


def test_a_passing_suite_passes_everywhere(engine: GxEngine, write: Callable[[Any], Location]) -> None:
    location = write(loans())
    outcome = engine.validate(location, PASSING, data_version="v7")
    assert outcome.verdict is Verdict.passed, outcome.failures()
    assert (outcome.dataset, outcome.suite_version, outcome.data_version) == ("loans", "1", "v7")
    assert outcome.statistics.model_dump() == {
        "evaluated": 8,
        "successful": 8,
        "unsuccessful": 0,
        "success_percent": 100.0,
    }
    assert [e.expectation for e in outcome.expectations] == [e.expectation for e in PASSING.expectations]
    mean = outcome.expectations[-1]
    assert mean.observed_value == pytest.approx(loans()["income"].mean())
    scores = outcome.expectations[-2]
    assert (scores.unexpected_count, scores.element_count) == (8, 400)
    assert scores.unexpected_percent == pytest.approx(2.0)
    json.dumps(outcome.model_dump(mode="json"), allow_nan=False)


def test_a_failed_critical_expectation_fails_the_check(
    engine: GxEngine, write: Callable[[Any], Location]
) -> None:
    frame = loans()
    frame.loc[frame.index % 10 == 3, "purpose"] = "crypto"
    frame.loc[5, "applicant_id"] = 6
    outcome = engine.validate(write(frame), PASSING)
    assert outcome.verdict is Verdict.failed
    failed = {e.expectation: e for e in outcome.failures()}
    assert set(failed) == {"expect_column_values_to_be_in_set", "expect_column_values_to_be_unique"}
    in_set = failed["expect_column_values_to_be_in_set"]
    assert (in_set.unexpected_count, in_set.unexpected_sample) == (40, ["crypto"] * 20)
    assert in_set.unexpected_percent == pytest.approx(10.0)
    assert in_set.severity.value == "critical" and in_set.exception is None
    assert sorted(failed["expect_column_values_to_be_unique"].unexpected_sample) == [6, 6]
    assert outcome.statistics.unsuccessful == 2


def test_only_warnings_failing_make_a_warning(engine: GxEngine, write: Callable[[Any], Location]) -> None:
    frame = loans()
    frame.loc[:99, "score"] = None
    frame.loc[0, "amount"] = 1e9
    outcome = engine.validate(write(frame), PASSING)
    assert outcome.verdict is Verdict.warning
    assert [e.kwargs["column"] for e in outcome.failures()] == ["amount", "score"]
    amount = outcome.failures()[0]
    assert amount.unexpected_sample == [1e9] and amount.unexpected_count == 1


def test_a_missing_column_fails_its_expectations_clearly(
    engine: GxEngine, write: Callable[[Any], Location]
) -> None:
    outcome = engine.validate(write(loans().drop(columns=["purpose"])), PASSING)
    assert outcome.verdict is Verdict.failed
    failed = {e.expectation: e for e in outcome.failures()}
    assert set(failed) == {"expect_table_columns_to_match_set", "expect_column_values_to_be_in_set"}
    message = failed["expect_column_values_to_be_in_set"].exception
    assert message is not None and message.startswith("column 'purpose' is not in the data (its columns: ")
    assert failed["expect_table_columns_to_match_set"].exception is None
    assert "purpose" not in failed["expect_table_columns_to_match_set"].observed_value


def test_what_gx_cannot_evaluate_fails_that_expectation_only(engine: GxEngine, tmp_path: Path) -> None:
    checks = suite(
        expect("expect_column_values_to_not_be_null", column="applicant_id"),
        expect("expect_column_values_to_be_between", "warning", column="purpose", min_value=0, max_value=1),
        expect("expect_column_values_to_not_be_null", column="ghost"),
        expect("expect_column_values_to_be_of_type", "warning", column="amount", type_="no_such_type"),
    )
    outcome = engine.validate(write_csv(loans(), tmp_path / "loans.csv"), checks)
    assert [e.success for e in outcome.expectations] == [True, False, False, False]
    assert outcome.expectations[1].exception == (
        "Column values, min_value, and max_value must either be None or of the same type."
    )
    assert "'ghost' is not in the data" in (outcome.expectations[2].exception or "")
    assert (outcome.expectations[3].observed_value, outcome.expectations[3].exception) == ("float64", None)


def test_a_suite_built_in_code_with_kwargs_gx_refuses_fails_that_entry(
    engine: GxEngine, tmp_path: Path
) -> None:
    checks = suite(
        expect("expect_column_values_to_not_be_null", column="applicant_id"),
        expect("expect_column_values_to_not_be_null", "warning", colum="applicant_id"),
        expect("expect_no_such_thing", "warning", column="applicant_id"),
    )
    outcome = engine.validate(write_csv(loans(), tmp_path / "loans.csv"), checks)
    assert [e.success for e in outcome.expectations] == [True, False, False]
    assert outcome.verdict is Verdict.warning
    assert all((e.exception or "").startswith("GX refused the expectation") for e in outcome.expectations[1:])


def test_values_are_json_safe(engine: GxEngine, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2024-01-01", "2024-02-30", "2024-03-01"], errors="coerce"),
            "x": [1.5, float("nan"), float("inf")],
            "text": ["a" * 500, "b", "c"],
        }
    )
    path = tmp_path / "odd.parquet"
    frame.to_parquet(path)
    checks = suite(
        expect("expect_column_values_to_not_be_null", column="when"),
        expect("expect_column_values_to_be_between", column="x", min_value=0, max_value=2),
        expect("expect_column_values_to_be_in_set", column="text", value_set=["b"]),
        expect("expect_column_values_to_be_null", column="when"),
        expect("expect_column_max_to_be_between", column="x", min_value=0, max_value=2),
    )
    outcome = engine.validate(FileTarget(path), checks)
    dumped = json.dumps(outcome.model_dump(mode="json"), allow_nan=False)
    assert "NaN" not in dumped and "Infinity" not in dumped
    assert outcome.expectations[0].unexpected_sample == [None]  # NaT
    text_sample = outcome.expectations[2].unexpected_sample
    assert text_sample == ["a" * 200 + "…", "c"]
    assert outcome.expectations[3].unexpected_sample == ["2024-01-01T00:00:00", "2024-03-01T00:00:00"]
    assert not outcome.expectations[4].success and outcome.expectations[4].observed_value is None  # inf
