"""The management-review pack (9.3.2): what the flow gathers, what the renderers draw, what is kept.

One section per 9.3.2 input, always present. A section whose data is missing says so in `missing`
instead of disappearing, so that a review held on thin evidence is still evidence of that (issue 8).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Figure = int | float | str | None


class PackModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Table(PackModel):
    title: str
    columns: list[str]
    rows: list[list[str]] = Field(default_factory=list)


class Series(PackModel):
    name: str
    values: list[float | None] = Field(description="One value per label of the chart; None = no data.")


class TrendChart(PackModel):
    """Values over time, one label per month of the period (e.g. "2026-10")."""

    kind: Literal["trend"] = "trend"
    title: str
    unit: str = Field("", description="e.g. '%' or 'count'.")
    labels: list[str]
    series: list[Series]


class HeatMap(PackModel):
    """Open risks counted by likelihood (rows, highest first) and impact (columns, lowest first)."""

    kind: Literal["heatmap"] = "heatmap"
    title: str
    likelihood_labels: list[str] = Field(description="Row labels, highest likelihood first.")
    impact_labels: list[str] = Field(description="Column labels, lowest impact first.")
    counts: list[list[int]] = Field(description="counts[row][column].")
    levels: list[list[str]] = Field(description="The risk level of each cell: low, medium, high, critical.")


Chart = TrendChart | HeatMap


class Section(PackModel):
    key: str = Field(description="Stable key, e.g. 'previous-actions' or 'performance/incidents'.")
    clause: str = Field(description="The 9.3.2 input it answers, e.g. '9.3.2 a)'.")
    title: str
    summary: str = Field(description="One or two sentences a reader can take away.")
    figures: dict[str, Figure] = Field(default_factory=dict, description="Named figures, label → value.")
    tables: list[Table] = Field(default_factory=list)
    charts: list[Chart] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list, description="Bullet points.")
    missing: list[str] = Field(
        default_factory=list, description="What could not be gathered, and why. Never silently empty."
    )


class Attendance(PackModel):
    name: str
    email: str
    role: str


class ReviewPack(PackModel):
    review_id: str
    kind: str = Field(description="scheduled or extraordinary.")
    reason: str
    period_start: AwareDatetime
    period_end: AwareDatetime
    meeting_at: AwareDatetime
    generated_at: AwareDatetime
    attendees: list[Attendance]
    agenda: list[str]
    sections: list[Section]

    def section(self, key: str) -> Section:
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(f"no section {key!r} in the pack; it has {', '.join(s.key for s in self.sections)}")


# The 9.3.2 inputs in the order the pack presents them: (key, clause, title).
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("previous-actions", "9.3.2 a)", "Status of actions from previous management reviews"),
    ("issues", "9.3.2 b)", "Changes in external and internal issues"),
    ("interested-parties", "9.3.2 c)", "Changes in needs and expectations of interested parties"),
    ("performance/nonconformities", "9.3.2 d) 1", "Nonconformities and corrective actions"),
    ("performance/data-quality", "9.3.2 d) 2", "Monitoring and measurement: data quality and drift"),
    ("performance/risks", "9.3.2 d) 2", "Monitoring and measurement: AI risks"),
    ("performance/incidents", "9.3.2 d) 2", "Monitoring and measurement: incidents and regulatory clocks"),
    ("performance/approvals", "9.3.2 d) 2", "Monitoring and measurement: approvals"),
    ("performance/operations", "9.3.2 d) 2", "Monitoring and measurement: flow runs"),
    ("performance/audit", "9.3.2 d) 3", "Audit results"),
    ("improvement", "9.3.2 e)", "Opportunities for continual improvement"),
)
