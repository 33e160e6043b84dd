"""The write-back's calls to MLflow's REST API, against a loopback fake that keeps tags and aliases.

The fake answers as MLflow 3.17's server does (shapes as in tests/fakes/samples/mlflow/rest.json):
model-versions/get with the version's `tags` and `aliases`, registered-models/get with `aliases` as
[{alias, version}], set-tag and alias POSTs with their fields in a JSON body, and the alias DELETE
with its fields in a JSON body too (MLflow reads only a GET's from the query). Queued failures show
the retries; the real server is in tests/integration/test_mlflow_intake.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import SecretStr

from connectors.mlflow_registry import MlflowRegistry, RegistryAnswerInvalid, RegistryUnavailable

MODEL = "credit-scoring"


class Registry(BaseHTTPRequestHandler):
    tags: ClassVar[dict[str, dict[str, str]]] = {}
    aliases: ClassVar[dict[str, str]] = {}
    failures: ClassVar[list[tuple[int, bytes]]] = []
    asked: ClassVar[list[tuple[str, str, dict[str, Any], str]]] = []
    override: ClassVar[bytes | None] = None

    def _answer(self, status: int, body: Any) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.asked.append((self.command, url.path, body or query, self.headers.get("Authorization", "")))
        if self.failures:
            self._answer(*self.failures.pop(0))
            return
        if self.override is not None:
            self._answer(200, self.override)
            return
        route = (self.command, url.path.removeprefix("/api/2.0/mlflow/"))
        if route == ("GET", "model-versions/get"):
            version = query["version"]
            tags = [{"key": k, "value": v} for k, v in self.tags.get(version, {}).items()]
            held = [a for a, v in self.aliases.items() if v == version]
            self._answer(
                200,
                {"model_version": {"name": query["name"], "version": version, "tags": tags, "aliases": held}},
            )
        elif route == ("GET", "registered-models/get"):
            held = [{"alias": a, "version": v} for a, v in self.aliases.items()]
            self._answer(200, {"registered_model": {"name": query["name"], "aliases": held}})
        elif route == ("POST", "model-versions/set-tag"):
            self.tags.setdefault(body["version"], {})[body["key"]] = body["value"]
            self._answer(200, {})
        elif route == ("POST", "registered-models/alias"):
            self.aliases[body["alias"]] = body["version"]
            self._answer(200, {})
        elif route == ("DELETE", "registered-models/alias"):
            self.aliases.pop(body["alias"], None)  # as MLflow's store: a missing alias is a no-op
            self._answer(200, {})
        else:
            self._answer(404, {"error_code": "ENDPOINT_NOT_FOUND"})

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def mlflow_url() -> Iterator[str]:
    Registry.tags, Registry.aliases, Registry.failures, Registry.asked, Registry.override = (
        {},
        {},
        [],
        [],
        None,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def registry(url: str, token: str | None = None) -> MlflowRegistry:
    return MlflowRegistry(url, SecretStr(token) if token else None, sleep=lambda seconds: None, timeout=5)


def test_tags_and_aliases_set_are_read_back(mlflow_url: str) -> None:
    mlflow = registry(mlflow_url, token="t0ken")
    mlflow.set_version_tag(MODEL, "3", "aims.approval", "approved")
    mlflow.set_version_tag(MODEL, "3", "aims.approval", "approved")  # again: the same state
    mlflow.set_alias(MODEL, "production", "3")
    assert mlflow.version_tags(MODEL, "3") == {"aims.approval": "approved"}
    assert mlflow.aliases(MODEL) == {"production": "3"}
    method, path, body, auth = Registry.asked[0]
    assert (method, path) == ("POST", "/api/2.0/mlflow/model-versions/set-tag")
    assert body == {"name": MODEL, "version": "3", "key": "aims.approval", "value": "approved"}
    assert auth == "Bearer t0ken"


def test_an_alias_is_deleted_with_its_fields_in_the_body_and_deleting_it_again_is_fine(
    mlflow_url: str,
) -> None:
    mlflow = registry(mlflow_url)
    mlflow.set_alias(MODEL, "production", "3")
    mlflow.delete_alias(MODEL, "production")
    mlflow.delete_alias(MODEL, "production")
    assert mlflow.aliases(MODEL) == {}
    deletes = [(p, b) for m, p, b, _ in Registry.asked if m == "DELETE"]
    assert (
        deletes == [("/api/2.0/mlflow/registered-models/alias", {"name": MODEL, "alias": "production"})] * 2
    )


def test_a_404_on_deleting_an_alias_is_success_but_on_setting_one_is_not(mlflow_url: str) -> None:
    mlflow = registry(mlflow_url)
    Registry.failures = [(404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST"}')]
    mlflow.delete_alias(MODEL, "production")
    Registry.failures = [(404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST"}')]
    with pytest.raises(RegistryAnswerInvalid, match="404"):
        mlflow.set_alias(MODEL, "production", "99")


def test_writes_are_retried_on_429_and_5xx_like_the_reads(mlflow_url: str) -> None:
    mlflow = registry(mlflow_url)
    Registry.failures = [(503, b"{}"), (429, b"{}"), (500, b"{}")]
    mlflow.set_alias(MODEL, "production", "3")
    assert Registry.aliases == {"production": "3"} and len(Registry.asked) == 4
    Registry.failures = [(503, b"{}")] * 4
    with pytest.raises(RegistryUnavailable, match="503"):
        mlflow.set_version_tag(MODEL, "3", "aims.assessment", "ra-1")
    assert "3" not in Registry.tags


def test_a_refused_write_is_not_retried(mlflow_url: str) -> None:
    Registry.failures = [(400, b'{"error_code": "INVALID_PARAMETER_VALUE"}')]
    with pytest.raises(RegistryAnswerInvalid, match="400"):
        registry(mlflow_url).set_version_tag(MODEL, "3", "aims.assessment", "x" * 10)
    assert len(Registry.asked) == 1


@pytest.mark.parametrize(
    "answer",
    [
        b'{"registered_model": {"aliases": {"production": "3"}}}',
        b'{"registered_model": {"aliases": [{"alias": 3, "version": "3"}]}}',
        b'{"registered_model": []}',
    ],
)
def test_aliases_not_shaped_as_mlflows_api_documents_are_refused(mlflow_url: str, answer: bytes) -> None:
    Registry.override = answer
    with pytest.raises(RegistryAnswerInvalid, match="not shaped"):
        registry(mlflow_url).aliases(MODEL)


def test_unreachable_mlflow_is_unavailable_after_the_retries() -> None:
    with pytest.raises(RegistryUnavailable, match="could not be reached"):
        registry("http://127.0.0.1:9").set_alias(MODEL, "production", "3")
