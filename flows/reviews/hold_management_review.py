"""hold-management-review: prepare a management review (9.3) and invite top management to it.

Two ways in, one review each:
- the deployment's schedule, derived from the policy's cadence, runs `lead_time_days` before each
  ordinary meeting; the review is `scheduled:<meeting date>`;
- a review request (a serious or repeated incident, `aims review request`, any review-requested
  event) names its review; its meeting is `extraordinary.notice_days` after the request.

An incident that comes while an extraordinary review is requested and not yet held joins it
(handle-incident) rather than calling another: a review not prepared yet gathers it into its pack;
one prepared already was gathered without it, so its attendees are told (`tell_joined`).

A review that is already prepared is not prepared again, so a redelivered request or a rerun
schedules nothing twice. Preparing gathers the pack for the period since the last review from the
register and the Prefect run history, writes it as Markdown, HTML and an .ics invitation in the state
folder, publishes it as an artifact, opens (or finds) the Jira issue with the agenda and the pack,
and sends each attendee a Slack message. The review then stays open until its results are recorded.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact

from flows.evidence import (
    actor,
    artifact_key,
    chat,
    load_policy,
    names_its_run,
    register,
    run_id,
    run_settings,
    tracker,
)
from flows.reviews.calendar import preparation_rrule
from flows.reviews.calls import review_triggers
from flows.reviews.commands import COMMENT_HELP, ISSUE_LABEL
from flows.text import jira_noformat, jira_text, mrkdwn_line
from schemas.events import ReviewRequestedEvent
from schemas.records import IncidentNotice, ManagementReview

if TYPE_CHECKING:
    from prefect.client.schemas.schedules import RRuleSchedule

    from flows.reviews.pack import RunHistory
    from schemas.policy import Policy
    from schemas.review_pack import ReviewPack
    from schemas.review_policy import ManagementReview as ManagementReviewPolicy

FLOW = "hold-management-review"
# Jira refuses descriptions beyond 32 767 characters; the full pack is in the state folder anyway.
JIRA_DESCRIPTION_LIMIT = 30_000


def schedule(review: ManagementReviewPolicy) -> RRuleSchedule:
    """The Prefect schedule of this flow: one run per ordinary review, to prepare it (9.3.1)."""
    from prefect.client.schemas.schedules import RRuleSchedule

    rule, zone = preparation_rrule(review)
    return RRuleSchedule(rrule=rule, timezone=zone)


def scheduled_id(meeting_at: datetime) -> str:
    return f"scheduled:{meeting_at.date().isoformat()}"


def jira_label(review_id: str) -> str:
    # Labels allow no spaces; a hash keeps them short and lets a rerun find the issue it opened.
    return "aims-review-" + hashlib.sha256(review_id.encode()).hexdigest()[:12]


def requested_review(event: ReviewRequestedEvent) -> ManagementReview:
    data = event.data
    return ManagementReview(
        id=data.review_id,
        kind="extraordinary",
        reason=data.reason,
        status="requested",
        trigger=data.trigger,
        requested_by=data.requested_by,
        created_at=data.requested_at,
    )


def _review_for(policy: Policy, event: ReviewRequestedEvent | None, as_of: datetime) -> ManagementReview:
    """The review this run prepares: the requested one, or the next ordinary one."""
    from flows.reviews.calendar import extraordinary_meeting, meeting_for

    settings = policy.management_review
    with register().unit_of_work(actor(FLOW)) as uow:
        if event is not None:
            review = uow.reviews.get(event.data.review_id)
            if review is None:
                # A review-requested event from elsewhere names a review the register has not seen.
                review = requested_review(event)
                uow.reviews.add(review)
            if review.meeting_at is None:
                meeting = extraordinary_meeting(settings, review.created_at)
                review = uow.reviews.update(review.id, meeting_at=meeting)
            return review
        meeting = meeting_for(settings, as_of)
        review = ManagementReview(
            id=scheduled_id(meeting),
            kind="scheduled",
            reason=f"{settings.cadence} management review",
            meeting_at=meeting,
            status="planned",
        )
        uow.reviews.add_if_absent(review)
        return uow.reviews.one(review.id)


def _run_history(start: datetime, end: datetime) -> RunHistory:
    from prefect.settings import get_current_settings

    from connectors.prefect_api import PrefectApi
    from flows.reviews.pack import RunHistory

    settings = run_settings()
    prefect = get_current_settings().api
    url = settings.prefect_api_url or prefect.url
    if not url:
        return RunHistory(error="no Prefect API URL is set (PREFECT_API_URL)")
    # The run's process has the stack's PREFECT_API_AUTH_STRING, as the Prefect SDK in it does.
    api = PrefectApi(url, auth=settings.prefect_api_auth_string or prefect.auth_string)
    try:
        return RunHistory(runs=api.runs_between(start, end))
    except Exception as exc:  # noqa: BLE001 - the pack states the failure instead of failing the review
        return RunHistory(error=f"{type(exc).__name__}: {exc}")
    finally:
        api.close()


@task(name="gather-review-pack")
def gather_pack(review: ManagementReview, as_of: datetime) -> tuple[ReviewPack, dict[str, Any]]:
    from flows.reviews.pack import Period, gather, previous_review

    policy = load_policy()
    months = policy.management_review.cadence.months
    store = register()
    with store.reader() as uow:
        previous = previous_review(uow, review)
    start = (
        previous.period_end
        if previous and previous.period_end
        else as_of - timedelta(days=round(months * 30.44))
    )
    period = Period(start=start, end=as_of)
    runs = _run_history(period.start, period.end)
    audit = store.verify_audit()
    assert review.meeting_at is not None
    with store.reader() as uow:
        pack = gather(
            uow,
            policy,
            review,
            period=period,
            meeting_at=review.meeting_at,
            now=as_of,
            runs=runs,
            audit=audit,
        )
    return pack, policy.model_dump(mode="json")


@task(name="write-review-files")
def write_files(pack: ReviewPack, policy: Policy) -> dict[str, str]:
    from flows.reviews.calendar import invitation
    from flows.reviews.render import html, markdown
    from schemas.file_names import id_path

    # Review ids come from events: mapped to one folder of their own, never `..` nor another's.
    folder = id_path(run_settings().state_path / "reviews", pack.review_id)
    folder.mkdir(parents=True, exist_ok=True)
    attendees = policy.management_review.attendees
    chair = attendees[0]
    ics = invitation(
        uid=f"{pack.review_id}@aims",
        summary=_title(pack),
        description="\n".join(pack.agenda),
        start=pack.meeting_at,
        minutes=policy.management_review.meeting.duration_minutes,
        organizer=(chair.name, chair.email),
        attendees=[(a.name, a.email, a.role) for a in attendees],
        stamp=pack.generated_at,
    )
    files = {"markdown": folder / "pack.md", "html": folder / "pack.html", "ics": folder / "invite.ics"}
    _write(files["markdown"], markdown(pack).encode())
    _write(files["html"], html(pack).encode())
    _write(files["ics"], ics)
    return {kind: str(path) for kind, path in files.items()}


def _write(path: Path, content: bytes) -> None:
    # Written aside and renamed, so a reader never sees half a pack.
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(content)
    partial.replace(path)


def _title(pack: ReviewPack) -> str:
    kind = "Extraordinary management review" if pack.kind == "extraordinary" else "Management review"
    return f"{kind} {pack.meeting_at.date().isoformat()} (ISO/IEC 42001 9.3)"


def _description(pack: ReviewPack, files: dict[str, str], pack_markdown: str) -> str:
    """Jira wiki markup. The reason and agenda quote incidents and people: escaped. The pack's
    Markdown is shown as written in a {noformat} block, which Jira renders without any markup."""
    head = "\n".join(
        [
            f"Meeting: {pack.meeting_at.isoformat()}",
            f"Reason: {jira_text(pack.reason)}",
            "",
            "Agenda:",
            *(f"{n}. {jira_text(item)}" for n, item in enumerate(pack.agenda, start=1)),
            "",
            f"Review pack: {jira_text(files['html'])} (Markdown {jira_text(files['markdown'])}, "
            f"invitation {jira_text(files['ics'])})",
            "",
            "Results (9.3.3): " + jira_text(COMMENT_HELP),
            "",
        ]
    )
    room = JIRA_DESCRIPTION_LIMIT - len(head) - 200
    body = (
        pack_markdown
        if len(pack_markdown) <= room
        else pack_markdown[:room] + "\n\n… (cut: the full pack is in the file above)"
    )
    return head + "\n" + jira_noformat(body)


@task(name="open-review-issue", retries=2, retry_delay_seconds=[5, 30])
def open_issue(pack: ReviewPack, policy: Policy, files: dict[str, str]) -> str | None:
    issues = tracker()
    if issues is None:
        return None
    label = jira_label(pack.review_id)
    found = issues.find(label)
    if found is not None:
        return found
    project = policy.management_review.jira_project or policy.incidents.jira_project
    markdown = Path(files["markdown"]).read_text()
    return issues.create(project, _title(pack), _description(pack, files, markdown), [label, ISSUE_LABEL])


def invitation_text(pack: ReviewPack, timezone: str, files: dict[str, str], issue: str | None) -> str:
    """Slack mrkdwn, to each attendee; the review's id and reason quote incidents and people."""
    local = pack.meeting_at.astimezone(ZoneInfo(timezone))
    return (
        f"{_title(pack)} on {local:%Y-%m-%d %H:%M} ({mrkdwn_line(timezone)}), "
        f"review {mrkdwn_line(pack.review_id)}. Reason: {mrkdwn_line(pack.reason)}. "
        f"The review pack is ready: {mrkdwn_line(files['html'])}"
        + (f"; agenda and results in Jira {mrkdwn_line(issue)}" if issue else "")
        + f". Invitation: {mrkdwn_line(files['ics'])}"
    )


@task(name="invite-attendees", retries=2, retry_delay_seconds=[5, 30])
def invite(pack: ReviewPack, policy: Policy, files: dict[str, str], issue: str | None) -> list[str]:
    slack = chat()
    if slack is None:
        return []
    text = invitation_text(pack, policy.management_review.meeting.timezone, files, issue)
    sent: list[str] = []
    for attendee in policy.management_review.attendees:
        if slack.post_to_person(attendee.email, text) is not None:
            sent.append(attendee.email)
    return sent


@task(name="tell-joined-incidents", retries=2, retry_delay_seconds=[5, 30])
def tell_joined(review_id: str) -> list[str]:
    """Tell the attendees of each incident that joined the review after its pack was gathered.

    The pack, the Jira issue and the invitations went out without it, and a person preparing for the
    meeting expects to hear of it rather than find it in the register: a comment on the review's Jira
    issue and a Slack message to every attendee, each once per incident (an `incident_notice`). A
    review not prepared yet tells nothing: it gathers the incident into its pack. Both handle-incident
    (after the incident joined) and this flow (after preparing) call this: whichever commits last
    sees both facts, so every late incident is told, whatever the order.
    """
    from flows.notices import notice_id
    from flows.reviews.calls import late_triggers
    from flows.reviews.messages import joined_review_comment, joined_review_text

    with register().reader() as uow:
        review = uow.reviews.one(review_id)
        late = [
            found
            for trigger in late_triggers(review)
            if trigger.startswith("incident:")
            and (found := uow.incidents.get(trigger.removeprefix("incident:"))) is not None
        ]
        sent = {n.id for incident in late for n in uow.incident_notices.find(incident_id=incident.id)}
    if not late:
        return []
    policy = load_policy()
    zone = policy.management_review.meeting.zone
    slack, issues = chat(), tracker()
    told: list[str] = []
    for incident in late:
        if issues is not None and review.jira_issue:
            key = notice_id(incident.id, "review-joined-jira", review.id)
            if key not in sent:
                issues.comment(review.jira_issue, joined_review_comment(review, incident, zone))
                _mark_told(incident.id, key, "review-joined-jira", review.id, [review.jira_issue])
                told.append(key)
        if slack is not None:
            key = notice_id(incident.id, "review-joined-slack", review.id)
            if key not in sent:
                text = joined_review_text(review, incident, zone)
                reached = [
                    a.email
                    for a in policy.management_review.attendees
                    if slack.post_to_person(a.email, text) is not None
                ]
                _mark_told(incident.id, key, "review-joined-slack", review.id, reached)
                told.append(key)
    return told


def _mark_told(incident_id: str, key: str, kind: str, review_id: str, recipients: list[str]) -> None:
    with register().unit_of_work(actor(FLOW)) as uow:
        uow.incident_notices.add_if_absent(
            IncidentNotice(id=key, incident_id=incident_id, kind=kind, step=review_id, recipients=recipients)
        )


@flow(
    name=FLOW,
    description="Prepare a management review: pack, agenda, invitations; track its results.",
    flow_run_name=names_its_run(FLOW),
)
def hold_management_review(
    event: ReviewRequestedEvent | None = None, as_of: datetime | None = None
) -> dict[str, Any]:
    """Prepare the review a request names, or the next ordinary one (a scheduled run has no event)."""
    logger = get_run_logger()
    scheduled = runtime.flow_run.scheduled_start_time
    now = as_of or (scheduled if event is None and scheduled is not None else None) or datetime.now(UTC)
    # Prefect's own datetime type drops its zone in arithmetic: a plain aware datetime from here on.
    now = datetime.fromtimestamp(now.timestamp(), UTC)
    policy = load_policy()
    review = _review_for(policy, event, now)
    if review.prepared_at is not None:
        logger.info("review %s was prepared at %s: nothing to do", review.id, review.prepared_at)
        # Except what a run that died after preparing it may have left untold.
        told = tell_joined(review.id)
        return {"review": review.id, "status": review.status, "prepared": False, "told": told}
    pack, policy_snapshot = gather_pack(review, now)
    files = write_files(pack, policy)
    markdown = Path(files["markdown"]).read_text()
    create_markdown_artifact(key=artifact_key(FLOW, review.id), markdown=markdown, description=_title(pack))
    issue = open_issue(pack, policy, files)
    with register().unit_of_work(actor(FLOW)) as uow:
        uow.reviews.update(
            review.id,
            status="prepared",
            period_start=pack.period_start,
            period_end=pack.period_end,
            pack=pack.model_dump(mode="json"),
            pack_path=files["html"],
            files=files,
            policy=policy_snapshot,
            jira_issue=issue,
            flow_run_id=run_id(),
            prepared_at=datetime.now(UTC),
            # As read before gathering: an incident that joined since is not in the pack's reason.
            pack_triggers=review_triggers(review),
        )
    # After the commit: a retried run then finds the review prepared and invites nobody twice.
    invited = invite(pack, policy, files, issue)
    # Incidents that joined while the pack was being gathered: their own runs saw it unprepared.
    told = tell_joined(review.id)
    missing = {s.key: s.missing for s in pack.sections if s.missing}
    logger.info(
        "review %s prepared for %s; %d section(s) state missing data",
        review.id,
        pack.meeting_at,
        len(missing),
    )
    return {
        "review": review.id,
        "status": "prepared",
        "prepared": True,
        "meeting_at": pack.meeting_at.isoformat(),
        "files": files,
        "jira_issue": issue,
        "invited": invited,
        "told": told,
        "missing": missing,
    }
