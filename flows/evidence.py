"""Tasks every flow uses to leave evidence: register records and a markdown artifact."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prefect import runtime, task
from prefect.artifacts import create_markdown_artifact

from flows.run_tags import run_name, scheduled_run_name
from flows.runtime import current, installed
from flows.text import markdown_text
from schemas.catalogue import load_catalogue
from schemas.events import AimsEvent, RiskReassessmentRequestedEvent
from schemas.payloads import ReassessmentReason, RiskReassessmentRequested
from schemas.records import Record
from schemas.trail import EvidenceRecord

if TYPE_CHECKING:
    from connectors.jira_issues import IssueTracker
    from connectors.register.store import Register
    from connectors.slack import Chat
    from schemas.policy import Policy
    from schemas.settings import AimsSettings


def register() -> Register:
    """The register of this run, from the runtime its process installed (`flows/runtime.py`)."""
    return current().register


def load_policy() -> Policy:
    """The AIMS policy the flows apply, parsed once per run; a missing file is an error that says where."""
    return current().policy


def chat() -> Chat | None:
    """Slack as configured, or None when no bot token is set (Slack is then not used)."""
    return current().chat


def tracker() -> IssueTracker | None:
    """Jira as configured, or None when no site is set (Jira is then not used)."""
    return current().tracker


def run_settings() -> AimsSettings:
    """The settings the runtime was built from (never read again from the environment mid-run)."""
    return current().settings


def run_id() -> str | None:
    """The Prefect flow run this code runs in; None outside one."""
    current = runtime.flow_run.id
    return str(current) if current else None


def actor(flow: str) -> str:
    current = run_id()
    return f"flow:{flow}/{current}" if current else f"flow:{flow}"


def evidence_ids(flow: str) -> list[str]:
    """The clauses and Annex A controls a flow's evidence names: the catalogue's alone, so every
    evidence row says what the Statement of Applicability counts it for."""
    clauses, controls = load_catalogue().ids_for(flow)
    return [*clauses, *controls]


def evidence_record(flow: str, event: AimsEvent, outcome: dict[str, Any]) -> EvidenceRecord:
    """What the flow found, collected now and valid for the shortest maximum age among its controls."""
    now = datetime.now(UTC)
    _, controls = load_catalogue().ids_for(flow)
    # Without a runtime (a tool building a record) nothing says the maximum ages: valid_until stays
    # open, and freshness is judged by the policy's maximum ages when it is read.
    policy = current().optional_policy if installed() else None
    valid_until = (
        now + min(policy.evidence.max_age(c) for c in controls) if policy is not None and controls else None
    )
    return EvidenceRecord(
        event_key=event.dedup_key,
        flow=flow,
        event_type=event.type,
        subject=event.key,
        flow_run_id=run_id(),
        recorded_at=now,
        collected_at=now,
        valid_until=valid_until,
        controls=evidence_ids(flow),
        outcome=outcome,
        event=event.model_dump(mode="json"),
    )


@task(name="record-evidence")
def record_evidence(
    flow: str,
    event: AimsEvent,
    outcome: dict[str, Any],
    records: Sequence[Record] = (),
    announce: Sequence[AimsEvent] = (),
) -> list[str]:
    """Write what the flow learnt, the evidence record and the events it announces in one transaction.

    Idempotent: a retried or resumed run finds its records there and adds nothing. Returns the
    outbox keys of `announce`, for `send_outbox` once the transaction has committed.
    """
    from connectors.register.outbox import stage

    evidence = evidence_record(flow, event, outcome)
    with register().unit_of_work(actor(flow)) as uow:
        for item in records:
            uow.repository(type(item)).add_if_absent(item)
        uow.evidence.add_if_absent(evidence)
        return stage(uow, announce, current().events_topic)


@task(name="send-events")
def send_outbox(flow_name: str, keys: list[str]) -> int:
    """Right after the commit; whatever cannot go now stays in the outbox for the router's relay."""
    outbox = current().outbox
    if outbox is None or not keys:
        return 0
    return outbox.send(keys, actor(flow_name))


def reassessment_request(
    flow: str,
    event_id: str,
    system: str,
    reason: ReassessmentReason,
    evidence: str,
    details: dict[str, str] | None = None,
) -> RiskReassessmentRequestedEvent:
    """Ask for a risk reassessment; `event_id` derives from what prompted it, so a retry asks once."""
    return RiskReassessmentRequestedEvent(
        specversion="1.0",
        id=event_id,
        source=f"urn:aims:{flow}",
        time=datetime.now(UTC),
        data=RiskReassessmentRequested(
            ai_system=system,
            reason=reason,
            evidence=evidence,
            details={k: v for k, v in (details or {}).items() if v},
        ),
    )


def artifact_key(flow: str, subject: str) -> str:
    # Artifact keys allow lower-case letters, digits and dashes only.
    slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:60] or "subject"
    return f"{flow}-{slug}"


def _cell(value: Any) -> str:
    # Findings quote events (names, titles): shown as text on one line, never as a link or a row.
    return markdown_text(str(value))


def summary_markdown(
    flow: str, title: str, event: AimsEvent, outcome: dict[str, Any], headline: str = ""
) -> str:
    """The run's summary artifact: what happened in one sentence, then the event and the findings."""
    rows = "\n".join(f"| {_cell(k)} | {_cell(v)} |" for k, v in outcome.items())
    # The title, id, source and subject are a producer's text: escaped, never in a code span (which
    # a backtick in the text would close).
    lead = f"**{markdown_text(headline)}**\n\n" if headline else ""
    return (
        f"# {markdown_text(title)}\n\n"
        f"{lead}"
        f"Event `{event.type}` **{markdown_text(event.id)}** from {markdown_text(event.source)} "
        f"about **{markdown_text(event.key)}**.\n\n"
        f"| finding | value |\n|---|---|\n{rows}\n\n"
        f"Evidence for: {', '.join(evidence_ids(flow))}\n"
    )


@task(name="publish-summary")
def publish_summary(flow: str, title: str, event: AimsEvent, outcome: dict[str, Any], headline: str) -> None:
    """The artifact a person reads first: `headline` says the outcome in one sentence (the Prefect UI
    shows it as the artifact's description, above everything else)."""
    markdown = summary_markdown(flow, title, event, outcome, headline)
    create_markdown_artifact(
        key=artifact_key(flow, event.key), markdown=markdown, description=markdown_text(headline)
    )


def tag_this_run(tags: Sequence[str]) -> None:
    """Add tags only the register knows (the system of an incident update) to the running flow run."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    run_id = runtime.flow_run.id
    have = list(runtime.flow_run.tags or [])
    missing = [t for t in tags if t not in have]
    if not run_id or not missing:
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run(UUID(run_id), tags=[*have, *missing])


def names_its_run(flow: str) -> Callable[[], str]:
    """A flow's `flow_run_name`: the run names itself as the router would have, whoever started it.

    Prefect calls this inside the run, before the flow body, with the run's parameters at hand: an
    `event` names it after the event, a scheduled run after the moment it looks at.
    """

    def name() -> str:
        from prefect.runtime import flow_run
        from pydantic import ValidationError

        from schemas.events import parse_event

        parameters: dict[str, Any] = flow_run.parameters or {}
        event = parameters.get("event")
        if isinstance(event, dict):
            try:
                event = parse_event(event)
            except ValidationError:
                return flow  # the flow refuses the event itself, with the reason, a moment later
        if isinstance(event, AimsEvent):
            return run_name(flow, event)
        at = parameters.get("as_of") or flow_run.scheduled_start_time or datetime.now(UTC)
        if not isinstance(at, datetime):  # a date, or a date-time Prefect has not parsed yet
            at = datetime.fromisoformat(str(at))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return scheduled_run_name(flow, at)

    return name
