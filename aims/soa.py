"""Coverage of ISO/IEC 42001 and the Statement of Applicability (6.1.3), as pure functions.

The register counts the evidence it holds per clause or control id and hands it here as `EvidenceStat`s;
nothing in this module reads a database or a file other than the ones it is asked to write.

- `coverage` — per control (and optionally per clause): what in the tool implements it, how much evidence.
- `statement_of_applicability` — per Annex A control: applicable or excluded (with the policy's
  justification), how it is implemented, and the evidence so far.
- `write_soa_csv` / `read_soa_csv`, `write_soa_markdown`, `render_coverage_table` — the outputs.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

# EvidenceStat lives beside the catalogue (the register's coverage query below `aims` makes them).
from schemas.catalogue import Catalogue, ImplementationKind, id_sort_key
from schemas.catalogue import EvidenceStat as EvidenceStat

ORGANISATIONAL = "applicable; implemented through organisational measures outside this tool"
STANDARD = "ISO/IEC 42001:2023"
SOA_CSV_FIELDS = (
    "control",
    "title",
    "objective",
    "applicable",
    "justification",
    "implemented_by",
    "evidence_count",
    "last_evidence_at",
)
_NAME_SEPARATOR = "; "


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value.isoformat()}")


NO_EVIDENCE = EvidenceStat(0, None)


@dataclass(frozen=True)
class CoverageRow:
    id: str
    kind: Literal["clause", "control"]
    title: str
    implemented_by: tuple[str, ...]
    evidence_count: int
    last_evidence_at: datetime | None


@dataclass(frozen=True)
class SoaRow:
    """One Annex A control in the Statement of Applicability."""

    id: str
    title: str
    objective: str
    applicable: bool
    justification: str
    implemented_by: tuple[str, ...]
    evidence_count: int
    last_evidence_at: datetime | None


@dataclass(frozen=True)
class SoaSummary:
    controls: int
    applicable: int
    excluded: int
    implemented: int
    with_evidence: int


def _check_evidence(catalogue: Catalogue, evidence: Mapping[str, EvidenceStat]) -> None:
    unknown = sorted(set(evidence) - catalogue.ids, key=_loose_sort_key)
    if unknown:
        raise ValueError(
            f"evidence for ids that are neither clauses nor Annex A controls: {', '.join(unknown)}"
        )


def _loose_sort_key(id_: str) -> tuple[int, tuple[int, ...], str]:
    try:
        return (0, id_sort_key(id_), id_)
    except ValueError:
        return (1, (), id_)


def coverage(
    catalogue: Catalogue, evidence: Mapping[str, EvidenceStat], *, include_clauses: bool = False
) -> list[CoverageRow]:
    """One row per Annex A control (after one per clause with `include_clauses`), in catalogue order.

    `evidence` is keyed by clause or control id; ids it lacks have no evidence. Unknown ids are an error:
    they mean a flow names something that is not in the standard.
    """
    _check_evidence(catalogue, evidence)
    rows: list[CoverageRow] = []
    items: list[tuple[Literal["clause", "control"], str, str]] = []
    if include_clauses:
        items += [("clause", c.id, c.title) for c in catalogue.clauses]
    items += [("control", c.id, c.title) for c in catalogue.controls]
    for kind, id_, title in items:
        stat = evidence.get(id_, NO_EVIDENCE)
        names = tuple(i.name for i in catalogue.implementations_for(id_))
        rows.append(CoverageRow(id_, kind, title, names, stat.count, stat.last_at))
    return rows


def _implemented_text(catalogue: Catalogue, names: Sequence[str]) -> str:
    by_kind: dict[ImplementationKind, list[str]] = {kind: [] for kind in ImplementationKind}
    for name in names:
        by_kind[catalogue.implementation(name).kind].append(name)
    parts = []
    if flows := by_kind[ImplementationKind.flow]:
        parts.append(f"flow{'s' if len(flows) > 1 else ''} {', '.join(flows)}")
    if by_kind[ImplementationKind.router]:
        parts.append("the event router")
    if records := by_kind[ImplementationKind.record]:
        parts.append(f"register record{'s' if len(records) > 1 else ''} {', '.join(records)}")
    return "applicable; implemented by " + "; ".join(parts)


def statement_of_applicability(
    catalogue: Catalogue, evidence: Mapping[str, EvidenceStat], exclusions: Mapping[str, str]
) -> list[SoaRow]:
    """One row per Annex A control, in catalogue order.

    `exclusions` maps excluded control ids to their justification (the policy's
    `statement_of_applicability.exclusions`); every other control applies. An excluded control keeps its
    implementations and evidence in the row, so a reader sees when an exclusion contradicts practice.
    """
    unknown = sorted(set(exclusions) - {c.id for c in catalogue.controls}, key=_loose_sort_key)
    if unknown:
        raise ValueError(f"exclusions name ids that are not Annex A controls: {', '.join(unknown)}")
    blank = sorted((id_ for id_, why in exclusions.items() if not why.strip()), key=id_sort_key)
    if blank:
        raise ValueError(f"excluded controls need a justification: {', '.join(blank)}")
    rows = []
    for row in coverage(catalogue, evidence):
        control = catalogue.control(row.id)
        if row.id in exclusions:
            applicable, justification = False, exclusions[row.id].strip()
        elif row.implemented_by:
            applicable, justification = True, _implemented_text(catalogue, row.implemented_by)
        else:
            applicable, justification = True, ORGANISATIONAL
        rows.append(
            SoaRow(
                id=row.id,
                title=row.title,
                objective=control.objective,
                applicable=applicable,
                justification=justification,
                implemented_by=row.implemented_by,
                evidence_count=row.evidence_count,
                last_evidence_at=row.last_evidence_at,
            )
        )
    return rows


def soa_summary(rows: Iterable[SoaRow]) -> SoaSummary:
    listed = list(rows)
    return SoaSummary(
        controls=len(listed),
        applicable=sum(r.applicable for r in listed),
        excluded=sum(not r.applicable for r in listed),
        implemented=sum(bool(r.implemented_by) for r in listed),
        with_evidence=sum(r.evidence_count > 0 for r in listed),
    )


# -- CSV ------------------------------------------------------------------------------------------------


def soa_csv_row(row: SoaRow) -> dict[str, str]:
    return {
        "control": row.id,
        "title": row.title,
        "objective": row.objective,
        "applicable": "yes" if row.applicable else "no",
        "justification": row.justification,
        "implemented_by": _NAME_SEPARATOR.join(row.implemented_by),
        "evidence_count": str(row.evidence_count),
        "last_evidence_at": row.last_evidence_at.isoformat() if row.last_evidence_at else "",
    }


def soa_row_from_csv(values: Mapping[str, str]) -> SoaRow:
    """The inverse of `soa_csv_row`."""
    if values["applicable"] not in ("yes", "no"):
        raise ValueError(f"applicable must be yes or no, got {values['applicable']!r}")
    names = values["implemented_by"]
    last = values["last_evidence_at"]
    return SoaRow(
        id=values["control"],
        title=values["title"],
        objective=values["objective"],
        applicable=values["applicable"] == "yes",
        justification=values["justification"],
        implemented_by=tuple(names.split(_NAME_SEPARATOR)) if names else (),
        evidence_count=int(values["evidence_count"]),
        last_evidence_at=datetime.fromisoformat(last) if last else None,
    )


def _target(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def write_soa_csv(rows: Iterable[SoaRow], path: str | os.PathLike[str]) -> Path:
    """One line per control with the columns of `SOA_CSV_FIELDS`; times in ISO 8601, names joined by '; '."""
    target = _target(path)
    with target.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=SOA_CSV_FIELDS)
        writer.writeheader()
        writer.writerows(soa_csv_row(row) for row in rows)
    return target


def read_soa_csv(path: str | os.PathLike[str]) -> list[SoaRow]:
    with Path(path).open(encoding="utf-8", newline="") as fh:
        return [soa_row_from_csv(values) for values in csv.DictReader(fh)]


# -- Markdown -------------------------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _cell(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def render_soa_markdown(
    rows: Sequence[SoaRow], *, organisation: str, generated_at: datetime, policy_version: str
) -> str:
    _require_aware(generated_at, "generated_at")
    summary = soa_summary(rows)
    lines = [
        f"# Statement of Applicability — {_cell(organisation)}",
        "",
        f"- Standard: {STANDARD}, Annex A reference controls",
        f"- Policy version: {_cell(policy_version)}",
        f"- Generated: {_when(generated_at)}",
        "",
        f"**{summary.controls} controls: {summary.applicable} applicable, {summary.excluded} excluded, "
        f"{summary.with_evidence} with evidence** ({summary.implemented} implemented by this tool).",
        "",
        "Each control is listed with whether it applies, why, what in the AIMS tool implements it, and the "
        "evidence the register holds for it (clause 6.1.3). A control no flow or record implements is met "
        "through organisational measures. Titles are paraphrased; the controls themselves are in the "
        "standard.",
        "",
        "| Control | Title | Applicable | Justification | Implemented by | Evidence | Last evidence |",
        "|---|---|---|---|---|---:|---|",
    ]
    for row in rows:
        cells = (
            row.id,
            row.title,
            "yes" if row.applicable else "**no**",
            row.justification,
            ", ".join(row.implemented_by) or "—",
            row.evidence_count,
            _when(row.last_evidence_at),
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_soa_markdown(
    rows: Sequence[SoaRow],
    path: str | os.PathLike[str],
    *,
    organisation: str,
    generated_at: datetime,
    policy_version: str,
) -> Path:
    """A readable Markdown document: header, a summary line, and one table row per control."""
    text = render_soa_markdown(
        rows, organisation=organisation, generated_at=generated_at, policy_version=policy_version
    )
    target = _target(path)
    target.write_text(text, encoding="utf-8")
    return target


# -- terminal table -------------------------------------------------------------------------------------


def _fit(text: str, width: int) -> str:
    """`text` cut to `width` characters, at a word boundary when one is near, marked with '…'."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    cut = text[: width - 1]
    space = cut.rfind(" ")
    if space >= width // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _fit_names(names: Sequence[str], width: int) -> str:
    """As many names as fit, then '+N' for the rest."""
    text = ", ".join(names)
    if len(text) <= width:
        return text
    for shown in range(len(names) - 1, 0, -1):
        candidate = f"{', '.join(names[:shown])} +{len(names) - shown}"
        if len(candidate) <= width:
            return candidate
    return _fit(f"{names[0]} +{len(names) - 1}", width)


def _short_when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _impl_cell(row: CoverageRow | SoaRow, width: int) -> str:
    if isinstance(row, SoaRow) and not row.applicable:
        return _fit("excluded", width)
    if not row.implemented_by:
        return _fit("(organisational)", width)
    return _fit_names(row.implemented_by, width)


def render_coverage_table(
    rows: Sequence[CoverageRow | SoaRow], *, width: int = 110, freshness: Mapping[str, str] | None = None
) -> str:
    """A plain-text table for the terminal, at most `width` columns wide; long titles and lists are cut.

    Takes coverage rows or SoA rows (an excluded control shows as `excluded`), and ends with a count line.
    With `freshness` (id → fresh, stale, missing or excluded) a FRESHNESS column shows it, and the count
    line counts each.
    """
    headers = ("ID", "TITLE", "IMPLEMENTED BY", "EVIDENCE", "LAST (UTC)", "FRESHNESS")
    id_w = max([len(headers[0]), *(len(r.id) for r in rows)])
    count_w = max([len(headers[3]), *(len(str(r.evidence_count)) for r in rows)])
    when_w = len("YYYY-MM-DD HH:MM")
    fresh_w = len(headers[5]) + 2 if freshness is not None else 0
    free = max(width - id_w - count_w - when_w - fresh_w - 2 * 4, 2 * len("TITLE"))
    title_need = max([len(headers[1]), *(len(r.title) for r in rows)])
    impl_need = max([len(headers[2]), *(len(_impl_cell(r, 10_000)) for r in rows)])
    if title_need + impl_need <= free:
        title_w, impl_w = title_need, impl_need
    else:
        title_w = max(min(title_need, free * 4 // 7), free - impl_need)
        impl_w = free - title_w

    def line(cells: tuple[str, str, str, str, str, str]) -> str:
        id_, title, impl, count, when, fresh = cells
        text = f"{id_:<{id_w}}  {title:<{title_w}}  {impl:<{impl_w}}  {count:>{count_w}}  {when:<{when_w}}"
        return (text + (f"  {fresh}" if freshness is not None else "")).rstrip()

    out = [
        line((headers[0], headers[1], _fit(headers[2], impl_w), headers[3], headers[4], headers[5])),
        line(("-" * id_w, "-" * title_w, "-" * impl_w, "-" * count_w, "-" * when_w, "-" * len(headers[5]))),
    ]
    for row in rows:
        cells = (
            row.id,
            _fit(row.title, title_w),
            _impl_cell(row, impl_w),
            str(row.evidence_count),
            _short_when(row.last_evidence_at),
            (freshness or {}).get(row.id, ""),
        )
        out.append(line(cells))
    implemented = sum(bool(r.implemented_by) for r in rows)
    evidenced = sum(r.evidence_count > 0 for r in rows)
    summary = f"{len(rows)} rows: {implemented} implemented by this tool, {evidenced} with evidence"
    if freshness is not None:
        shown = [freshness.get(r.id) for r in rows]
        counts = [f"{shown.count(s)} {s}" for s in ("fresh", "stale", "missing", "excluded") if s in shown]
        summary += "; " + ", ".join(counts)
    out.append(summary)
    return "\n".join(out)
