"""Gather an evidence bundle from the register: per control what implements it and its evidence, and
the data-quality results, risks, approvals, incidents and review packs of the period.

Every item carries `at`, the record's own time, which decides whether it is in the period: for an
evidence record, when it was collected (supplied evidence may be recorded later), with the period it
is valid for, from then until its `valid_until` (open for evidence recorded before that was kept).

Pure: reads the register through the unit of work it is handed and names files on disk (Data Docs
sites, review packs) for the archive to copy; no Prefect, no Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors.register.tables import audit_log, entity_for
from flows.data_quality.views import docs_page
from schemas.catalogue import Catalogue
from schemas.file_names import id_path
from schemas.trail import EventReceived, EvidenceRecord

if TYPE_CHECKING:
    from connectors.register.anchors import Anchor
    from connectors.register.audit import AuditReport
    from connectors.register.store import UnitOfWork

ROUTER = "event-router"
AUDIT_LOG = "audit_log"
VALIDITY = "collected, until valid_until: the policy's maximum age when it was collected, or as supplied"
# The topic sections, and what in the catalogue implements each: with --control, a section is kept
# when one of these names gives evidence for a chosen control.
TOPICS: dict[str, tuple[str, ...]] = {
    "data-quality": ("check-data-quality", "data_quality_result"),
    "risks": ("reassess-risk", "risk", "risk_version", "risk_assessment"),
    "approvals": ("request-approval", "chase-approvals", "approval", "approval_decision"),
    "incidents": (
        "handle-incident",
        "track-incident",
        "watch-incident-clocks",
        "incident",
        "incident_update",
    ),
    "reviews": ("hold-management-review",),
}
Progress = Callable[[str], None]
# Deadlines and plans fixed inside the period may fall after it: they are kept (an incident's
# reporting deadline is part of its clock); every other later time is not.
DEADLINES = frozenset({"reporting_due_at", "due_at", "meeting_at"})


def _quiet(_: str) -> None:
    return None


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Scope:
    """The period (start inclusive, end exclusive; open on a side that is None) and the controls."""

    start: datetime | None = None
    end: datetime | None = None
    controls: tuple[str, ...] = ()

    @classmethod
    def of_days(cls, first: date | None, last: date | None, controls: Iterable[str] = ()) -> Scope:
        """From the start of `first` to the end of `last` (UTC), both days included."""
        start = datetime.combine(first, time(), UTC) if first else None
        end = datetime.combine(last, time(), UTC) + timedelta(days=1) if last else None
        if start is not None and end is not None and start >= end:
            raise ValueError(f"the period ends ({last}) before it starts ({first})")
        return cls(start, end, tuple(dict.fromkeys(controls)))

    def __contains__(self, moment: object) -> bool:
        if not isinstance(moment, datetime):
            return False
        moment = aware(moment)
        return (self.start is None or self.start <= moment) and (self.end is None or moment < self.end)

    def describe(self) -> dict[str, str | None]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }


@dataclass
class Bundle:
    scope: Scope
    generated_at: datetime
    organisation: str
    controls: list[dict[str, Any]]
    sections: dict[str, list[dict[str, Any]]]
    soa: list[dict[str, Any]]
    audit: dict[str, Any]
    # Files copied into the archive as they are: archive path → file on disk.
    attachments: dict[str, Path] = field(default_factory=dict)
    # Files made for the archive: archive path → content.
    texts: dict[str, str] = field(default_factory=dict)

    def evidence_stats(self) -> dict[str, tuple[int, datetime | None]]:
        """Per control: how much evidence its implementations left in the period, and the latest
        (what `aims controls` counts over all time)."""
        stats = {}
        for control in self.controls:
            lasts = [datetime.fromisoformat(i["last_at"]) for i in control["implemented_by"] if i["last_at"]]
            stats[control["id"]] = (
                sum(i["count"] for i in control["implemented_by"]),
                max(lasts, default=None),
            )
        return stats

    def with_soa(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """The Statement of Applicability's rows of the chosen controls, and each control's
        applicability and justification from them."""
        by_id = {str(row["id"]): dict(row) for row in rows}
        self.soa = [by_id[c["id"]] for c in self.controls if c["id"] in by_id]
        for control in self.controls:
            row = by_id.get(control["id"], {})
            control["applicable"] = row.get("applicable", True)
            control["justification"] = row.get("justification", "")

    def counts(self) -> dict[str, int]:
        return {
            "controls": len(self.controls),
            **{name: len(items) for name, items in self.sections.items()},
            "attachments": len(self.attachments),
        }


def _iso(moment: datetime | None) -> str | None:
    return aware(moment).isoformat() if moment is not None else None


def _dump(record: Any) -> dict[str, Any]:
    return dict(record.model_dump(mode="json"))


def clipped(row: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """`row` without the times that fall after the period (a closing, a later decision): they are
    named under `after_period`, so the bundle holds nothing from after its period."""
    if scope.end is None:
        return row
    later = []
    for name, value in row.items():
        if (
            name not in DEADLINES
            and isinstance(value, str)
            and len(value) >= 19
            and value[4:5] == "-"
            and value[10:11] == "T"
        ):
            try:
                moment = aware(datetime.fromisoformat(value))
            except ValueError:
                continue
            if moment >= scope.end:
                later.append(name)
    return (
        {**{k: (None if k in later else v) for k, v in row.items()}, "after_period": later} if later else row
    )


def chosen_controls(catalogue: Catalogue, scope: Scope) -> list[str]:
    ids = [c.id for c in catalogue.controls]
    return [i for i in ids if i in scope.controls] if scope.controls else ids


def _names_for(catalogue: Catalogue, control: str) -> set[str]:
    return {impl.name for impl in catalogue.implementations_for(control)}


def evidence_for(record: EvidenceRecord, control: str, names: set[str]) -> bool:
    """A record is evidence of a control when its flow implements it or the record names it."""
    return record.flow in names or control in record.controls


def _evidence_item(record: EvidenceRecord) -> dict[str, Any]:
    at = _iso(record.collected)
    return {
        "at": at,
        "id": f"{record.event_key}|{record.flow}",
        "collected_at": at,
        "period_covered": {
            "from": at,
            "to": _iso(record.valid_until) if record.valid_until else None,
            "stated_as": VALIDITY,
        },
        "flow": record.flow,
        "flow_run_id": record.flow_run_id,
        "event_type": record.event_type,
        "event_key": record.event_key,
        "subject": record.subject,
        "controls": list(record.controls),
        "outcome": record.outcome,
        "event": record.event,
    }


def _written(uow: UnitOfWork, scope: Scope) -> dict[str, tuple[int, datetime | None]]:
    """Records written in the period per entity (the audit log's inserts) and every write (under
    `audit_log`), each with the latest time."""
    counts: dict[str, tuple[int, datetime | None]] = {}
    query = select(audit_log.c.entity, audit_log.c.action, audit_log.c.at)
    for entity, action, at in uow.conn.execute(query):
        moment = _moment(at)
        if moment is None or moment not in scope:
            continue
        # The audit log implements what it records: every write, as `aims controls` counts it.
        for name in (entity, AUDIT_LOG) if action == "insert" else (AUDIT_LOG,):
            count, last = counts.get(name, (0, None))
            counts[name] = (count + 1, _later(last, moment))
    return counts


def _received(uow: UnitOfWork, scope: Scope) -> tuple[int, datetime | None]:
    table = entity_for(EventReceived).table
    moments: list[datetime] = []
    for (at,) in uow.conn.execute(select(table.c.received_at)):
        moment = _moment(at)
        if moment is not None and moment in scope:
            moments.append(moment)
    return len(moments), max(moments, default=None)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return aware(value) if isinstance(value, datetime) else None


def control_sections(
    uow: UnitOfWork,
    catalogue: Catalogue,
    scope: Scope,
    evidence: Sequence[EvidenceRecord],
) -> list[dict[str, Any]]:
    written = _written(uow, scope)
    received = _received(uow, scope)
    sections = []
    for control_id in chosen_controls(catalogue, scope):
        control = catalogue.control(control_id)
        names = _names_for(catalogue, control_id)
        mine = [e for e in evidence if evidence_for(e, control_id, names)]
        implementations = []
        for impl in catalogue.implementations_for(control_id):
            if impl.kind == "flow":
                own = [aware(e.collected) for e in evidence if e.flow == impl.name]
                count, last, unit = len(own), max(own, default=None), "evidence records"
            elif impl.kind == "router":
                (count, last), unit = received, "events received"
            else:
                (count, last), unit = written.get(impl.name, (0, None)), "records written"
            implementations.append(
                {
                    "name": impl.name,
                    "kind": str(impl.kind),
                    "how": impl.how,
                    "count": count,
                    "last_at": _iso(last),
                    "unit": unit,
                }
            )
        sections.append(
            {
                "id": control.id,
                "title": control.title,
                "objective": f"{control.objective} {catalogue.objective(control.objective).title}",
                "applicable": True,
                "justification": "",
                "implemented_by": implementations,
                "evidence": [f"{e.event_key}|{e.flow}" for e in mine],
                "evidence_count": len(mine),
                "runs": sorted({e.flow_run_id for e in mine if e.flow_run_id}),
            }
        )
    return sections


def _relevant(catalogue: Catalogue, scope: Scope, topic: str) -> bool:
    if not scope.controls:
        return True
    names = set(TOPICS[topic])
    return any(names & _names_for(catalogue, c) for c in scope.controls)


def data_quality_section(
    uow: UnitOfWork, scope: Scope, docs_root: Path | None, attachments: dict[str, Path]
) -> list[dict[str, Any]]:
    versions = {v.id: v for v in uow.dataset_versions.find()}
    items = []
    sites: dict[str, Path | None] = {}
    for result in uow.data_quality.find(order_by="checked_at"):
        if result.checked_at not in scope:
            continue
        version = versions.get(result.dataset_version_id)
        link = None
        if version is not None and docs_root is not None:
            if version.dataset not in sites:
                site = id_path(docs_root, version.dataset)
                sites[version.dataset] = site if (site / "index.html").is_file() else None
                if sites[version.dataset] is not None:
                    for path in sorted(p for p in site.rglob("*") if p.is_file()):
                        attachments[f"data-docs/{site.name}/{path.relative_to(site).as_posix()}"] = path
            site_found = sites[version.dataset]
            page = docs_page(site_found, version.version) if site_found is not None else None
            if site_found is not None and page is not None:
                link = f"data-docs/{site_found.name}/{page.relative_to(site_found).as_posix()}"
        items.append(
            {
                "at": _iso(result.checked_at),
                "dataset": version.dataset if version else None,
                "version": version.version if version else None,
                "verdict": result.verdict,
                "flow_run_id": result.flow_run_id,
                "data_docs": link,
                "result": _dump(result),
            }
        )
    return items


def risks_section(uow: UnitOfWork, scope: Scope) -> list[dict[str, Any]]:
    risks = {risk.id: risk for risk in uow.risks.find()}
    items = []
    for version in uow.risk_versions.find(order_by="assessed_at"):
        if version.assessed_at not in scope:
            continue
        risk = risks.get(version.risk_id)
        items.append(
            {
                "at": _iso(version.assessed_at),
                "risk": (
                    {k: getattr(risk, k) for k in ("id", "system", "category", "title", "owner")}
                    if risk
                    else {"id": version.risk_id}
                ),
                "version": _dump(version),
            }
        )
    return items


def approvals_section(uow: UnitOfWork, scope: Scope) -> list[dict[str, Any]]:
    decisions: dict[str, list[Any]] = {}
    for decision in uow.decisions.find(order_by="decided_at"):
        decisions.setdefault(decision.approval_id, []).append(decision)
    items = []
    for approval in uow.approvals.find(order_by="requested_at"):
        if approval.requested_at not in scope:
            continue
        mine = decisions.get(approval.id, [])
        inside = [d for d in mine if d.decided_at in scope]
        items.append(
            {
                "at": _iso(approval.requested_at),
                "approval": clipped(_dump(approval), scope),
                "decisions": [{"at": _iso(d.decided_at), **_dump(d)} for d in inside],
                "refused": sum(not d.accepted for d in inside),
                "decisions_after_period": len(mine) - len(inside),
                "flow_run_id": approval.flow_run_id,
            }
        )
    return items


def incident_clock(incident: Any, now: datetime) -> dict[str, Any]:
    """The Art. 73 reporting clock as of `now`: none, running, overdue, met or missed."""
    due, reported = incident.reporting_due_at, incident.reported_to_authority_at
    if not incident.serious or due is None:
        state = "none"
    elif reported is not None and reported <= now:
        state = "met" if reported <= due else "missed"
    else:
        state = "overdue" if now >= due else "running"
    return {
        "state": state,
        "basis": incident.deadline_basis,
        "started_at": _iso(incident.detected_at),
        "due_at": _iso(due),
        "reported_at": _iso(reported) if reported is not None and reported <= now else None,
    }


def incidents_section(uow: UnitOfWork, scope: Scope, now: datetime) -> list[dict[str, Any]]:
    updates: dict[str, list[Any]] = {}
    for update in uow.incident_updates.find(order_by="at"):
        updates.setdefault(update.incident_id, []).append(update)
    items = []
    for incident in uow.incidents.find(order_by="detected_at"):
        if incident.detected_at not in scope:
            continue
        mine = updates.get(incident.id, [])
        inside = [u for u in mine if u.at in scope]
        items.append(
            {
                "at": _iso(incident.detected_at),
                "incident": clipped(_dump(incident), scope),
                "clock": incident_clock(incident, now),
                "updates": [{**_dump(u), "at": _iso(u.at)} for u in inside],
                "updates_after_period": len(mine) - len(inside),
                "flow_run_id": incident.flow_run_id,
            }
        )
    return items


def reviews_section(uow: UnitOfWork, scope: Scope, attachments: dict[str, Path]) -> list[dict[str, Any]]:
    items = []
    for review in uow.reviews.find(order_by="created_at"):
        at = review.prepared_at or review.created_at
        if at not in scope:
            continue
        files: dict[str, str] = {}
        for kind, name in sorted(review.files.items()):
            path = Path(name)
            if path.is_file():
                inside = f"reviews/{path.parent.name}/{path.name}"
                attachments[inside] = path
                files[kind] = inside
        items.append(
            {
                "at": _iso(at),
                "review": clipped(
                    {k: v for k, v in _dump(review).items() if k not in ("pack", "policy")}, scope
                ),
                "pack_sections": len(review.pack.get("sections", [])) if review.pack else 0,
                "files": files,
                "flow_run_id": review.flow_run_id,
            }
        )
    return items


def audit_section(report: AuditReport, anchors: Sequence[Anchor], note: str) -> dict[str, Any]:
    return {
        "head": {"seq": report.head_seq, "hash": report.head_hash, "keyed_from": report.keyed_from},
        "anchor_text": f"{report.head_seq}:{report.head_hash}",
        "entries": report.entries,
        "intact": report.ok,
        "problem": str(report.problem) if report.problem else None,
        "anchors_checked": report.anchors_checked,
        "last_good_anchor": report.last_good_anchor,
        "anchors": [
            {"seq": a.seq, "head": a.head, "keyed_from": a.keyed_from, "at": a.at}
            for a in sorted(anchors, key=lambda a: a.seq)
        ],
        "anchors_note": note,
    }


def gather(
    uow: UnitOfWork,
    catalogue: Catalogue,
    scope: Scope,
    *,
    now: datetime,
    organisation: str,
    audit: dict[str, Any],
    docs_root: Path | None = None,
    progress: Progress = _quiet,
) -> Bundle:
    """Everything the bundle holds, read in one unit of work; `progress` hears each section."""
    evidence = [e for e in uow.evidence.find(order_by="recorded_at") if e.collected in scope]
    progress(f"controls: {len(chosen_controls(catalogue, scope))}")
    controls = control_sections(uow, catalogue, scope, evidence)
    kept = {ref for c in controls for ref in c["evidence"]}
    evidence_items = [_evidence_item(e) for e in evidence if f"{e.event_key}|{e.flow}" in kept]
    progress(f"evidence records: {len(evidence_items)}")
    attachments: dict[str, Path] = {}
    sections: dict[str, list[dict[str, Any]]] = {"evidence": evidence_items}
    builders: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "data-quality": lambda: data_quality_section(uow, scope, docs_root, attachments),
        "risks": lambda: risks_section(uow, scope),
        "approvals": lambda: approvals_section(uow, scope),
        "incidents": lambda: incidents_section(uow, scope, min(now, scope.end or now)),
        "reviews": lambda: reviews_section(uow, scope, attachments),
    }
    for name, build in builders.items():
        sections[name] = build() if _relevant(catalogue, scope, name) else []
        progress(f"{name}: {len(sections[name])}")
    return Bundle(
        scope=scope,
        generated_at=now,
        organisation=organisation,
        controls=controls,
        sections=sections,
        soa=[],
        audit=audit,
        attachments=attachments,
    )
