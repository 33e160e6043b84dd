"""What `aims datasets` and `aims dq show` tell about datasets and their checks, as plain data. Pure.

Built from register records (and the suite file, read without GX): the CLI prints these as tables,
or as JSON with `--json`; names and values in them come from events and data, so the printer escapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from flows.data_quality.suite_review import ACCEPTANCE, PROVISIONAL, REMINDER, reference_of
from schemas.records import DataQualityResult, Dataset, DatasetVersion, SuiteReview


def label(expectation: str, kwargs: dict[str, Any]) -> str:
    column = kwargs.get("column")
    return f"{expectation}({column})" if column else expectation


def suite_info(path: Path) -> dict[str, Any]:
    """The suite file as it stands: missing, invalid (with why), or its status, version and size."""
    from schemas.suites import SuiteError, load_suite

    info: dict[str, Any] = {"path": str(path), "status": "missing", "version": None, "expectations": 0}
    if not path.is_file():
        return info
    try:
        suite = load_suite(path)
    except (SuiteError, OSError) as exc:
        return {**info, "status": "invalid", "problem": str(exc)}
    return {
        **info,
        "status": suite.status.value,
        "version": suite.version,
        "expectations": len(suite.expectations),
    }


def failures(result: DataQualityResult) -> list[dict[str, Any]]:
    """The expectations that failed, with what GX observed and a sample of unexpected values."""
    out = []
    for e in result.expectations:
        if e.get("success", True):
            continue
        out.append(
            {
                "expectation": label(str(e.get("expectation", "?")), e.get("kwargs") or {}),
                "severity": e.get("severity"),
                "observed": e.get("observed_value"),
                "unexpected_count": e.get("unexpected_count"),
                "unexpected_percent": e.get("unexpected_percent"),
                "sample": list(e.get("unexpected_sample") or []),
                "error": e.get("exception"),
            }
        )
    return out


def drifted(result: DataQualityResult | None) -> list[str]:
    if result is None:
        return []
    return sorted(c for c, f in result.drift.items() if isinstance(f, dict) and f.get("level") != "none")


def version_row(version: DatasetVersion, result: DataQualityResult | None) -> dict[str, Any]:
    failed = failures(result) if result is not None else []
    return {
        "result": version.id if result is not None else None,
        "version": version.version,
        "status": version.status,
        "verdict": result.verdict if result is not None else None,
        "suite_version": result.suite_version if result is not None else None,
        "suite_status": result.statistics.get("suite_status") if result is not None else None,
        "failed_critical": [f["expectation"] for f in failed if f["severity"] == "critical"],
        "failed_warning": [f["expectation"] for f in failed if f["severity"] == "warning"],
        "drifted": drifted(result),
        "reference_version": result.statistics.get("reference_version") if result is not None else None,
        "received_at": version.received_at.isoformat(),
        "checked_at": result.checked_at.isoformat() if result is not None else None,
    }


def dataset_view(
    dataset: Dataset,
    versions: Sequence[DatasetVersion],
    results: Iterable[DataQualityResult],
    reviews: Sequence[SuiteReview],
    suite: dict[str, Any],
    owner: str | None,
) -> dict[str, Any]:
    """One dataset: its owner, suite, drift reference, versions newest first and the suite's reviews."""
    by_version = {r.dataset_version_id: r for r in results}
    ordered = sorted(versions, key=lambda v: v.received_at)
    reference = reference_of(ordered, "")
    rows = [version_row(v, by_version.get(v.id)) for v in reversed(ordered)]
    return {
        "name": dataset.name,
        "owner": owner,
        "suite": suite,
        "reference": reference.version if reference is not None else None,
        "provisional": [r["version"] for r in rows if r["status"] == PROVISIONAL],
        "versions": rows,
        "reviews": [r.model_dump(mode="json") for r in sorted(reviews, key=lambda r: r.at)],
        "accepted_by": next(
            (
                r.by
                for r in sorted(reviews, key=lambda r: r.at, reverse=True)
                if r.kind == ACCEPTANCE and r.accepted
            ),
            None,
        ),
        "reminded": any(r.kind == REMINDER for r in reviews),
    }


def result_view(
    result: DataQualityResult, version: DatasetVersion | None, docs: Path | None
) -> dict[str, Any]:
    """One check in full: verdict, suite, statistics, failed expectations, drift, the Data Docs page."""
    return {
        "result": result.id,
        "dataset": version.dataset if version is not None else None,
        "version": version.version if version is not None else None,
        "status": version.status if version is not None else None,
        "verdict": result.verdict,
        "suite": result.suite_name,
        "suite_version": result.suite_version,
        "suite_status": result.statistics.get("suite_status"),
        "checked_at": result.checked_at.isoformat(),
        "statistics": result.statistics,
        "failed": failures(result),
        "drift": result.drift,
        "location": version.location if version is not None else None,
        "content_hash": version.content_hash if version is not None else None,
        "data_docs": str(docs) if docs is not None else None,
    }


def docs_page(site: Path, version: str) -> Path | None:
    """The Data Docs page of a version's check in a dataset's site, else the site's index, else None.

    GX files a validation under validations/<suite>/<run name>/…, the run name being the data version
    made path-safe (`connectors.great_expectations.data_docs.path_safe`)."""
    from connectors.great_expectations.data_docs import path_safe

    if not (site / "index.html").is_file():
        return None
    run = path_safe(version)
    pages = sorted(p for p in (site / "validations").rglob("*.html") if run in p.relative_to(site).parts[2:3])
    return pages[-1] if pages else site / "index.html"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def check_headline(
    summary: dict[str, Any],
    verdict: str,
    failed_critical: Sequence[str] = (),
    failed_warning: Sequence[str] = (),
    drifted: Sequence[str] = (),
) -> str:
    """The check's outcome in one sentence, first in its Prefect artifacts (`summary`: its findings,
    which hold no verdict when the data could not be read)."""
    about = f"{summary['dataset']} {summary['version']}"
    if verdict == "superseded":
        return f"{about} superseded by a later change of the same burst: not checked"
    parts: list[str] = []
    if failed_critical:
        parts.append(_count(len(failed_critical), "critical expectation") + " failed")
    if failed_warning:
        parts.append(_count(len(failed_warning), "warning"))
    if drifted:
        parts.append("drift in " + ", ".join(drifted[:3]) + (" …" if len(drifted) > 3 else ""))
    if verdict == "baseline":
        parts.append("its profile drafted the baseline suite")
    if not parts:
        parts.append(str(summary.get("finding") or "every expectation met"))
    if summary.get("provisional"):
        parts.append("provisional until the drafted suite is accepted")
    return f"{about} {verdict}: " + "; ".join(parts)
