"""Drift between a dataset version and the last accepted one, from stored statistics only.

PSI (population stability index) compares binned distributions: numeric columns on the reference's
bin edges, categorical columns on the union of their categories. KS (Kolmogorov-Smirnov) compares the
two empirical distribution functions; with only stored quantiles it is the largest gap between the
two piecewise-linear CDFs they describe, which is exact at the quantile points and close between them.
Neither needs the reference data itself, so the reference can be a number of versions ago.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.policy import DataQuality
    from schemas.suites import DatasetProfile

# Empty bins would make PSI infinite; this floor is the usual convention (a fraction of 0.01%).
_FLOOR = 1e-4


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI of two distributions over the same bins (fractions or counts; both are normalised)."""
    if len(expected) != len(actual):
        raise ValueError(f"PSI needs the same bins: {len(expected)} reference bins, {len(actual)} current")
    e, a = _normalise(expected), _normalise(actual)
    return sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True))


def categorical_psi(expected: Mapping[str, float], actual: Mapping[str, float]) -> float:
    """PSI over the union of categories; a category new in either side counts as a bin of its own."""
    categories = sorted(set(expected) | set(actual))
    return psi([expected.get(c, 0.0) for c in categories], [actual.get(c, 0.0) for c in categories])


def bin_counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts of values in the bins the edges make, the outer bins open-ended (so nothing falls out)."""
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect_right(edges, v)] += 1
    return counts


def ks_from_quantiles(
    reference: Sequence[tuple[float, float]], current: Sequence[tuple[float, float]]
) -> float:
    """Largest CDF gap between two distributions given as (probability, value) quantile points."""
    ref, cur = _cdf_points(reference), _cdf_points(current)
    if not ref or not cur:
        raise ValueError("KS needs at least one quantile on each side")
    xs = sorted({x for _, x in ref} | {x for _, x in cur})
    return max(abs(_cdf_at(ref, x) - _cdf_at(cur, x)) for x in xs)


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sample p-value of a KS statistic for samples of n and m values."""
    if n <= 0 or m <= 0:
        return 1.0
    from scipy.special import kolmogorov

    return float(kolmogorov(statistic * math.sqrt(n * m / (n + m))))


def _normalise(values: Sequence[float]) -> list[float]:
    if any(v < 0 or math.isnan(v) for v in values):
        raise ValueError("bin counts and fractions cannot be negative or NaN")
    total = sum(values)
    if total <= 0:
        raise ValueError("a distribution with no mass has no drift to measure")
    floored = [max(v / total, _FLOOR) for v in values]
    norm = sum(floored)
    return [v / norm for v in floored]


def _cdf_points(quantiles: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    points = sorted((x, p) for p, x in quantiles if not (math.isnan(p) or math.isnan(x)))
    # Repeated values (a discrete column) keep the highest probability reached at that value.
    merged: dict[float, float] = {}
    for x, p in points:
        merged[x] = max(p, merged.get(x, 0.0))
    return [(p, x) for x, p in sorted(merged.items())]


def _cdf_at(points: Sequence[tuple[float, float]], x: float) -> float:
    """The piecewise-linear CDF through the points: 0 before the first value, 1 after the last."""
    if x < points[0][1]:
        return 0.0
    if x >= points[-1][1]:
        return 1.0
    for (p0, x0), (p1, x1) in itertools.pairwise(points):
        if x0 <= x < x1:
            return p0 + (p1 - p0) * (x - x0) / (x1 - x0)
    return 1.0


def compare_profiles(
    reference: DatasetProfile, current: DatasetProfile, limits: DataQuality, columns: list[str]
) -> dict[str, Any]:
    """Per column: PSI (and KS for numbers) against the reference, with the level the policy gives it."""
    drift: dict[str, Any] = {}
    for name, ref in reference.columns.items():
        if name not in columns:
            continue
        cur = current.columns.get(name)
        if cur is None or cur.kind != ref.kind:
            drift[name] = {"level": "critical", "reason": "column missing or changed kind"}
            continue
        finding: dict[str, Any]
        if ref.kind == "numeric" and cur.kind == "numeric":
            # No mass on either side (an all-null column): no distribution to compare.
            if not sum(ref.counts) or not sum(cur.counts) or len(ref.counts) != len(cur.counts):
                continue
            d = ks_from_quantiles(ref.quantiles, cur.quantiles) if ref.quantiles and cur.quantiles else 0.0
            finding = {
                "psi": round(psi(ref.counts, cur.counts), 6),
                "ks": round(d, 6),
                "ks_pvalue": ks_pvalue(d, ref.count, cur.count),
            }
        elif ref.kind == "categorical" and cur.kind == "categorical":
            ref_freq = {**ref.frequencies, "(other)": ref.other}
            cur_freq = {**cur.frequencies, "(other)": cur.other}
            if not sum(ref_freq.values()) or not sum(cur_freq.values()):
                continue
            finding = {"psi": round(categorical_psi(ref_freq, cur_freq), 6)}
        else:
            continue
        level = "none"
        if finding["psi"] >= limits.psi_critical:
            level = "critical"
        elif finding["psi"] >= limits.psi_warning or finding.get("ks_pvalue", 1.0) < limits.ks_pvalue:
            level = "warning"
        drift[name] = {**finding, "level": level}
    return drift
