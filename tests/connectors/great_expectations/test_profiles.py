"""The GX adapter's baselines, profiles and drift measured from them, and the Data Docs it renders."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.great_expectations import GxEngine, load_suite
from connectors.great_expectations.common import SqlTarget
from flows.data_quality.drift import categorical_psi, psi
from schemas.suites import CategoricalProfile, NumericProfile, SuiteStatus, Verdict, dump_suite
from tests.connectors.great_expectations.data import Location, loans, write_csv, write_sqlite
from tests.connectors.great_expectations.loan_suites import PASSING

# -- baselines ----------------------------------------------------------------------------------------


def test_a_baseline_passes_on_its_data_and_fails_on_a_corrupted_copy(
    engine: GxEngine, write: Callable[[Any], Location], tmp_path: Path
) -> None:
    frame = loans()
    base = engine.baseline(write(frame), dataset="loans")
    assert base.status is SuiteStatus.baseline and base.dataset == "loans" and base.version == "1"
    kinds = {(e.expectation, e.kwargs.get("column")): e for e in base.expectations}
    assert kinds["expect_table_columns_to_match_set", None].severity.value == "critical"
    assert kinds["expect_table_columns_to_match_set", None].kwargs["column_set"] == list(frame.columns)
    assert {
        e.severity.value for e in base.expectations if e.expectation != "expect_table_columns_to_match_set"
    } == {"warning"}
    assert kinds["expect_table_row_count_to_be_between", None].kwargs == {"min_value": 200, "max_value": 800}
    assert ("expect_column_values_to_not_be_null", "score") not in kinds  # it has nulls
    assert kinds["expect_column_values_to_be_between", "income"].kwargs == {
        "column": "income",
        "min_value": 14000,
        "max_value": 81000,
    }
    assert kinds["expect_column_values_to_be_between", "amount"].kwargs["min_value"] == 0  # never negative
    purposes = kinds["expect_column_values_to_be_in_set", "purpose"].kwargs["value_set"]
    assert isinstance(purposes, list) and set(purposes) == {"car", "home", "education", "travel"}
    assert kinds["expect_column_values_to_be_in_set", "approved"].kwargs["value_set"] == [True, False]
    assert ("expect_column_values_to_be_in_set", "reference") not in kinds  # 400 distinct values

    path = tmp_path / "suites" / "loans.yaml"
    dump_suite(base, path)
    reloaded = load_suite(path)
    assert reloaded == base
    assert engine.validate(write(frame), reloaded).verdict is Verdict.passed

    drifted = frame.copy()
    drifted.loc[:9, "purpose"] = "crypto"
    drifted.loc[10, "income"] = 10**7
    warned = engine.validate(write(drifted), reloaded)
    assert warned.verdict is Verdict.warning
    assert {e.kwargs.get("column") for e in warned.failures()} == {"purpose", "income"}
    broken = engine.validate(write(drifted.drop(columns=["approved"])), reloaded)
    assert broken.verdict is Verdict.failed


# -- profiles -----------------------------------------------------------------------------------------


def test_a_profile_is_the_same_from_csv_and_from_sqlite(engine: GxEngine, tmp_path: Path) -> None:
    frame = loans(1234)
    from_csv = engine.profile(write_csv(frame, tmp_path / "loans.csv"))
    from_sql = engine.profile(write_sqlite(frame, tmp_path / "loans.db"))
    assert from_csv.rows == from_sql.rows == 1234
    assert list(from_csv.columns) == list(from_sql.columns) == list(frame.columns)
    for name, csv_column in from_csv.columns.items():
        sql_column = from_sql.columns[name]
        assert csv_column.kind == sql_column.kind, name
        if isinstance(csv_column, NumericProfile) and isinstance(sql_column, NumericProfile):
            assert csv_column.mean == pytest.approx(sql_column.mean, rel=1e-12)
            for field in ("count", "nulls", "min", "max", "edges", "counts"):
                assert getattr(csv_column, field) == pytest.approx(getattr(sql_column, field)), (name, field)
            assert flat(csv_column.quantiles) == pytest.approx(flat(sql_column.quantiles)), name
        else:
            assert csv_column == sql_column
    json.dumps(from_csv.model_dump(mode="json"), allow_nan=False)


def flat(pairs: list[tuple[float, float]]) -> list[float]:
    return [x for pair in pairs for x in pair]


def test_profile_contents(engine: GxEngine, tmp_path: Path) -> None:
    frame = loans(1000)
    profile = engine.profile(write_csv(frame, tmp_path / "loans.csv"))
    score = profile.columns["score"]
    assert isinstance(score, NumericProfile)
    assert (score.count, score.nulls) == (980, 20)
    scores = frame["score"].dropna()
    assert (score.min, score.max, score.mean) == pytest.approx((scores.min(), scores.max(), scores.mean()))
    assert [p for p, _ in score.quantiles] == pytest.approx([i / 100 for i in range(101)])
    assert [v for _, v in score.quantiles] == pytest.approx(
        list(scores.quantile([i / 100 for i in range(101)]))
    )
    assert score.edges == pytest.approx(list(scores.quantile([i / 10 for i in range(1, 10)])))
    assert len(score.counts) == 10 and sum(score.counts) == 980
    assert max(score.counts) - min(score.counts) <= 3  # decile bins hold a tenth each
    purpose = profile.columns["purpose"]
    assert isinstance(purpose, CategoricalProfile)
    assert purpose.frequencies == {"car": 250, "education": 250, "home": 250, "travel": 250}
    reference = profile.columns["reference"]
    assert isinstance(reference, CategoricalProfile)
    assert (reference.distinct, len(reference.frequencies), reference.other) == (1000, 50, 950)
    assert list(reference.frequencies)[:2] == ["ref-00000", "ref-00001"]  # ties go by value
    approved = profile.columns["approved"]
    assert isinstance(approved, CategoricalProfile) and approved.frequencies == {"True": 666, "False": 334}


def test_a_profile_on_reference_edges_measures_drift(engine: GxEngine, tmp_path: Path) -> None:
    frame = loans(2000)
    reference = engine.profile(write_csv(frame, tmp_path / "ref.csv"), columns=["amount", "purpose"])
    assert list(reference.columns) == ["amount", "purpose"]
    edges = {n: c.edges for n, c in reference.columns.items() if isinstance(c, NumericProfile)}
    same = engine.profile(
        write_sqlite(frame, tmp_path / "same.db"), columns=["amount", "purpose"], edges=edges
    )
    shifted_frame = frame.assign(amount=frame["amount"] * 1.3, purpose=["car"] * 1500 + ["home"] * 500)
    shifted = engine.profile(write_csv(shifted_frame, tmp_path / "shifted.csv"), edges=edges)
    ref_amount, same_amount, shifted_amount = (p.columns["amount"] for p in (reference, same, shifted))
    assert isinstance(ref_amount, NumericProfile) and isinstance(same_amount, NumericProfile)
    assert isinstance(shifted_amount, NumericProfile)
    assert same_amount.edges == ref_amount.edges == shifted_amount.edges
    assert psi(ref_amount.counts, same_amount.counts) == pytest.approx(0.0)
    assert psi(ref_amount.counts, shifted_amount.counts) > 0.25
    ref_purpose, shifted_purpose = reference.columns["purpose"], shifted.columns["purpose"]
    assert isinstance(ref_purpose, CategoricalProfile) and isinstance(shifted_purpose, CategoricalProfile)
    assert categorical_psi(ref_purpose.frequencies, shifted_purpose.frequencies) > 0.25


def test_an_empty_table_profiles_and_baselines(engine: GxEngine, tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name TEXT)")
    location = SqlTarget(url=f"sqlite:///{db}", table="t")
    profile = engine.profile(location)
    assert profile.rows == 0
    ids = profile.columns["id"]
    assert isinstance(ids, NumericProfile) and (ids.count, ids.quantiles, ids.counts) == (0, [], [0])
    base = engine.baseline(location)
    assert base.dataset == "t" and len(base.expectations) == 2
    assert engine.validate(location, base).verdict is Verdict.passed


# -- Data Docs ----------------------------------------------------------------------------------------


def test_data_docs_show_the_results_given(
    engine: GxEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    location = write_csv(loans(), tmp_path / "loans.csv")
    frame = loans().drop(columns=["purpose"])
    frame.loc[:30, "score"] = None
    passed = engine.validate(location, PASSING, data_version="v1")
    failed = engine.validate(write_csv(frame, tmp_path / "bad.csv"), PASSING, data_version="v2")
    site = tmp_path / "state" / "data-docs"
    with caplog.at_level(logging.WARNING):
        index = engine.build_data_docs(site, [passed, failed])
    assert index == site.resolve() / "index.html" and index.is_file()
    assert "data docs rendering" not in caplog.text.lower()
    pages = sorted(site.glob("validations/**/*.html"))
    assert len(pages) == 2
    text = index.read_text()
    assert "'Failed'" in text and "'Success'" in text
    failed_page = next(p for p in pages if "/v2/" in p.as_posix()).read_text()
    assert (
        "column &#39;purpose&#39; is not in the data" in failed_page
        or "column 'purpose' is not in" in failed_page
    )
    # the site shows exactly the results given: pages of results not given again are removed
    engine.build_data_docs(site, [failed])
    assert len(list(site.glob("validations/**/*.html"))) == 1
    assert math.isfinite(passed.duration_seconds)
