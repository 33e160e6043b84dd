"""Test data for the data-quality tests: loan applications written as CSV, Parquet or a SQLite table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.great_expectations.common import FileTarget, SqlTarget
from schemas.suites import Suite

if TYPE_CHECKING:
    import pandas as pd

Location = FileTarget | SqlTarget
PURPOSES = ["car", "home", "education", "travel"]


def loans(rows: int = 400) -> pd.DataFrame:
    """Loan applications: ints, floats with a few nulls, a boolean, low- and high-cardinality text."""
    import pandas as pd

    return pd.DataFrame(
        {
            "applicant_id": range(rows),
            "income": [20_000 + 137 * i for i in range(rows)],
            "amount": [1_000.5 + 53 * i for i in range(rows)],
            "term_months": [12 + 12 * (i % 5) for i in range(rows)],
            "score": [None if i % 50 == 7 else round(300 + (i * 7919) % 550 + 0.25, 2) for i in range(rows)],
            "purpose": [PURPOSES[(i * 7) % 4] for i in range(rows)],
            "reference": [f"ref-{i:05d}" for i in range(rows)],
            "approved": [i % 3 != 0 for i in range(rows)],
        }
    )


def write_csv(frame: pd.DataFrame, path: Path) -> FileTarget:
    frame.to_csv(path, index=False)
    return FileTarget(path.resolve())


def write_parquet(frame: pd.DataFrame, path: Path) -> FileTarget:
    frame.to_parquet(path, index=False)
    return FileTarget(path)


def write_sqlite(frame: pd.DataFrame, path: Path, table: str = "loans") -> SqlTarget:
    import sqlalchemy as sa

    db = sa.create_engine(f"sqlite:///{path}")
    try:
        frame.to_sql(table, db, index=False, if_exists="replace")
    finally:
        db.dispose()
    return SqlTarget(url=f"sqlite:///{path}", table=table)


WRITERS: dict[str, Callable[[Any, Path], Location]] = {
    "csv": lambda frame, tmp: write_csv(frame, tmp / "loans.csv"),
    "parquet": lambda frame, tmp: write_parquet(frame, tmp / "loans.parquet"),
    "sqlite": lambda frame, tmp: write_sqlite(frame, tmp / "loans.db"),
}


def suite(*entries: dict[str, Any], dataset: str = "loans") -> Suite:
    return Suite.model_validate(
        {"dataset": dataset, "version": "1", "status": "reviewed", "expectations": list(entries)}
    )


def expect(name: str, severity: str = "critical", **kwargs: Any) -> dict[str, Any]:
    return {"expectation": name, "severity": severity, "kwargs": kwargs}
