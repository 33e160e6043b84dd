"""`aims mlflow write-back SYSTEM`: the register's state onto MLflow now, as the flow would write it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from schemas.records import AISystem
from tests.aims.runner import aims_process as aims
from tests.connectors.test_mlflow_registry_writes import Registry, mlflow_url  # noqa: F401 (fixture)
from tests.flows.models.test_mlflow_writeback import SYSTEM, V1, approval, assessment
from tests.resources import EXAMPLE_POLICY, migrated_register


@pytest.fixture
def state(tmp_path: Path, mlflow_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    register = migrated_register(tmp_path)
    with register.unit_of_work("test") as uow:
        uow.systems.add(AISystem(name=SYSTEM, owner="ml-platform", intended_use="Score loans"))
        uow.model_versions.add(V1)
        uow.assessments.add(assessment("ra-1", V1.id, 0, "approval-ra-1"))
        uow.approvals.add(approval("ra-1", "approved"))
    register.close()
    policy = yaml.safe_load(EXAMPLE_POLICY.read_text())
    policy["mlflow"]["write_back"] = {"tags": True, "approved_alias": "production"}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("AIMS_POLICY_FILE", str(tmp_path / "policy.yaml"))
    monkeypatch.setenv("AIMS_MLFLOW_TRACKING_URI", mlflow_url)
    # The link tags follow where the Prefect UI and Jira are: pinned here, since the integration
    # session (earlier in the same pytest process) exports its own PREFECT_API_URL.
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    monkeypatch.delenv("AIMS_JIRA_URL", raising=False)
    return tmp_path


def test_a_dry_run_writes_nothing_a_run_writes_once_and_again_is_up_to_date(state: Path) -> None:
    dry = aims(state, "mlflow", "write-back", SYSTEM, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would write 6 change(s)" in dry.stdout and "@production → version 1" in dry.stdout, dry.stdout
    assert Registry.aliases == {} and Registry.tags == {}
    done = aims(state, "mlflow", "write-back", SYSTEM, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["alias_targets"] == {"cs-model@production": "1"}
    assert Registry.aliases == {"production": "1"}
    assert Registry.tags["1"]["aims.approval"] == "approved"
    links = {k: v for k, v in Registry.tags["1"].items() if k.endswith(".url")}
    assert sorted(links) == ["aims.approval.url", "aims.assessment.url"], links
    assert all(v.startswith("http://prefect.example:4200/runs/flow-run/") for v in links.values()), links
    again = aims(state, "mlflow", "write-back", SYSTEM)
    assert (
        again.returncode == 0
        and "wrote 0 change(s) to MLflow for credit-scoring (up to date)" in again.stdout
    )


def test_mlflow_down_is_an_error_that_says_to_run_it_again(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMS_MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    failed = aims(state, "mlflow", "write-back", SYSTEM)
    assert (
        failed.returncode != 0 and "could not be reached" in failed.stderr and "run it again" in failed.stderr
    )


def test_an_unknown_system_is_refused(state: Path) -> None:
    refused = aims(state, "mlflow", "write-back", "nope")
    assert refused.returncode != 0 and "no AI system 'nope'" in refused.stderr
