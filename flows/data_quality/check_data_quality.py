"""Check a changed dataset with its expectation suite, measure drift, and act on what fails.

One run per data-changed event: resolve the data source it names in the policy (anything else is
refused unread, `sources.py`), read the data once within the source's caps and fingerprint it (A.7.5
provenance), run the dataset's suite (`suites/<dataset>.yaml`) with Great Expectations, or draft a
baseline suite when there is none (recorded as a baseline, not a pass), compare column statistics
with the last accepted version (PSI, KS), and record it all in the register in one unit of work. A
critical failure or critical drift opens a nonconformity (10.2) and asks for a risk reassessment of
every AI system trained on the dataset; a data-quality-validated event goes out for every check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from prefect import flow, task

from flows.data_quality.artifacts import publish_tables
from flows.data_quality.drift import compare_profiles
from flows.data_quality.lineage_intake import external_summary, run_of
from flows.data_quality.reminders import remind_owner
from flows.data_quality.results import validated_event, version_id
from flows.data_quality.suite_review import ACCEPTED, PROVISIONAL, reference_of, version_status
from flows.data_quality.views import check_headline, label
from flows.evidence import (
    actor,
    evidence_record,
    names_its_run,
    publish_summary,
    reassessment_request,
    register,
    run_settings,
    send_outbox,
)
from flows.runtime import current
from schemas.events import (
    AimsEvent,
    DataChangedEvent,
    DataQualityValidatedEvent,
    RiskReassessmentRequestedEvent,
)
from schemas.payloads import ReassessmentReason, Verdict
from schemas.policy import DataQuality
from schemas.records import (
    DataQualityResult,
    Dataset,
    DatasetVersion,
    Nonconformity,
    Record,
)

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun, State

    from connectors.prefect_runs import TaggedRun
    from connectors.register.store import UnitOfWork
    from schemas.suites import CheckOutcome, DatasetProfile, Suite

FLOW = "check-data-quality"
EMPTY = "dataset has no rows"
# Stood-down changes recorded per unit of work: a burst leaves up to one per change of the dataset, and
# Prefect reads at most 200 runs at a time.
STOOD_DOWN_PAGE = 200
# A failed check's reason as the register keeps it: Prefect's state message, which can quote the data.
ERROR_CAP = 1000
# -- the check ------------------------------------------------------------------------------------


@task(name="run-expectations")
def run_expectations(event: DataChangedEvent) -> dict[str, Any]:
    """Resolve the event's data source, read the data once (within the source's caps) and check it:
    the suite (or a baseline), GX validation, a profile on the reference's bins, and the file's hash.

    What the event names outside the policy's sources is refused before anything is opened: the
    result is `unavailable` with the reason, like data that cannot be read."""
    from connectors.great_expectations import DataUnavailable, GxEngine, load_suite
    from flows.data_quality.sources import named_by, resolve
    from schemas.suites import DatasetProfile, dump_suite, suite_file

    settings = run_settings()
    data = event.data
    path = suite_file(settings.suites_dir, data.dataset_id)
    named: dict[str, Any] = named_by(data)
    notice = None
    try:
        resolved = resolve(data, current().optional_policy, settings)
        named, notice = resolved.named, resolved.notice
        engine = GxEngine()
        accepted = last_accepted(data.dataset_id, data.version)
        reference = DatasetProfile.model_validate(accepted.profile) if accepted is not None else None
        with engine.read(resolved.target) as read:
            baseline = not path.is_file()
            if baseline:
                suite: Suite = engine.baseline(read, dataset=data.dataset_id, version="baseline-1")
                dump_suite(suite, path)
            else:
                suite = load_suite(path)
            outcome = engine.validate(read, suite, data_version=data.version)
            # The current version is binned on the reference's edges, so the two histograms compare.
            edges = (
                {n: c.edges for n, c in reference.columns.items() if c.kind == "numeric"}
                if reference
                else None
            )
            profile = engine.profile(read, edges=edges)
            fingerprint = _fingerprint(read)
    except DataUnavailable as exc:
        if exc.retryable:
            raise  # the database may come back: Prefect's retry (or a redelivery) tries again
        return {"unavailable": str(exc), "suite": str(path), "named": named, "notice": notice}
    return {
        "suite": str(path),
        "named": named,
        "notice": notice,
        "fingerprint": fingerprint,
        "drift_columns": suite.drift.select(list(profile.columns)),
        "baseline": baseline,
        "outcome": outcome,
        "profile": profile,
        "reference": reference,
        "reference_version": accepted.version if accepted is not None else None,
    }


def _fingerprint(read: Any) -> dict[str, Any]:
    """A.7.5 provenance: a file's size and SHA-256, of the very bytes the check read."""
    from connectors.great_expectations.files import FileData

    if isinstance(read, FileData):
        return {"location": read.display, "format": read.fmt, "bytes": read.size, "sha256": read.sha256}
    return {"location": read.display, "fingerprint": "sql table"}


def last_accepted(dataset: str, before_version: str) -> DatasetVersion | None:
    """The drift reference: the last accepted version (never a provisional one, `suite_review.py`)."""
    with register().reader() as uow:
        versions = uow.dataset_versions.find(dataset=dataset, status=ACCEPTED, order_by="received_at")
    return reference_of(versions, before_version)


def users_of(uow: UnitOfWork, dataset: str) -> list[str]:
    """AI systems with a model version trained on this dataset."""
    versions = uow.model_versions.find()
    return sorted({v.system for v in versions if dataset in v.dataset_names})


# -- coalescing -----------------------------------------------------------------------------------


class Newer(NamedTuple):
    """The latest change of a dataset routed after the one a run was started for, and its run."""

    run: TaggedRun
    event: DataChangedEvent


def newer_change(event: DataChangedEvent) -> Newer | None:
    """The latest change of this dataset routed after this one, within the coalescing window.

    The router starts each check a policy window after its event and tags it with the dataset, so by
    the time a run starts, every change of a burst has its run: all but the last find a later one.
    """
    from prefect import runtime

    from connectors.prefect_runs import later_run_tagged
    from flows.run_tags import coalescing_tag

    tag = coalescing_tag(event)
    run_id = runtime.flow_run.id
    if not run_id or tag not in runtime.flow_run.tags:
        return None  # not started by a coalescing router: check it
    later = later_run_tagged(tag, UUID(run_id), runtime.flow_run.scheduled_start_time)
    if later is None or "event" not in later.parameters:
        return None
    return Newer(later, DataChangedEvent.model_validate(later.parameters["event"]))


@task(name="stand-down-superseded")
def stand_down_superseded(event: DataChangedEvent, latest: TaggedRun) -> int:
    """Stand down the other changes of this dataset still waiting before `latest`: this run found
    itself superseded, so are they. Each then costs a record, not a flow run."""
    from prefect import runtime
    from prefect.logging import get_run_logger

    from connectors.prefect_runs import stand_down_before
    from flows.run_tags import coalescing_tag

    message = f"superseded by run {latest.id}; stood down by run {runtime.flow_run.id}"
    own = UUID(runtime.flow_run.id)
    count = stand_down_before(coalescing_tag(event), latest, own, message, STOOD_DOWN_PAGE)
    if count:
        get_run_logger().info("stood down %d waiting changes of %s", count, event.data.dataset_id)
    return count


@task(name="record-superseded")
def record_superseded(event: DataChangedEvent, newer: DataChangedEvent) -> tuple[dict[str, Any], list[str]]:
    """The version is kept with its provenance and what replaced it; no check ran, so no result."""
    with register().unit_of_work(actor(FLOW)) as uow:
        return supersede(uow, event, newer)


def supersede(
    uow: UnitOfWork, event: DataChangedEvent, newer: DataChangedEvent
) -> tuple[dict[str, Any], list[str]]:
    """Record `event`'s version as superseded by `newer`'s in `uow`: its summary, and the keys staged."""
    from connectors.register.outbox import stage

    data = event.data
    newer_version = newer.data.version
    summary: dict[str, Any] = {
        "dataset": data.dataset_id,
        "version": data.version,
        "verdict": Verdict.superseded.value,
        "superseded_by": f"{version_id(data.dataset_id, newer_version)} (event {newer.dedup_key})",
    }
    unjudged(
        uow,
        event,
        "superseded",
        superseded_by={"event": newer.dedup_key, "version": newer_version},
    )
    uow.evidence.add_if_absent(evidence_record(FLOW, event, summary))
    keys = stage(uow, [validated_event(event, Verdict.superseded, summary)], run_settings().events_topic)
    return summary, keys


def unjudged(uow: UnitOfWork, event: DataChangedEvent, status: str, **provenance: Any) -> bool:
    """Record `event`'s version, which no check judged, unless the register has it already (a check's
    verdict is never overwritten): what the event named, where it came from, and `provenance`."""
    from flows.data_quality.sources import named_by

    data = event.data
    result_id = version_id(data.dataset_id, data.version)
    uow.datasets.add_if_absent(Dataset(name=data.dataset_id))
    if uow.dataset_versions.get(result_id) is not None:
        return False
    uow.dataset_versions.add(
        DatasetVersion(
            id=result_id,
            dataset=data.dataset_id,
            version=data.version,
            location=named_by(data),
            change_kind=data.change_kind.value,
            produced_by=event.source,
            provenance={
                "event_key": event.dedup_key,
                "source": event.source,
                "row_count": data.row_count,
                **provenance,
            },
            status=status,
        )
    )
    return True


def record_unchecked(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Prefect's hook when a check fails or crashes: its change is recorded all the same, `received`
    and never judged, with the run and the reason (a broken suite file, a database that stayed down,
    an error in Great Expectations). Without it, the change would be in Prefect's history only.

    A run that recorded its version before failing (its verdict, or superseded) keeps that record.
    A later run of the same change that gets through replaces this one (`record_outcome` updates)."""
    from prefect.logging.loggers import flow_run_logger
    from pydantic import ValidationError

    logger = flow_run_logger(flow_run, flow)
    try:
        event = DataChangedEvent.model_validate(flow_run.parameters.get("event"))
    except ValidationError as exc:
        logger.warning("the failed run's change is not readable, so not recorded: %s", exc)
        return
    failed = {"flow_run": str(flow_run.id), "state": state.name, "error": (state.message or "")[:ERROR_CAP]}
    with register().unit_of_work(f"flow:{FLOW}/{flow_run.id}") as uow:
        added = unjudged(uow, event, "received", check_failed=failed)
    if added:
        logger.info("recorded %s %s as received, unchecked", event.data.dataset_id, event.data.version)


@task(name="record-stood-down")
def record_stood_down(by: DataChangedEvent, up_to: datetime) -> list[str]:
    """Record the changes stood down before their checks started as superseded by `by`.

    Each is a run of this dataset's coalescing tag, due no later than `up_to`, cancelled under
    `SUPERSEDED` (by the router, `events.router_work.LatestCoalesced`, or by a superseded run,
    `stand_down_superseded`). Once recorded, it is renamed so that the next check does not record it
    again; a run that stops in between leaves it to the next check (recording twice adds nothing:
    every record is added if absent)."""
    from prefect import runtime
    from prefect.logging import get_run_logger
    from pydantic import ValidationError

    from connectors.prefect_runs import mark_recorded, stood_down_runs
    from flows.run_tags import coalescing_tag

    tag = coalescing_tag(by)
    keys: list[str] = []
    while True:
        page = stood_down_runs(tag, up_to, STOOD_DOWN_PAGE)
        changes: list[tuple[UUID, DataChangedEvent]] = []
        for run_id, parameters in page:
            try:
                changes.append((run_id, DataChangedEvent.model_validate(parameters.get("event"))))
            except ValidationError as exc:
                # The router made these from events it had validated: not expected, and not hidden.
                get_run_logger().warning("stood-down run %s has no readable change: %s", run_id, exc)
        if not changes:
            return keys
        with register().unit_of_work(actor(FLOW)) as uow:
            for _, change in changes:
                keys.extend(supersede(uow, change, by)[1])
        mark_recorded(
            [run_id for run_id, _ in changes],
            f"recorded as superseded by {by.data.version} in run {runtime.flow_run.id}",
        )
        get_run_logger().info("recorded %d stood-down changes as superseded", len(changes))
        if len(page) < STOOD_DOWN_PAGE:
            return keys


def record_what_it_supersedes(event: DataChangedEvent) -> list[str]:
    """Before the check: the changes stood down for it, recorded even if the check itself fails."""
    from prefect import runtime

    from flows.run_tags import coalescing_tag

    if coalescing_tag(event) not in runtime.flow_run.tags:
        return []  # not started by a coalescing router: nothing was stood down for it
    return record_stood_down(event, runtime.flow_run.scheduled_start_time)


@flow(
    name=FLOW,
    description="Check a changed dataset against its expectation suite and its last accepted version.",
    flow_run_name=names_its_run(FLOW),
    on_failure=[record_unchecked],
    on_crashed=[record_unchecked],
)
def check_data_quality(event: DataChangedEvent) -> dict[str, Any]:
    data = event.data
    newer = newer_change(event)
    if newer is not None:
        skipped, keys = record_superseded(event, newer.event)
        send_outbox(FLOW, keys)
        # The router stands the rest down as each next change comes, unless a worker held them then or
        # another router started them: then the first superseded run that executes does it.
        if stand_down_superseded(event, newer.run):
            send_outbox(FLOW, record_stood_down(newer.event, newer.run.expected_start))
        title = f"Data quality: {data.dataset_id} {data.version} — superseded"
        publish_summary(FLOW, title, event, skipped, check_headline(skipped, Verdict.superseded.value))
        return skipped
    send_outbox(FLOW, record_what_it_supersedes(event))
    # Without a policy file the defaults apply; an invalid one is an error (the runtime raises).
    policy = current().optional_policy
    limits = policy.data_quality if policy is not None else DataQuality()
    checked = run_expectations(event)
    if run_of(event) is not None:
        with register().reader() as uow:
            checked["external"] = external_summary(uow, event)
    judged = assess(event, checked, limits)
    summary, outcome, verdict = judged.summary, judged.outcome, judged.verdict
    headline = headline_of(judged)
    keys = record_outcome(
        FLOW, event, summary, judged.records, judged.nonconformity, judged.validated, judged.reason
    )
    if outcome is not None:
        # After the record: the Data Docs site is built from the register, this result included.
        publish_tables(event, outcome, judged.drift, headline)
    send_outbox(FLOW, keys)
    if outcome is not None and judged.provisional:
        remind_owner(data.dataset_id, data.version, checked["suite"], outcome.suite_version)
    publish_summary(
        FLOW, f"Data quality: {data.dataset_id} {data.version} — {verdict.value}", event, summary, headline
    )
    return summary


def headline_of(judged: Assessment) -> str:
    """The check's outcome in one sentence, first in its artifacts."""
    found = judged.validated.data
    return check_headline(
        judged.summary,
        judged.verdict.value,
        found.failed_critical,
        found.failed_warning,
        found.drifted_columns,
    )


@dataclass(frozen=True)
class Assessment:
    """What a check found, as the flow records and announces it (`assess`)."""

    verdict: Verdict
    summary: dict[str, Any]
    records: list[Record]
    nonconformity: Nonconformity | None
    validated: DataQualityValidatedEvent
    reason: ReassessmentReason
    drift: dict[str, Any]
    outcome: CheckOutcome | None

    @property
    def provisional(self) -> bool:
        return bool(self.summary.get("provisional"))


def assess(event: DataChangedEvent, checked: dict[str, Any], limits: DataQuality) -> Assessment:
    """The verdict of what `run_expectations` found, and the records and events that say it. No I/O."""
    data = event.data
    summary: dict[str, Any] = {
        "dataset": data.dataset_id,
        "version": data.version,
        "change": data.change_kind.value,
        "row_count": data.row_count if data.row_count is not None else "unknown",
        # What the event named; where it was read and the hash only when the policy allowed reading it.
        "source": ", ".join(f"{k}: {v}" for k, v in checked["named"].items()),
        **checked.get("fingerprint", {}),
    }
    if checked.get("notice"):
        summary["notice"] = checked["notice"]
    # The producer's own assertions (OpenLineage facets), kept beside this check's verdict.
    summary.update(checked.get("external", {}))
    result_id = version_id(data.dataset_id, data.version)
    records: list[Record] = [Dataset(name=data.dataset_id, suite=checked.get("suite"))]
    provenance = {"event_key": event.dedup_key, "source": event.source, "row_count": data.row_count}
    version = DatasetVersion(
        id=result_id,
        dataset=data.dataset_id,
        version=data.version,
        location=checked["named"],
        content_hash=summary.get("sha256"),
        size_bytes=summary.get("bytes"),
        change_kind=data.change_kind.value,
        produced_by=event.source,
        provenance=provenance,
    )
    failed_critical: list[str] = []
    failed_warning: list[str] = []
    drifted: list[str] = []
    drift: dict[str, Any] = {}
    if "unavailable" in checked:
        verdict = Verdict.failed
        summary["finding"] = checked["unavailable"]
        records.append(version.model_copy(update={"status": "rejected"}))
        records.append(
            DataQualityResult(
                id=result_id,
                dataset_version_id=result_id,
                suite_name=data.dataset_id,
                suite_version="-",
                verdict="unavailable",
                statistics={"error": checked["unavailable"]},
            )
        )
    else:
        outcome: CheckOutcome = checked["outcome"]
        profile: DatasetProfile = checked["profile"]
        reference: DatasetProfile | None = checked["reference"]
        # An empty version has no distribution to compare, and is no reference for the next one.
        if reference is not None and reference.rows and profile.rows:
            drift = compare_profiles(reference, profile, limits, checked["drift_columns"])
        failed_critical = [
            label(e.expectation, e.kwargs) for e in outcome.failures() if e.severity == "critical"
        ]
        if profile.rows == 0 and not checked["baseline"]:
            # Whatever the suite says about row counts: nothing was checked, so nothing passed.
            failed_critical.append(EMPTY)
            summary["finding"] = "the dataset has no rows; check the pipeline that produced this version"
        failed_warning = [
            label(e.expectation, e.kwargs) for e in outcome.failures() if e.severity == "warning"
        ]
        drifted = sorted(c for c, f in drift.items() if f["level"] != "none")
        critical_drift = any(f["level"] == "critical" for f in drift.values())
        if checked["baseline"]:
            verdict = Verdict.baseline
        elif failed_critical or critical_drift:
            verdict = Verdict.failed
        elif failed_warning or drifted:
            verdict = Verdict.warning
        else:
            verdict = Verdict.passed
        # Checked against a drafted suite only: provisional, never the drift reference.
        status = version_status(verdict, outcome.suite_status)
        if status == PROVISIONAL:
            summary["provisional"] = "checked against a drafted suite nobody accepted yet"
        records.append(
            version.model_copy(update={"status": status, "profile": profile.model_dump(mode="json")})
        )
        records.append(
            DataQualityResult(
                id=result_id,
                dataset_version_id=result_id,
                suite_name=Path(checked["suite"]).name,
                suite_version=outcome.suite_version,
                verdict=verdict.value,
                statistics={
                    **outcome.statistics.model_dump(mode="json"),
                    "engine": outcome.engine,
                    "location": outcome.location,
                    "duration_seconds": outcome.duration_seconds,
                    "suite_status": outcome.suite_status.value,
                    "reference": "last accepted version" if reference else "none (no accepted version yet)",
                    "reference_version": checked["reference_version"] if reference else None,
                },
                expectations=[e.model_dump(mode="json") for e in outcome.expectations],
                drift=drift,
            )
        )
        summary.update(
            verdict=verdict.value,
            evaluated=outcome.statistics.evaluated,
            failed_critical=", ".join(failed_critical) or "none",
            failed_warning=", ".join(failed_warning) or "none",
            drifted_columns=", ".join(drifted) or "none",
        )
    nonconformity = None
    if verdict is Verdict.failed:
        nonconformity = Nonconformity(
            id=f"dq:{result_id}",
            source="data-quality",
            source_ref=result_id,
            description=f"{data.dataset_id} {data.version} failed its data-quality check: "
            + "; ".join(
                [*failed_critical, *(f"drift in {c}" for c in drifted)] or [summary.get("finding", "")]
            ),
        )
        records.append(nonconformity)
    outcome_or_none: CheckOutcome | None = checked.get("outcome")
    validated = validated_event(
        event,
        verdict,
        summary,
        suite=Path(checked["suite"]).name if checked.get("suite") else None,
        suite_version=outcome_or_none.suite_version if outcome_or_none else None,
        failed_critical=failed_critical,
        failed_warning=failed_warning,
        drifted=drifted,
    )
    # Drift alone is the one failure that is not the data's own fault; everything else is quality.
    only_drift = drifted and not failed_critical and "unavailable" not in checked
    reason = ReassessmentReason.drift if only_drift else ReassessmentReason.data_quality_failure
    return Assessment(verdict, summary, records, nonconformity, validated, reason, drift, outcome_or_none)


@task(name="record-check")
def record_outcome(
    flow_name: str,
    event: DataChangedEvent,
    summary: dict[str, Any],
    records: list[Record],
    nonconformity: Nonconformity | None,
    validated: DataQualityValidatedEvent,
    reason: ReassessmentReason,
) -> list[str]:
    """Everything in one unit of work, the events it announces included (in the outbox).

    Reassessments are requested only by the run that opens the nonconformity, so a retried run or a
    second failing check of the same version asks once. Returns the outbox keys to send.
    """
    from connectors.register.outbox import stage

    settings = run_settings()
    # A retried check replaces its own earlier result rather than keeping a stale one.
    with register().unit_of_work(actor(flow_name)) as uow:
        opened = nonconformity is not None and uow.nonconformities.get(nonconformity.id) is None
        for item in records:
            repo = uow.repository(type(item))
            key = tuple(getattr(item, k) for k in repo.entity.key)
            current = repo.get(*key)
            if current is None:
                repo.add(item)
            elif isinstance(item, DatasetVersion | DataQualityResult):
                repo.update(*key, **{k: v for k, v in item.model_dump().items() if k not in repo.entity.key})
            elif isinstance(item, Dataset) and isinstance(current, Dataset) and item.suite != current.suite:
                # First recorded by a superseded run, before any suite was known.
                repo.update(*key, suite=item.suite or current.suite)
        uow.evidence.add_if_absent(evidence_record(flow_name, event, summary))
        messages: list[AimsEvent] = [validated]
        if opened:
            messages += reassessments(event, reason, users_of(uow, event.data.dataset_id))
        return stage(uow, messages, settings.events_topic)


def reassessments(
    event: DataChangedEvent, reason: ReassessmentReason, systems: list[str]
) -> list[RiskReassessmentRequestedEvent]:
    data = event.data
    result_id = version_id(data.dataset_id, data.version)
    details = {"dataset": data.dataset_id, "version": data.version}
    return [
        reassessment_request(FLOW, f"reassess:{result_id}:{system}", system, reason, result_id, details)
        for system in systems
    ]
