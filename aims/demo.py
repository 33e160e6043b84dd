"""`aims demo` (`make demo`): the main job end to end on the local stack.

Starts the stack (or uses a running one), publishes a model version and two dataset changes, then an
incident, follows the flow runs they start (and the risk assessments those ask for) until they
finish; then decides the approvals the assessments asked for, as the policy's approvers would with
`aims approvals approve`, follows the waiting request-approval runs to their end, and prints where
to look at them in the Prefect UI.
"""

from __future__ import annotations

import csv
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aims.endpoints import prefect_auth
from aims.progress import tracking
from connectors.prefect_api import FlowRunView, PrefectApi
from connectors.prefect_runs import FINAL_STATE_NAMES, SUPERSEDED_RECORDED
from events.kafka_clients import KafkaConnection
from events.producer import EventPublisher
from infra.kafka_tls import with_local_security
from infra.stack import LocalStack, StackInfo
from schemas.events import (
    AimsEvent,
    DataChangedEvent,
    IncidentReportedEvent,
    ModelVersionRegisteredEvent,
    is_event,
)
from schemas.payloads import (
    ChangeKind,
    DataChanged,
    DatasetRef,
    IncidentCategory,
    IncidentReported,
    ModelVersionRegistered,
    RiskTier,
    Severity,
)
from schemas.policy_file import data_quality_policy
from schemas.settings import AimsSettings

if TYPE_CHECKING:
    from schemas.policy import Policy
    from schemas.records import Approval

TERMINAL = FINAL_STATE_NAMES


DEMO_SOURCE = "demo"


def demo_root(policy_file: Path) -> Path:
    """The first root of the policy's `demo` files source, where the demo writes its dataset: events
    name data sources of the policy, never paths of their own (issue 19)."""
    from schemas.data_sources import FileSource
    from schemas.errors import UserError
    from schemas.policy_file import require_policy

    source = require_policy(policy_file, "the demo").data_sources.get(DEMO_SOURCE)
    if not isinstance(source, FileSource):
        raise UserError(
            f"the demo publishes a file of the data source {DEMO_SOURCE!r}: declare it in {policy_file} as "
            "data_sources: {demo: {kind: files, roots: [demo-data]}} (see policy/aims-policy.yaml)"
        )
    return source.roots[0]


def sample_events(demo_dir: Path) -> list[AimsEvent]:
    """The demo's events; its dataset is written to `demo_dir`, the root of the `demo` data source."""
    demo_dir.mkdir(parents=True, exist_ok=True)
    dataset = demo_dir / "loan-applications.csv"
    with dataset.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["applicant_id", "income", "amount", "term_months", "approved"])
        for i in range(500):
            writer.writerow([i, 20_000 + 137 * i, 1_000 + 53 * i, 12 + 12 * (i % 5), i % 3 != 0])
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    source = "urn:aims:demo"
    return [
        ModelVersionRegisteredEvent(
            specversion="1.0",
            id=f"demo-{run}-model",
            source=source,
            time=now,
            data=ModelVersionRegistered(
                ai_system="credit-scoring",
                name="credit-risk-gbm",
                version="7",
                source_uri="models:/credit-risk-gbm/7",
                run_id=f"run-{run}",
                owner="ml-platform",
                intended_use="Pre-screen consumer loan applications",
                risk_tier=RiskTier.high,
                training_datasets=[DatasetRef(dataset_id="loan-applications", version="2026-11-27")],
            ),
        ),
        # Two versions in quick succession: one check, of the second; the first is recorded as superseded.
        *(
            DataChangedEvent(
                specversion="1.0",
                id=f"demo-{run}-data-{version}",
                source=source,
                time=now,
                data=DataChanged(
                    dataset_id="loan-applications",
                    version=version,
                    change_kind=ChangeKind.appended,
                    source=DEMO_SOURCE,
                    path=dataset.name,
                    row_count=500,
                ),
            )
            for version in ("2026-11-27", "2026-11-27.1")
        ),
        IncidentReportedEvent(
            specversion="1.0",
            id=f"demo-{run}-incident",
            source=source,
            time=now,
            data=IncidentReported(
                ai_system="credit-scoring",
                severity=Severity.high,
                category=IncidentCategory.fundamental_rights,
                description="Applicants from one postcode were declined at 4x the base rate.",
                reporter="complaints-desk",
                occurred_at=now - timedelta(days=2),
                detected_at=now - timedelta(hours=3),
            ),
        ),
    ]


def follow_on_keys(event: AimsEvent, settings: AimsSettings) -> list[str]:
    """Idempotency keys of the runs the event's flow asks for (risk assessments, a management
    review), to follow them too. Call before the event is published: it reads the register as the
    event's flow will find it."""
    # The flows' own request builders: importing them imports Prefect, so only here, when needed.
    if is_event(event, ModelVersionRegistered):
        from flows.models import onboard_model

        return [onboard_model.reassessment_for(event).dedup_key]
    if is_event(event, IncidentReported):
        from flows.incidents import handle_incident
        from flows.incidents.rules import triage
        from schemas.policy_file import require_policy

        policy = require_policy(settings.policy_file, "the demo's incident triage")
        keys = [handle_incident.reassessment_for(event).dedup_key]
        # A serious incident calls an extraordinary management review, whose pack is prepared at
        # once — unless one is requested and not yet held (an earlier demo's): it joins that one.
        if triage(event.data, policy).serious and not _review_to_join(settings, policy):
            keys.append(handle_incident.serious_review_key(event))
        return keys
    return []


def _review_to_join(settings: AimsSettings, policy: Policy) -> bool:
    from connectors.register import open_register
    from flows.reviews.calls import not_yet_held

    register = open_register(settings)
    try:
        with register.reader() as uow:
            now = datetime.now(UTC)
            return any(not_yet_held(r, now, policy) for r in uow.reviews.find(kind="extraordinary"))
    finally:
        register.close()


def demo_approvers(approval: Approval, policy: Policy) -> list[str]:
    """Enough of the approval's group members for what it needs (its quorum, one more when its
    submitter is nobody the policy knows), a group at a time, never a submitter (a team's members)."""
    from flows.approvals.rules import authority
    from schemas.people import person_key

    rules = authority(approval, policy)
    pools = [
        [m for m in policy.approver_groups[g].members if person_key(m) not in rules.submitters.people]
        for g in approval.groups
        if g in policy.approver_groups
    ]
    chosen: list[str] = []
    while len(chosen) < rules.needed and any(pools):
        for pool in pools:
            while pool and pool[0] in chosen:
                pool.pop(0)
            if pool and len(chosen) < rules.needed:
                chosen.append(pool.pop(0))
    return chosen


def decide_approvals(settings: AimsSettings, kafka: KafkaConnection, since: datetime) -> list[str]:
    """Approve what this demo's assessments asked for, on the CLI's path; the keys of the waiting runs."""
    from aims.login import operator_login
    from connectors.register import open_register
    from flows.approvals.commands import DecideApproval, requested_event
    from flows.commands import Actor, Context, handle
    from flows.risk.reassess_risk import REQUEST_SOURCE
    from infra.resources import outbox_sender
    from schemas.payloads import Decision, DecisionChannel
    from schemas.policy_file import load_policy

    policy = load_policy(settings.policy_file)
    # The demo plays the approvers on the command line: as its operator's OS login, which the
    # example policy does not know (`decisions.cli_any_login`, unsafe and recorded as unauthenticated).
    login = operator_login()
    register = open_register(settings)
    outbox = outbox_sender(register, kafka, "aims-demo", settings.event_signing_key)
    keys: list[str] = []
    try:
        with register.reader() as uow:
            waiting = [
                a
                for a in uow.approvals.find(status="pending", order_by="requested_at")
                if a.requested_at >= since
            ]
        if waiting and policy.decisions.cli_any_login:
            print(
                f"  (as OS login {login}: the policy's decisions.cli_any_login, unsafe and for the demo "
                "only, lets it decide as anyone; each decision is recorded as unauthenticated)",
                flush=True,
            )
        for approval in waiting:
            for who in demo_approvers(approval, policy):
                command = DecideApproval(
                    actor=Actor(who, DecisionChannel.cli, login),
                    approval_id=approval.id,
                    decision=Decision.approve,
                    reason="approved in the demo",
                )
                result = handle(command, Context(register, policy, settings.events_topic))
                outbox.send(result.keys, "cli:demo")
                print(f"  aims approvals approve {approval.id} --by {who}   → {result.message}", flush=True)
            keys.append(requested_event(approval, REQUEST_SOURCE).dedup_key)
    finally:
        outbox.close()
        register.close()
    return keys


def all_done(runs: list[FlowRunView], expected: int) -> bool:
    """Every expected run there and done: completed, or stood down as superseded and recorded (a
    second change of the demo's dataset within the coalescing window supersedes the first)."""
    return len(runs) == expected and all(r.state in ("Completed", SUPERSEDED_RECORDED) for r in runs)


def follow(api: PrefectApi, keys: list[str], timeout: float) -> list[FlowRunView]:
    """Print each state change until every run is finished; return the runs."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    runs: list[FlowRunView] = []
    with tracking("flow runs finished", total=len(keys)) as progress:
        while time.monotonic() < deadline:
            runs = api.runs_for_keys(keys)
            for run in runs:
                if seen.get(run.id) != run.state:
                    seen[run.id] = run.state
                    progress.say(f"  {run.flow_name:22} {run.name:28} {run.state}")
            done = [r for r in runs if r.state in TERMINAL]
            progress.update(done=len(done), total=max(len(keys), len(runs)))
            if len(runs) >= len(keys) and len(done) == len(runs):
                return runs
            time.sleep(0.5)
    print(f"  gave up waiting after {timeout:.0f}s; `aims status` and the logs in the state folder say more")
    return runs


def run_demo(settings: AimsSettings, exit_after: bool, timeout: float = 300) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    info = StackInfo.load(settings.state_path)
    stack: LocalStack | None = None
    if info is None:
        print("Starting the local stack (the first start downloads the Kafka jars once)…", flush=True)
        stack = LocalStack(settings)
        try:
            with tracking("starting the stack") as progress:
                info = stack.start(progress=lambda m: progress.step(m, indent="  "))
        except BaseException:
            stack.stop(progress=lambda m: None)
            raise
    else:
        print(f"Using the stack already running (supervisor pid {info.supervisor_pid}).")
    code = 1
    # The broker's security as it started now (its SASL_SSL user and CA, if it has them).
    kafka = KafkaConnection.from_settings(with_local_security(settings), info.bootstrap)
    try:
        events = sample_events(demo_root(settings.policy_file))
        window = data_quality_policy(settings.policy_file).coalesce_seconds
        # The incident comes once the model's initial risk assessment is done, so that the second
        # assessment shows what the incident changed.
        checks = (
            f"(data-quality checks start {window}s after a change, the policy's "
            "data_quality.coalesce_seconds, so that a burst of changes is checked once)"
        )
        phases = [
            (events[:-1], checks),
            (events[-1:], "(an incident is evidence of a risk: the system is assessed again)"),
        ]
        runs = []
        expected_approvals = 0
        started = datetime.now(UTC)
        publisher = EventPublisher(kafka, settings.events_topic, signing_key=settings.event_signing_key)
        api = PrefectApi(info.prefect_api_url, auth=prefect_auth(settings, info.prefect_api_url))
        # Worked out before anything is published: afterwards the register has what the flows did.
        follow_ons = {e.id: follow_on_keys(e, settings) for e in events}
        try:
            for batch, note in phases:
                for event in batch:
                    partition = publisher.publish(event)
                    print(f"published {event.type} {event.id} (subject {event.key}, partition {partition})")
                print(f"Following the flow runs… {note}", flush=True)
                keys = [k for e in batch for k in (e.dedup_key, *follow_ons[e.id])]
                found = follow(api, keys, timeout)
                runs += found
                if len(found) < len(keys):
                    break
            else:
                print(
                    "Approvals: the assessments asked for approvals; their request-approval runs wait "
                    "Suspended (see the Prefect UI). Deciding them as the policy's approvers would:",
                    flush=True,
                )
                waiting = decide_approvals(settings, kafka, started)
                approvals = follow(api, waiting, timeout)
                runs += approvals
                expected_approvals = len(waiting)
        finally:
            publisher.close()
            api.close()
        expected = sum(1 + len(follow_ons[e.id]) for e in events) + expected_approvals
        print("\nFlow runs:")
        for run in runs:
            print(
                f"  {run.id}  {run.flow_name:22} {run.state:10} {info.prefect_ui_url}/runs/flow-run/{run.id}"
            )
        print(f"\nPrefect UI: {info.prefect_ui_url}")
        print(f"Register:   {register_summary(settings)}")
        print("            `aims systems`, `aims incidents`, `aims audit verify` read it")
        print("Risks:      `aims risks show credit-scoring` (history, and why each score)")
        print("Approvals: `aims approvals` (the gates the assessments raised); `aims approvals show ID`")
        print("Incidents:  `aims incidents` (stage, Art. 73 clock, time left); `aims incidents show ID`")
        print("Reviews:    `aims review` (the review the incident called, its pack in the state folder)")
        code = 0 if all_done(runs, expected) else 1
        if stack is not None and not exit_after:
            print("\nThe stack stays up; press Ctrl-C to stop it.", flush=True)
            supervisor = threading.Thread(target=stack.supervise, daemon=True)
            supervisor.start()
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        if stack is not None:
            stack.stop()
    return code


def register_summary(settings: AimsSettings) -> str:
    from connectors.register import open_register
    from connectors.register.store import display_url

    register = open_register(settings)
    try:
        with register.reader() as uow:
            counts = (uow.systems.count(), uow.evidence.count(), uow.events.count())
        report = register.verify_audit()
    finally:
        register.close()
    audit = f"audit log intact ({report.entries} entries)"
    if not report.ok:
        audit = f"AUDIT LOG BROKEN: {report.problem}"
    return (
        f"{display_url(register.url)}: {counts[0]} AI systems, {counts[1]} evidence records, "
        f"{counts[2]} events received; {audit}"
    )
