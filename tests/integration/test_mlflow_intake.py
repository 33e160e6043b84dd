"""MLflow in and back, end to end: a real MLflow server, its own client, the gateway, router and worker.

A version registered through MLflow's client reaches the gateway as MLflow's own signed webhook; the
gateway asks MLflow's REST API who registered it and what its run was trained on, records the
delivery, and its model-version-registered event starts onboard-model (which asks for the risk
assessment). A model the policy does not map is kept as an unmapped candidate, shown by the CLI.
What the register decides is written back (tags, the approved alias), read back with MLflow's client;
the approved alias set by hand before approval is a finding: an incident, handled.

MLflow runs from its own virtual environment (tests/mlflow_server.py says why and how to make it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.settings import AimsSettings
from tests.integration.mlflow_steps import approve_all, assessment_of, write_backs
from tests.mlflow_server import MLFLOW_VERSION, MlflowServer, mlflow_python
from tests.support import (
    FILES_SOURCE,
    MLFLOW_APPROVED_ALIAS,
    MLFLOW_HAND_MODEL,
    MLFLOW_HAND_SYSTEM,
    MLFLOW_MODEL,
    MLFLOW_SYSTEM,
    MLFLOW_WRITTEN_MODEL,
    MLFLOW_WRITTEN_SYSTEM,
    SessionStack,
    poll,
    required_in_ci,
)

SECRET = "integration-mlflow-webhook-secret"
DONE = {"Completed"}


@pytest.fixture(scope="module")
def mlflow(stack: SessionStack) -> Iterator[MlflowServer]:
    python = mlflow_python()
    if python is None:
        why = (
            f"MLflow {MLFLOW_VERSION} is not installed apart: python3.11 -m venv .venv-mlflow && "
            f".venv-mlflow/bin/pip install mlflow=={MLFLOW_VERSION} (or set AIMS_TEST_MLFLOW_PYTHON)"
        )
        if required_in_ci():
            pytest.fail(why)
        pytest.skip(why)
    server = MlflowServer(python, stack.state / "mlflow")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def router(stack: SessionStack) -> Iterator[Any]:
    with stack.default_topic_router("mlflow") as running:
        yield running


@pytest.fixture(scope="module")
def gateway(stack: SessionStack, mlflow: MlflowServer) -> Iterator[str]:
    """The gateway with the webhook's secret and MLflow's address, and MLflow's webhook pointing at it;
    the worker restarted with MLflow's address too, so its flows write back (and again without it
    afterwards, so other modules' runs do not call a server that is gone)."""
    given = {"AIMS_MLFLOW_WEBHOOK_SECRET": SECRET, "AIMS_MLFLOW_TRACKING_URI": mlflow.url}
    before = {name: os.environ.get(name) for name in given}
    os.environ.update(given)  # the gateway and worker get the environment of this one (stack.env)
    try:
        stack.stop_worker()
        stack.start_worker()
        with stack.gateway("gateway-mlflow") as url:
            mlflow.client("webhook", f"{url}/mlflow/webhook", SECRET)
            yield url
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        stack.stop_worker()
        stack.start_worker()


def dataset_uri(stack: SessionStack) -> str:
    # Under the session policy's files source, which the session maps MLflow's dataset prefix to.
    root = stack.data_root
    assert root is not None, f"the session has no {FILES_SOURCE} source"
    return f"{root}/loans/{uuid.uuid4().hex[:8]}.csv"


def test_a_version_registered_through_mlflows_client_is_onboarded(
    stack: SessionStack, mlflow: MlflowServer, router: Any, gateway: str
) -> None:
    made = mlflow.client("register", MLFLOW_MODEL, dataset_uri(stack), f"aims.ai_system={MLFLOW_SYSTEM}")
    version = made["version"]
    event_key = f"urn:aims:gateway:mlflow#{MLFLOW_MODEL}/{version}"
    reassess_key = f"urn:aims:onboard-model#reassess:{MLFLOW_SYSTEM}/{MLFLOW_MODEL}/{version}"
    stack.wait_for_runs([event_key, reassess_key], states=DONE, timeout=300)
    with stack.register().reader() as uow:
        (delivery,) = uow.webhook_deliveries.find(
            kind="model_version.created", subject=f"{MLFLOW_MODEL}/{version}"
        )
        recorded = uow.model_versions.find(system=MLFLOW_SYSTEM, model_name=MLFLOW_MODEL, version=version)
    assert delivery.outcome == "onboarded" and delivery.event_key == event_key, delivery
    assert len(recorded) == 1
    model_version = recorded[0]
    assert model_version.source_uri.endswith("/model")
    # The run's logged training dataset, at MLflow's digest of it.
    assert any(made["digest"] in ref and "loans" in ref for ref in model_version.datasets), (
        model_version.datasets
    )


def test_a_model_the_policy_does_not_map_is_kept_as_an_unmapped_candidate(
    stack: SessionStack, mlflow: MlflowServer, gateway: str
) -> None:
    name = f"side-project-{uuid.uuid4().hex[:6]}"
    made = mlflow.client("register", name, dataset_uri(stack))
    subject = f"{name}/{made['version']}"

    def recorded() -> Any:
        with stack.register().reader() as uow:
            return next(iter(uow.webhook_deliveries.find(subject=subject)), None)

    delivery = poll(recorded, 60, f"the delivery of {subject}")
    assert delivery.outcome == "unmapped" and delivery.event_key is None, delivery
    listed = stack.aims("mlflow", "--outcome", "unmapped")
    assert listed.returncode == 0, listed.stderr
    assert subject in listed.stdout and "no AI system" in listed.stdout


def test_an_approval_in_slack_tags_the_version_and_moves_the_alias_and_a_blocking_assessment_takes_it(
    stack: SessionStack, mlflow: MlflowServer, router: Any, gateway: str
) -> None:
    from tests.factories import incident_event

    made = mlflow.client("register", MLFLOW_WRITTEN_MODEL, dataset_uri(stack))
    version = made["version"]
    vid = f"{MLFLOW_WRITTEN_SYSTEM}/{MLFLOW_WRITTEN_MODEL}/{version}"

    def in_mlflow() -> dict[str, Any]:
        return mlflow.client("version", MLFLOW_WRITTEN_MODEL, version)

    # Assessed: the tags say which assessment, its residual level and the approval it waits for.
    assessment = poll(
        lambda: assessment_of(stack, MLFLOW_WRITTEN_SYSTEM, vid), 300, f"the assessment of {vid}"
    )
    tagged = poll(
        lambda: (found := in_mlflow())["tags"].get("aims.assessment") == assessment.id and found,
        180,
        f"the aims.assessment tag on {vid}",
    )
    assert tagged["tags"]["aims.risk.highest_residual"] == assessment.highest_residual
    assert assessment.approval_id is not None, "the assessment of a new system asks for an approval"
    assert tagged["tags"]["aims.approval"] == "pending" and tagged["aliases"] == []

    # Approved in the fakes' Slack: approved, and the alias AIMS moves points at the version.
    approve_all(stack, gateway, assessment.approval_id)
    approved = poll(
        lambda: MLFLOW_APPROVED_ALIAS in (found := in_mlflow())["aliases"] and found,
        180,
        f"alias {MLFLOW_APPROVED_ALIAS} on {vid}",
    )
    assert approved["tags"]["aims.approval"] == "approved"
    # The gateway heard MLflow announce AIMS's own alias: recorded, no finding.
    with stack.register().reader() as uow:
        outcomes = {
            d.outcome
            for d in uow.webhook_deliveries.find(kind="model_version_alias.created")
            if d.subject.startswith(f"{MLFLOW_WRITTEN_MODEL}/")
        }
    assert outcomes == {"recorded"}, outcomes

    # A later assessment that blocks the system (an incident raises a risk past a gate): alias gone.
    publisher = stack.publisher(AimsSettings().events_topic)
    try:
        publisher.publish(incident_event(MLFLOW_WRITTEN_SYSTEM))
    finally:
        publisher.close()
    taken = poll(
        lambda: MLFLOW_APPROVED_ALIAS not in (found := in_mlflow())["aliases"] and found,
        300,
        f"alias {MLFLOW_APPROVED_ALIAS} taken from {vid}",
    )
    latest = assessment_of(stack, MLFLOW_WRITTEN_SYSTEM, None)
    assert latest is not None and latest.id != assessment.id and latest.blocked
    assert taken["tags"]["aims.assessment"] == latest.id and taken["tags"]["aims.approval"] == "pending"
    # Every write-back run left its evidence: what it wrote, from which run.
    rows = write_backs(stack, MLFLOW_WRITTEN_SYSTEM)
    assert any(r.outcome.get("aliases_changed") for r in rows) and all(r.flow_run_id for r in rows)


def test_the_approved_alias_set_by_hand_before_approval_is_handled_as_an_incident(
    stack: SessionStack, mlflow: MlflowServer, router: Any, gateway: str
) -> None:
    made = mlflow.client("register", MLFLOW_HAND_MODEL, dataset_uri(stack))
    version = made["version"]
    vid = f"{MLFLOW_HAND_SYSTEM}/{MLFLOW_HAND_MODEL}/{version}"
    assessment = poll(lambda: assessment_of(stack, MLFLOW_HAND_SYSTEM, vid), 300, f"the assessment of {vid}")
    assert assessment.approval_id is not None
    # Its write-back ran first (so it cannot be what takes the hand-set alias away below).
    poll(lambda: write_backs(stack, MLFLOW_HAND_SYSTEM), 180, f"the write-back of {vid}")

    mlflow.client("alias", MLFLOW_HAND_MODEL, MLFLOW_APPROVED_ALIAS, version)

    def finding() -> Any:
        with stack.register().reader() as uow:
            return next(
                iter(
                    uow.webhook_deliveries.find(
                        outcome="deployed-without-approval", ai_system=MLFLOW_HAND_SYSTEM
                    )
                ),
                None,
            )

    delivery = poll(finding, 120, f"the finding on {vid}")
    assert "pending, not approved" in delivery.reasons[0], delivery.reasons
    [run] = stack.wait_for_runs([delivery.event_key], states=DONE, timeout=300)
    assert run.flow_name == "handle-incident"
    with stack.register().reader() as uow:
        incidents = uow.incidents.find(system=MLFLOW_HAND_SYSTEM)
    assert len(incidents) == 1 and incidents[0].severity == "high"
    # The incident's reassessment is written back too: the hand-set alias is taken away again.
    poll(
        lambda: (
            MLFLOW_APPROVED_ALIAS not in mlflow.client("version", MLFLOW_HAND_MODEL, version)["aliases"]
            or None
        ),
        300,
        f"alias {MLFLOW_APPROVED_ALIAS} taken from {vid}",
    )
