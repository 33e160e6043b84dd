"""MLflow in, end to end: a real MLflow server, its own client, the gateway, the router and the worker.

A version registered through MLflow's client reaches the gateway as MLflow's own signed webhook; the
gateway asks MLflow's REST API who registered it and what its run was trained on, records the
delivery, and its model-version-registered event starts onboard-model (which asks for the risk
assessment). A model the policy does not map is kept as an unmapped candidate, shown by the CLI.

MLflow runs from its own virtual environment (tests/mlflow_server.py says why and how to make it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import required_in_ci
from tests.mlflow_server import MLFLOW_VERSION, MlflowServer, mlflow_python
from tests.support import FILES_SOURCE, MLFLOW_MODEL, MLFLOW_SYSTEM, SessionStack, poll

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
    """The gateway with the webhook's secret and MLflow's address, and MLflow's webhook pointing at it."""
    given = {"AIMS_MLFLOW_WEBHOOK_SECRET": SECRET, "AIMS_MLFLOW_TRACKING_URI": mlflow.url}
    before = {name: os.environ.get(name) for name in given}
    os.environ.update(given)  # the gateway process gets the environment of this one (stack.env)
    try:
        with stack.gateway("gateway-mlflow") as url:
            mlflow.client("webhook", f"{url}/mlflow/webhook", SECRET)
            yield url
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
