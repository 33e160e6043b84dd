"""Facts about a dataset's columns, from pandas or from the database in the same shape (aggregates and
window queries: the table is never loaded into Python), and the profiles drift is measured against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from schemas.suites import (
    CategoricalProfile,
    NumericProfile,
)

if TYPE_CHECKING:
    import pandas as pd
from connectors.great_expectations.common import DECILES, QUANTILES, TOP_VALUES, json_safe
from connectors.great_expectations.sources import Sql


@dataclass
class _Column:
    """Facts about one column, from pandas or from SQL, in the same shape (values native)."""

    name: str
    numeric: bool
    integer: bool = False
    count: int = 0
    nulls: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    quantiles: list[tuple[float, float]] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    top: list[tuple[Any, int]] = field(default_factory=list)
    distinct: int = 0


@dataclass
class Facts:
    rows: int
    columns: list[_Column]


def _quantiles(value_at: Callable[[int], float], n: int) -> list[tuple[float, float]]:
    """Linear interpolation between order statistics (numpy's and pandas' default), from a lookup."""
    out = []
    for p in QUANTILES:
        h = (n - 1) * p
        lo = math.floor(h)
        hi = min(lo + 1, n - 1)
        a = value_at(lo)
        out.append((p, a + (value_at(hi) - a) * (h - lo)))
    return out


def _ranks(n: int) -> list[int]:
    """The order statistics (0-based) `_quantiles` reads."""
    needed: set[int] = set()
    for p in QUANTILES:
        lo = math.floor((n - 1) * p)
        needed |= {lo, min(lo + 1, n - 1)}
    return sorted(needed)


def _decile_edges(quantiles: Sequence[tuple[float, float]]) -> list[float]:
    return sorted({quantiles[i][1] for i in DECILES}) if quantiles else []


def _ordered_top(counts: Sequence[tuple[Any, int]]) -> list[tuple[Any, int]]:
    items = list(counts)
    try:
        items.sort(key=lambda kv: (-kv[1], kv[0]))
    except TypeError:  # values of mixed types
        items.sort(key=lambda kv: (-kv[1], str(kv[0])))
    return items[:TOP_VALUES]


def _is_numeric(series: pd.Series) -> bool:
    from pandas.api import types

    return bool(types.is_numeric_dtype(series) and not types.is_bool_dtype(series))


def frame_facts(
    frame: pd.DataFrame,
    columns: Sequence[str] | None,
    edges: Mapping[str, Sequence[float]],
    distribution: bool,
) -> Facts:
    import numpy as np
    import pandas as pd
    from pandas.api import types

    chosen = None if columns is None else set(columns)
    wanted = [c for c in frame.columns if chosen is None or c in chosen]
    out: list[_Column] = []
    for name in wanted:
        series = frame[name]
        if _is_numeric(series):
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            finite = np.sort(values[np.isfinite(values)])
            n = int(finite.size)
            col = _Column(
                name, numeric=True, integer=types.is_integer_dtype(series), count=n, nulls=len(values) - n
            )
            if n:
                col.min, col.max, col.mean = float(finite[0]), float(finite[-1]), float(finite.mean())
                if distribution:
                    col.quantiles = _quantiles(finite.item, n)
            if distribution:
                col.edges = (
                    sorted(float(e) for e in edges[name]) if name in edges else _decile_edges(col.quantiles)
                )
                bins = np.searchsorted(np.asarray(col.edges, dtype="float64"), finite, side="right")
                col.counts = [int(c) for c in np.bincount(bins, minlength=len(col.edges) + 1)]
        else:
            present = series[series.notna()]
            if isinstance(series.dtype, pd.CategoricalDtype):
                present = present.astype(object)
            counts = present.value_counts(sort=False)
            col = _Column(name, numeric=False, count=len(present), nulls=len(series) - len(present))
            col.distinct = len(counts)
            col.top = _ordered_top([(_native(v), int(c)) for v, c in counts.items()])
        out.append(col)
    return Facts(rows=len(frame), columns=out)


def _native(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and callable(value.item) else value


def _sql_numeric(column: sa.Column[Any]) -> tuple[bool, bool]:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False, False
    return isinstance(kind, sa.Integer | sa.Numeric | sa.Float), isinstance(kind, sa.Integer)


def sql_facts(
    sql: Sql, columns: Sequence[str] | None, edges: Mapping[str, Sequence[float]], distribution: bool
) -> Facts:
    """The same facts as `frame_facts`, computed by the database: aggregates, and for quantiles a
    window query that returns only the order statistics needed (about 200 rows per column)."""
    table = sql.table
    chosen = None if columns is None else set(columns)
    wanted = [c for c in table.columns if chosen is None or c.name in chosen]
    aggregates: list[sa.ColumnElement[Any]] = [sa.func.count().label("rows")]
    for i, c in enumerate(wanted):
        numeric, _ = _sql_numeric(c)
        aggregates.append(sa.func.count(c).label(f"n{i}"))
        if numeric:
            aggregates += [
                sa.func.min(c).label(f"min{i}"),
                sa.func.max(c).label(f"max{i}"),
                sa.func.avg(c).label(f"avg{i}"),
            ]
        else:
            aggregates.append(sa.func.count(sa.distinct(c)).label(f"d{i}"))
    out: list[_Column] = []
    with sql.engine.connect() as conn:
        row = conn.execute(sa.select(*aggregates).select_from(table)).mappings().one()
        rows = int(row["rows"])
        for i, c in enumerate(wanted):
            numeric, integer = _sql_numeric(c)
            count = int(row[f"n{i}"])
            col = _Column(c.name, numeric=numeric, integer=integer, count=count, nulls=rows - count)
            if numeric:
                if count:
                    col.min, col.max = float(row[f"min{i}"]), float(row[f"max{i}"])
                    col.mean = float(row[f"avg{i}"])
                if distribution:
                    if count:
                        stats = _order_statistics(conn, table, c, _ranks(count))
                        col.quantiles = _quantiles(stats.__getitem__, count)
                    col.edges = (
                        sorted(float(e) for e in edges[c.name])
                        if c.name in edges
                        else _decile_edges(col.quantiles)
                    )
                    col.counts = _sql_histogram(conn, table, c, col.edges, count)
            else:
                col.distinct = int(row[f"d{i}"])
                frequency = sa.func.count().label("frequency")
                top = conn.execute(
                    sa.select(c, frequency)
                    .where(c.is_not(None))
                    .group_by(c)
                    .order_by(frequency.desc(), c)
                    .limit(TOP_VALUES)
                )
                col.top = _ordered_top([(v, int(f)) for v, f in top])
            out.append(col)
    return Facts(rows=rows, columns=out)


def _order_statistics(
    conn: sa.Connection, table: sa.Table, column: sa.Column[Any], ranks: Sequence[int]
) -> dict[int, float]:
    ordered = (
        sa.select(column.label("v"), sa.func.row_number().over(order_by=column).label("rn"))
        .where(column.is_not(None))
        .subquery()
    )
    wanted = [r + 1 for r in ranks]  # row_number counts from 1
    rows = conn.execute(sa.select(ordered.c.rn, ordered.c.v).where(ordered.c.rn.in_(wanted)))
    return {int(rn) - 1: float(v) for rn, v in rows}


def _sql_histogram(
    conn: sa.Connection, table: sa.Table, column: sa.Column[Any], edges: Sequence[float], count: int
) -> list[int]:
    if not edges:
        return [count]
    bucket = sa.case(*[(column < edge, i) for i, edge in enumerate(edges)], else_=len(edges))
    binned = sa.select(bucket.label("b")).where(column.is_not(None)).subquery()
    counts = [0] * (len(edges) + 1)
    for b, n in conn.execute(sa.select(binned.c.b, sa.func.count()).group_by(binned.c.b)):
        counts[int(b)] = int(n)
    return counts


def column_profile(col: _Column) -> NumericProfile | CategoricalProfile:
    if col.numeric:
        return NumericProfile(
            count=col.count,
            nulls=col.nulls,
            min=col.min,
            max=col.max,
            mean=col.mean,
            quantiles=col.quantiles,
            edges=col.edges,
            counts=col.counts,
        )
    frequencies: dict[str, int] = {}
    for value, n in col.top:
        key = str(json_safe(value))
        frequencies[key] = frequencies.get(key, 0) + n
    return CategoricalProfile(
        count=col.count,
        nulls=col.nulls,
        distinct=col.distinct,
        frequencies=frequencies,
        other=col.count - sum(n for _, n in col.top),
    )
