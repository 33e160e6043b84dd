"""Drift measures agree with their textbook definitions and with scipy where scipy applies."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from flows.data_quality.drift import bin_counts, categorical_psi, ks_from_quantiles, psi

PROBS = [i / 100 for i in range(0, 101)]


def quantiles(values: np.ndarray) -> list[tuple[float, float]]:
    return [(p, float(np.quantile(values, p))) for p in PROBS]


def test_identical_distributions_have_no_drift() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)
    assert categorical_psi({"a": 5, "b": 5}, {"b": 50, "a": 50}) == pytest.approx(0.0)


def test_psi_matches_the_definition() -> None:
    e, a = [0.2, 0.3, 0.5], [0.25, 0.25, 0.5]
    expected = sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True))
    assert psi(e, a) == pytest.approx(expected)


def test_a_shifted_numeric_column_crosses_the_usual_thresholds() -> None:
    rng = np.random.default_rng(7)
    ref, same, shifted = rng.normal(0, 1, 20_000), rng.normal(0, 1, 20_000), rng.normal(0.8, 1, 20_000)
    edges = list(np.quantile(ref, [i / 10 for i in range(1, 10)]))
    base = bin_counts(list(ref), edges)
    assert psi(base, bin_counts(list(same), edges)) < 0.02
    assert psi(base, bin_counts(list(shifted), edges)) > 0.25


def test_new_and_vanished_categories_count_as_drift() -> None:
    assert categorical_psi({"a": 90, "b": 10}, {"a": 90, "c": 10}) > 1.0


def test_ks_from_quantiles_is_close_to_scipys_on_the_raw_data() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(0, 1, 5_000), rng.normal(0.3, 1.2, 5_000)
    exact = stats.ks_2samp(a, b).statistic
    assert ks_from_quantiles(quantiles(a), quantiles(b)) == pytest.approx(exact, abs=0.02)
    assert ks_from_quantiles(quantiles(a), quantiles(a)) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("expected", "actual", "message"),
    [([1, 2], [1, 2, 3], "same bins"), ([0, 0], [1, 1], "no mass"), ([1, -1], [1, 1], "negative")],
)
def test_bad_inputs_are_refused_clearly(expected: list[float], actual: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        psi(expected, actual)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=2, max_size=20), st.randoms())
def test_psi_is_never_negative_and_zero_only_for_equal_shapes(counts: list[int], rnd: random.Random) -> None:
    if sum(counts) == 0:
        return
    other = [c + rnd.randint(0, 5) for c in counts]
    assert psi(counts, other) >= -1e-12
    assert psi(counts, [c * 3 for c in counts]) == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(st.lists(finite, min_size=1, max_size=40), st.lists(finite, min_size=1, max_size=40))
def test_ks_is_a_probability_gap(a: list[float], b: list[float]) -> None:
    d = ks_from_quantiles(quantiles(np.array(a)), quantiles(np.array(b)))
    assert 0.0 <= d <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=1, max_size=200), st.lists(finite, max_size=12, unique=True))
def test_every_value_lands_in_exactly_one_bin(values: list[float], edges: list[float]) -> None:
    assert sum(bin_counts(values, sorted(edges))) == len(values)


def test_a_column_without_values_on_either_side_has_no_drift_and_no_crash() -> None:
    from flows.data_quality.drift import compare_profiles
    from schemas.policy import DataQuality
    from schemas.suites import DatasetProfile

    def profile(counts: list[int], nulls: int) -> DatasetProfile:
        column = {
            "kind": "numeric",
            "count": sum(counts),
            "nulls": nulls,
            "edges": [1.0, 2.0],
            "counts": counts,
        }
        return DatasetProfile.model_validate({"rows": 3, "columns": {"x": column}})

    full, all_null = profile([1, 1, 1], 0), profile([0, 0, 0], 3)
    assert compare_profiles(full, all_null, DataQuality(), ["x"]) == {}
    assert compare_profiles(all_null, full, DataQuality(), ["x"]) == {}
    assert compare_profiles(full, full, DataQuality(), ["x"])["x"]["level"] == "none"
