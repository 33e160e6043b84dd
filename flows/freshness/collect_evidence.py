"""collect-evidence: collect again the evidence that went stale, and ask people for the rest (9.1).

Runs daily on its deployment's schedule (or on demand, with an `as_of` time and some `controls`).
Every Annex A control is judged by the policy's `evidence.max_age_days` (`flows/freshness/rules.py`).
For each stale or missing control, once per period (`flows/freshness/plan.py`):

- what the AIMS runs itself is started again: a data-quality check of each dataset's latest version,
  a risk reassessment of each AI system in use (events through the outbox, with ids made of the
  target and the period, so a re-run starts nothing twice);
- the owner is asked in Slack for what a person must supply (policy `evidence.owners`), one message
  per person; the systems' owners are reminded of their impact assessments.

The request is written first, with what it starts, in one unit of work: the reminders are in the
register even when Slack is down, and each says whether Slack delivered it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from prefect import flow, task

from flows.evidence import actor, chat, load_policy, names_its_run, register, run_settings, send_outbox
from flows.freshness.plan import PENDING, Plan, plan
from flows.freshness.rules import ControlFreshness, judge_by_policy
from flows.text import markdown_text
from schemas.catalogue import load_catalogue

FLOW = "collect-evidence"
# Every day at 05:00 UTC: before schedule-risk-reviews, so a reassessment it starts is not asked twice.
SCHEDULE = "0 5 * * *"

log = logging.getLogger(__name__)


def judged_now(now: datetime) -> list[ControlFreshness]:
    """Every control judged from the register, as `aims controls` shows it."""
    from connectors.register.coverage import evidence_by_id

    policy = load_policy()
    catalogue = load_catalogue()
    with register().reader() as uow:
        evidence = evidence_by_id(uow, catalogue)
    return judge_by_policy(catalogue, evidence, policy, now)


@task(name="request-stale-evidence")
def request_due(now: datetime, only: list[str] | None) -> tuple[Plan, list[str]]:
    """The requests of this period that are not in the register yet, with their events, in one go."""
    from connectors.register.outbox import stage
    from flows.data_quality.recheck import latest_versions

    policy = load_policy()
    due = [c for c in judged_now(now) if c.due and (only is None or c.id in only)]
    with register().unit_of_work(actor(FLOW)) as uow:
        already = [c.request_id for c in due if uow.evidence_requests.get(c.request_id) is not None]
        wanted = plan(
            due,
            already,
            latest_versions(uow.dataset_versions.find()),
            uow.systems.find(order_by="name"),
            policy.evidence,
            now,
        )
        for request in wanted.requests:
            uow.evidence_requests.add(request)
        keys = stage(uow, wanted.events, run_settings().events_topic)
    return wanted, keys


def ask_text(lines: list[str]) -> str:
    listed = "\n".join(f"• {line}" for line in lines)
    return f"The AIMS needs fresh evidence (ISO/IEC 42001 9.1). Please see to:\n{listed}"


@task(name="ask-owners", retries=2, retry_delay_seconds=[5, 30])
def ask_owners(wanted: Plan) -> dict[str, str]:
    """One Slack message per person; each request then says whether it reached them."""
    from connectors.slack import ChatError
    from flows.text import mrkdwn

    slack = chat()
    told: dict[str, str] = {}
    for person, lines in wanted.asks.items():
        if slack is None:
            told[person] = "not sent: Slack is not configured (the request is in the register)"
            continue
        try:
            sent = slack.post_to_person(person, mrkdwn(ask_text(lines)))
        except ChatError as exc:
            log.warning("could not ask %s for evidence in Slack: %s", person, exc)
            sent = None
        told[person] = "asked in Slack" if sent is not None else "not sent: Slack did not deliver it"
    with register().unit_of_work(actor(FLOW)) as uow:
        for request in wanted.requests:
            asked = [_told(line, told) for line in request.asked]
            if asked != request.asked:
                uow.evidence_requests.update(request.id, asked=asked)
    return told


def _told(line: str, told: dict[str, str]) -> str:
    person, _, state = line.partition(": ")
    return f"{person}: {told[person]}" if state == PENDING and person in told else line


def collection_headline(wanted: Plan, told: dict[str, str]) -> str:
    """What the run did, in one sentence: the artifact's description, read first."""
    if not wanted.requests:
        return "nothing new: every control is fresh, or already requested in its period"
    reached = sum(state == "asked in Slack" for state in told.values())
    return (
        f"{len(wanted.requests)} control(s) due: {len(wanted.events)} collection(s) started, "
        f"{len(told)} person(s) asked ({reached} reached in Slack)"
    )


def collection_markdown(wanted: Plan, told: dict[str, str], headline: str) -> str:
    rows = "\n".join(
        f"| {markdown_text(r.control)} | {r.status} | {markdown_text('; '.join(r.collections) or '-')} "
        f"| {markdown_text('; '.join(_told(line, told) for line in r.asked) or '-')} |"
        for r in wanted.requests
    )
    table = f"| control | status | started | asked |\n|---|---|---|---|\n{rows}\n" if rows else ""
    return f"# Evidence collected again\n\n**{markdown_text(headline)}**\n\n{table}"


@task(name="publish-collection-summary")
def publish(wanted: Plan, told: dict[str, str]) -> None:
    from prefect.artifacts import create_markdown_artifact

    headline = collection_headline(wanted, told)
    create_markdown_artifact(
        key=FLOW, markdown=collection_markdown(wanted, told, headline), description=markdown_text(headline)
    )


@flow(
    name=FLOW,
    description="Collect again the evidence that went stale; ask the owners for what a person supplies.",
    flow_run_name=names_its_run(FLOW),
)
def collect_evidence(as_of: datetime | None = None, controls: list[str] | None = None) -> dict[str, Any]:
    """`as_of`: the time to judge at (now); `controls`: only these control ids (all by default)."""
    now = (as_of or datetime.now(UTC)).astimezone(UTC)
    wanted, keys = request_due(now, controls)
    sent = send_outbox(FLOW, keys)
    told = ask_owners(wanted) if wanted.asks else {}
    publish(wanted, told)
    return {
        "as_of": now.isoformat(),
        "requested": [r.id for r in wanted.requests],
        "collections": len(keys),
        "sent": sent,
        "asked": told,
    }
