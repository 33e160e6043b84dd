"""What every section of the management-review pack is built from: the period, per-month counts, the
run history, the draft a section fills, and the wording helpers. Pure: no Prefect, no Kafka.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from schemas.review_pack import (
    Figure,
    HeatMap,
    Section,
    Table,
    TrendChart,
)

if TYPE_CHECKING:
    from connectors.prefect_api import FlowRunView


ALWAYS_PASSES = 5
# A dataset that failed this many checks in the period is a recurring failure.
RECURRING_FAILURES = 2
FAILED_RUN_STATES = frozenset({"Failed", "Crashed", "TimedOut"})


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end

    def months(self) -> list[str]:
        """'YYYY-MM' of every month the period touches, in order: the x axis of the trends."""
        labels: list[str] = []
        year, month = self.start.year, self.start.month
        last = (self.end - timedelta(microseconds=1)).astimezone(UTC)
        while (year, month) <= (last.year, last.month):
            labels.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return labels or [f"{self.start.year:04d}-{self.start.month:02d}"]


def month_of(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def month_end(label: str) -> datetime:
    year, month = (int(part) for part in label.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def per_month(period: Period, moments: Iterable[datetime]) -> list[float | None]:
    counts = Counter(month_of(m) for m in moments if m in period)
    return [float(counts.get(label, 0)) for label in period.months()]


@dataclass(frozen=True)
class RunHistory:
    """The Prefect flow runs of the period, or why they could not be read."""

    runs: Sequence[FlowRunView] = ()
    error: str | None = None


@dataclass
class Draft:
    summary: str
    figures: dict[str, Figure]
    tables: list[Table]
    charts: list[TrendChart | HeatMap]
    findings: list[str]
    missing: list[str]


def new_draft(summary: str = "", **figures: Figure) -> Draft:
    return Draft(summary, dict(figures), [], [], [], [])


def section(key: str, clause: str, title: str, draft: Draft) -> Section:
    return Section(
        key=key,
        clause=clause,
        title=title,
        summary=draft.summary,
        figures=draft.figures,
        tables=draft.tables,
        charts=draft.charts,
        findings=draft.findings,
        missing=draft.missing,
    )


def count_of(count: int, noun: str, plural: str | None = None) -> str:
    """'1 action', '3 actions': summaries are read aloud in the meeting."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def day_of(moment: datetime | date | None) -> str:
    if moment is None:
        return "—"
    return moment.date().isoformat() if isinstance(moment, datetime) else moment.isoformat()
