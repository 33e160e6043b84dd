"""What MLflow's REST API adds to a new version, read from answers a real MLflow server gave.

A loopback HTTP server answers with the REST answers recorded from MLflow 3.17.2
(tests/fakes/samples/mlflow/rest.json, record_deliveries.py) — or with failures, to see the retries,
the caps and the refusals of malformed answers. The real server is in the integration test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from connectors.mlflow_registry import MlflowRegistry, RegistryAnswerInvalid, RegistryUnavailable
from tests.fakes.mlflow_signing import SAMPLES

REST: dict[str, Any] = json.loads((SAMPLES / "rest.json").read_text())
ROUTES = {
    "/api/2.0/mlflow/model-versions/get": "model_version",
    "/api/2.0/mlflow/registered-models/get": "registered_model",
    "/api/2.0/mlflow/runs/get": "run",
}


class Answers(BaseHTTPRequestHandler):
    """Answers each GET from `REST`, after the queued failures (status, body) of its path, if any."""

    failures: ClassVar[dict[str, list[tuple[int, bytes]]]] = {}
    asked: ClassVar[list[tuple[str, dict[str, list[str]]]]] = []
    override: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.asked.append((url.path, parse_qs(url.query)))
        queued = self.failures.get(url.path) or []
        if queued:
            status, body = queued.pop(0)
        elif url.path in self.override:
            status, body = 200, self.override[url.path]
        else:
            status, body = 200, json.dumps(REST[ROUTES[url.path]]).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def mlflow_url() -> Iterator[str]:
    Answers.failures, Answers.asked, Answers.override = {}, [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def registry(url: str) -> MlflowRegistry:
    return MlflowRegistry(url, sleep=lambda seconds: None, timeout=5)


def recorded_version() -> dict[str, Any]:
    version: dict[str, Any] = REST["model_version"]["model_version"]
    return version


def test_the_recorded_answers_give_the_runs_training_dataset_and_the_models_tags(mlflow_url: str) -> None:
    version = recorded_version()
    facts = registry(mlflow_url).facts(version["name"], version["version"], version["run_id"])
    assert facts.model_tags == {"aims.ai_system": "credit-scoring"}
    assert [(d.name, d.context) for d in facts.datasets] == [("loans", "training")]
    assert facts.datasets[0].source_uri == "s3://data/loans/2026-11-27.csv"
    assert facts.datasets[0].digest
    # MLflow without authentication records no user: the intake then takes the policy's owner.
    assert not facts.user_id


def test_a_version_without_a_run_is_not_asked_for_one(mlflow_url: str) -> None:
    version = recorded_version()
    facts = registry(mlflow_url).facts(version["name"], version["version"], None)
    assert facts.datasets == []
    assert "/api/2.0/mlflow/runs/get" not in [path for path, _ in Answers.asked]


def test_busy_answers_are_retried_and_then_taken(mlflow_url: str) -> None:
    Answers.failures["/api/2.0/mlflow/model-versions/get"] = [(503, b"busy"), (429, b"slow down")]
    version = recorded_version()
    facts = registry(mlflow_url).facts(version["name"], version["version"], version["run_id"])
    assert facts.model_tags
    assert [path for path, _ in Answers.asked].count("/api/2.0/mlflow/model-versions/get") == 3


def test_mlflow_busy_past_the_retries_is_unavailable(mlflow_url: str) -> None:
    Answers.failures["/api/2.0/mlflow/model-versions/get"] = [(503, b"busy")] * 4
    with pytest.raises(RegistryUnavailable, match="503"):
        registry(mlflow_url).facts("m", "1", None)


def test_a_missing_version_or_a_malformed_answer_is_invalid_not_retried(mlflow_url: str) -> None:
    Answers.failures["/api/2.0/mlflow/model-versions/get"] = [
        (404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST"}')
    ]
    with pytest.raises(RegistryAnswerInvalid, match="404"):
        registry(mlflow_url).facts("m", "1", None)
    Answers.override["/api/2.0/mlflow/registered-models/get"] = (
        b'{"registered_model": {"tags": "not a list"}}'
    )
    with pytest.raises(RegistryAnswerInvalid):
        registry(mlflow_url).facts("m", "1", None)
    Answers.override["/api/2.0/mlflow/registered-models/get"] = b"[1, 2]"
    with pytest.raises(RegistryAnswerInvalid, match="no JSON object"):
        registry(mlflow_url).facts("m", "1", None)


def test_nobody_can_reach_a_closed_port(mlflow_url: str) -> None:
    with pytest.raises(RegistryUnavailable, match="could not be reached"):
        registry("http://127.0.0.1:9").facts("m", "1", None)
