"""What a data-quality check shows in Prefect: its expectations and drift as table artifacts, and a
link to the dataset's Data Docs site, rebuilt from every result the register holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.artifacts import create_link_artifact, create_table_artifact

from flows.data_quality.views import label
from flows.evidence import artifact_key, register, run_settings
from flows.text import markdown_text

if TYPE_CHECKING:
    from schemas.events import DataChangedEvent
    from schemas.suites import CheckOutcome

FLOW = "check-data-quality"


def publish_tables(
    event: DataChangedEvent, outcome: CheckOutcome, drift: dict[str, Any], headline: str
) -> None:
    """Each table says the check's outcome first (`headline`, its description), then its own part."""
    data = event.data
    rows = [
        {
            "expectation": label(e.expectation, e.kwargs),
            "severity": e.severity.value,
            "success": e.success,
            "observed": str(e.observed_value)[:80] if e.observed_value is not None else "",
            "unexpected": e.unexpected_count if e.unexpected_count is not None else "",
            "sample": ", ".join(str(v) for v in e.unexpected_sample[:5]),
            "error": e.exception or "",
        }
        for e in outcome.expectations
    ]
    key = artifact_key(FLOW, data.dataset_id)
    create_table_artifact(
        table=rows,
        key=f"{key}-expectations",
        description=markdown_text(f"{headline}. Every expectation of the suite, failed ones with samples."),
    )
    if drift:
        drift_rows = [{"column": c, **{k: v for k, v in f.items()}} for c, f in sorted(drift.items())]
        create_table_artifact(
            table=drift_rows,
            key=f"{key}-drift",
            description=markdown_text(f"{headline}. Drift of each column against the reference version."),
        )
    docs = build_docs(data.dataset_id)
    if docs is not None:
        create_link_artifact(
            link=docs.as_uri(),
            link_text="Data Docs",
            key=f"{key}-data-docs",
            description=markdown_text(
                f"{headline}. Every check of {data.dataset_id} as Great Expectations shows it."
            ),
        )


def build_docs(dataset: str) -> Path | None:
    """The dataset's Data Docs site in the state folder, from every result the register holds."""
    from connectors.great_expectations import GxEngine
    from schemas.suites import CheckOutcome

    with register().reader() as uow:
        results = uow.data_quality.find(order_by="checked_at")
        versions = {v.id: v for v in uow.dataset_versions.find(dataset=dataset)}
    outcomes = []
    for r in results:
        v = versions.get(r.dataset_version_id)
        if v is None or "engine" not in r.statistics:
            continue
        outcomes.append(
            CheckOutcome.model_validate(
                {
                    "dataset": dataset,
                    "suite_version": r.suite_version,
                    "suite_status": r.statistics.get("suite_status", "reviewed"),
                    "data_version": v.version,
                    "location": r.statistics["location"],
                    "engine": r.statistics["engine"],
                    "verdict": r.verdict if r.verdict in ("passed", "failed", "warning") else "passed",
                    "statistics": {
                        k: r.statistics[k]
                        for k in ("evaluated", "successful", "unsuccessful", "success_percent")
                    },
                    "expectations": r.expectations,
                    "checked_at": r.checked_at,
                    "duration_seconds": r.statistics.get("duration_seconds", 0.0),
                }
            )
        )
    if not outcomes:
        return None
    from schemas.file_names import id_path

    settings = run_settings()
    # The dataset id comes from the event; the site is rebuilt (old pages removed) in this folder,
    # so it must be the dataset's own and inside data-docs/.
    site = id_path(settings.state_path / "data-docs", dataset)
    return GxEngine().build_data_docs(site, outcomes)
