"""An OpenLineage run event → data-changed events for the outputs the policy maps, and the record.

What each run transition becomes:

- COMPLETE: every output dataset the policy's `openlineage.dataset_locations` maps (namespace and
  longest name prefix) to a data source is a data-changed event for it (→ check-data-quality): the
  location's `under` and the rest of the name are the path (file source) or table (SQL source) in
  that source, the dataset is the location's `dataset` (else that path with '/' read as '.', or
  that table), the version is the
  dataset's `version` facet or else the run id, the change kind follows its `lifecycleStateChange`
  facet, the row count its `outputStatistics` (or `dataQualityMetrics`) facet. The event id is made of
  the run id and the dataset, so a repeated delivery is the same event to the outbox and the router.
  An output no location maps, or one whose name cannot be a path or table of its source, is kept in
  the record with the reason, never checked.
- START, RUNNING, OTHER, FAIL, ABORT: recorded with what they say (a failure's message), never
  checked: a failed or aborted run's outputs are no finished version of anything.

The producer's own data-quality facets (assertions and metrics) are external evidence: kept in the
delivery's record per dataset, and summed up beside the project's own Great Expectations verdict by
the check of that dataset's version (`external_summary`).

Where data is read stays the policy's: the event chooses a source only through the policy's mapping,
and the path or table it names is checked again by the data-changed payload and, before anything is
opened, by the source's resolution (flows/data_quality/sources.py).

Pure: no Prefect, no Kafka, no I/O of its own (the register is handed in).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from schemas.data_sources import FileSource
from schemas.events import DataChangedEvent
from schemas.openlineage import Dataset, EventType, Facets, RunEvent
from schemas.payloads import ChangeKind, DataChanged
from schemas.suites import suite_file

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas.policy import Policy

# The CloudEvents source of what the gateway makes of OpenLineage's run events.
SOURCE: Final = "urn:aims:gateway:openlineage"
SENDER: Final = "openlineage"

# The spec's lifecycleStateChange values → what kind of change a check is told of.
CHANGE_KINDS: Final = {
    "CREATE": ChangeKind.created,
    "OVERWRITE": ChangeKind.updated,
    "TRUNCATE": ChangeKind.updated,
    "RENAME": ChangeKind.updated,
    "ALTER": ChangeKind.schema_changed,
    "DROP": ChangeKind.deleted,
}
# How many failed assertions a summary names (the record keeps them all).
_NAMED: Final = 5


def delivery_key(run_id: str, event_type: EventType) -> str:
    """One record per run and transition: a producer's retry of an event is the same delivery."""
    return f"{SENDER}#{run_id}.{event_type.value}"


def event_id(run_id: str, namespace: str, name: str) -> str:
    """One data-changed event per run and output dataset (names can be long: hashed, not quoted)."""
    digest = hashlib.sha256(f"{namespace}\n{name}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{run_id}:{digest}"


@dataclass
class Intake:
    """What a run event becomes: its record's outcome and content, and the events to stage with it."""

    outcome: str
    subject: str
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    events: list[DataChangedEvent] = field(default_factory=list)


def external(facets: Facets) -> dict[str, Any]:
    """The producer's data-quality facets, as kept in the record (empty when it sent none)."""
    found: dict[str, Any] = {}
    if facets.dataQualityAssertions is not None:
        assertions = facets.dataQualityAssertions.assertions
        found["assertions"] = [a.model_dump(mode="json", exclude_none=True) for a in assertions]
        found["passed"] = sum(a.success for a in assertions)
        found["failed"] = sum(not a.success for a in assertions)
    if facets.dataQualityMetrics is not None:
        found["metrics"] = facets.dataQualityMetrics.model_dump(mode="json", exclude_none=True)
    return found


def intake(event: RunEvent, policy: Policy) -> Intake:
    """The record and events of one run event (see the module docstring)."""
    subject = f"{event.job.namespace}/{event.job.name}"
    got = Intake("recorded", subject)
    got.inputs = [_seen(d) for d in event.inputs]
    if event.eventType is not EventType.COMPLETE:
        got.outputs = [_seen(d) for d in event.outputs]
        if event.eventType in (EventType.FAIL, EventType.ABORT):
            error = event.run.error()
            got.notes.append(
                f"the run ended {event.eventType.value}: its outputs are not checked"
                + (f" ({error})" if error else "")
            )
        return got
    for dataset in event.outputs:
        mapped = _output(event, dataset, policy)
        got.outputs.append(mapped[0])
        if mapped[1] is not None:
            # A producer listing one output twice made one change: one event.
            if all(e.id != mapped[1].id for e in got.events):
                got.events.append(mapped[1])
        elif "reason" in mapped[0]:
            got.reasons.append(mapped[0]["reason"])
    if got.events:
        got.outcome = "data-changed"
    elif event.outputs:
        got.outcome = "unmapped"
    else:
        got.notes.append("the run names no output dataset: nothing changed")
    return got


def _seen(dataset: Dataset) -> dict[str, Any]:
    return {"namespace": dataset.namespace, "name": dataset.name, **external(dataset.read_facets())}


def _output(
    event: RunEvent, dataset: Dataset, policy: Policy
) -> tuple[dict[str, Any], DataChangedEvent | None]:
    seen = _seen(dataset)
    where = f"{dataset.namespace} {dataset.name}"
    location = policy.openlineage.location_of(dataset.namespace, dataset.name)
    if location is None:
        return seen | {"reason": f"{where}: no openlineage.dataset_locations entry maps it"}, None
    rest = dataset.name[len(location.prefix) :]
    inside = location.under + rest if rest else ""
    source = policy.data_sources[location.source]  # the policy checks every location's source
    is_files = isinstance(source, FileSource)
    if not inside or (is_files and (inside.startswith("/") or ".." in PurePosixPath(inside).parts)):
        why = f"{where}: names no {'file' if is_files else 'table'} inside data source {location.source!r}"
        return seen | {"reason": why}, None
    # The dataset id names its suite file (schemas/suites.py): a folder's '/' reads as '.'.
    dataset_id = location.dataset or inside.replace("/", ".")
    try:
        suite_file(Path("suites"), dataset_id)
    except ValueError:
        why = (
            f"{where}: {dataset_id!r} cannot be a dataset id (letters, digits, '.', '_', '-'): "
            "name one with the location's `dataset`"
        )
        return seen | {"reason": why}, None
    facets = dataset.read_facets()
    statistics, metrics = facets.outputStatistics, facets.dataQualityMetrics
    rows = statistics.rowCount if statistics is not None else None
    if rows is None and metrics is not None:
        rows = metrics.rowCount
    state = facets.lifecycleStateChange
    try:
        payload = DataChanged(
            dataset_id=dataset_id,
            source=location.source,
            path=inside if is_files else None,
            table=None if is_files else inside,
            version=facets.version.datasetVersion if facets.version is not None else event.run_id,
            change_kind=CHANGE_KINDS.get(state.lifecycleStateChange.upper(), ChangeKind.updated)
            if state is not None
            else ChangeKind.updated,
            row_count=rows,
        )
    except ValidationError as exc:
        found = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return seen | {"reason": f"{where}: not a data change the checks can name ({found[:300]})"}, None
    change = DataChangedEvent(
        specversion="1.0",
        id=event_id(event.run_id, dataset.namespace, dataset.name),
        source=SOURCE,
        time=event.eventTime,
        data=payload,
    )
    named = {"source": payload.source, ("path" if is_files else "table"): inside}
    return seen | {
        "dataset_id": payload.dataset_id,
        **named,
        "version": payload.version,
        "event_key": change.dedup_key,
    }, change


# -- the check's side: the external evidence beside its own verdict ----------------------------------


def run_of(event: DataChangedEvent) -> str | None:
    """The OpenLineage run a data-changed event came from (None: it came from elsewhere)."""
    if event.source != SOURCE or ":" not in event.id:
        return None
    return event.id.split(":", 1)[0]


def external_summary(uow: UnitOfWork, event: DataChangedEvent) -> dict[str, str]:
    """What the producer of the run said of this output's quality, for the check's evidence: its
    assertions passed and failed (the failed ones named) and its row count, with who said it."""
    run_id = run_of(event)
    if run_id is None:
        return {}
    row = uow.webhook_deliveries.get(delivery_key(run_id, EventType.COMPLETE))
    if row is None:
        return {}
    output = next((o for o in row.data.get("outputs", []) if o.get("event_key") == event.dedup_key), None)
    if output is None:
        return {}
    said = f"producer {row.data.get('producer', '?')}, OpenLineage run {run_id}"
    summary: dict[str, str] = {}
    if "assertions" in output:
        failed = [
            f"{a['assertion']}({a['column']})" if a.get("column") else a["assertion"]
            for a in output["assertions"]
            if not a.get("success")
        ]
        more = f" and {len(failed) - _NAMED} more" if len(failed) > _NAMED else ""
        named = f": {', '.join(failed[:_NAMED])}{more}" if failed else ""
        counts = f"{output['passed']} passed, {output['failed']} failed"
        summary["external_assertions"] = f"{counts}{named} ({said})"
    metrics = output.get("metrics", {})
    if "rowCount" in metrics:
        summary["external_row_count"] = f"{metrics['rowCount']} ({said})"
    return summary
