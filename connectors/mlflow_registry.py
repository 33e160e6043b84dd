"""What MLflow's REST API knows of a model version beyond its webhook: `VersionFacts`.

A model_version.created webhook carries the version's name, number, source, run, tags and
description, but not who registered it, the registered model's own tags (where the AI-system tag
usually is) nor what the run was trained on. Three reads add them: model-versions/get (user_id),
registered-models/get (tags, description) and runs/get (inputs.dataset_inputs).

The write-back (issue 21, "written back") uses four more calls: model-versions/set-tag, a
registered-models/alias POST (set) and DELETE (take away), and registered-models/get's `aliases`
(where each alias points). Each is idempotent by nature: setting a tag or an alias to what it is
changes nothing, and deleting an alias that is gone is a no-op in MLflow (a 404 for it is success).

Every call is repeated on transport errors, 429 and 5xx with doubling, jittered backoff (a
Retry-After is respected), through one loop (`_call`); answers are read up to a cap, since a run's
datasets carry their schema and profile. What MLflow answers is untrusted like the webhook itself
and validated as it is. The token (AIMS_MLFLOW_TRACKING_TOKEN, sent as MLflow's clients send
MLFLOW_TRACKING_TOKEN) is never logged.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from pydantic import SecretStr, ValidationError

from schemas.mlflow import VersionFacts

if TYPE_CHECKING:
    from schemas.settings import AimsSettings

MAX_ANSWER_BYTES = 16 * 1024 * 1024
RETRIED = frozenset({429, 500, 502, 503, 504})
CONTEXT_TAG = "mlflow.data.context"


class RegistryUnavailable(Exception):
    """MLflow could not be asked (after the retries): worth asking again later."""


class RegistryAnswerInvalid(Exception):
    """MLflow answered, but not with what its API documents: asking again will not help."""


class VersionFactsSource(Protocol):
    def facts(self, name: str, version: str, run_id: str | None) -> VersionFacts: ...


class RegistryWriter(Protocol):
    """What the write-back flow reads and writes in MLflow's model registry."""

    def version_tags(self, name: str, version: str) -> dict[str, str]: ...

    def aliases(self, name: str) -> dict[str, str]: ...

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...


class MlflowRegistry:
    """The REST calls above, against one tracking server."""

    def __init__(
        self,
        tracking_uri: str,
        token: SecretStr | None = None,
        timeout: float = 10,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else {}
        self._http = httpx.Client(base_url=tracking_uri.rstrip("/"), timeout=timeout, headers=headers)
        self._attempts = attempts
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"MlflowRegistry({self._http.base_url})"

    def facts(self, name: str, version: str, run_id: str | None) -> VersionFacts:
        found = self._get("/api/2.0/mlflow/model-versions/get", {"name": name, "version": version})
        model = self._get("/api/2.0/mlflow/registered-models/get", {"name": name})
        run = self._get("/api/2.0/mlflow/runs/get", {"run_id": run_id}) if run_id else {}
        try:
            model_version = found.get("model_version") or {}
            registered = model.get("registered_model") or {}
            inputs = (run.get("run") or {}).get("inputs") or {}
            return VersionFacts.model_validate(
                {
                    "user_id": model_version.get("user_id"),
                    "model_tags": {t.get("key"): t.get("value") for t in registered.get("tags") or []},
                    "model_description": registered.get("description"),
                    "datasets": [_dataset(d) for d in inputs.get("dataset_inputs") or []],
                }
            )
        except ValidationError as exc:
            # Where and what only: the values are MLflow's and may be large.
            found_errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise RegistryAnswerInvalid(f"MLflow's answer is malformed: {found_errors[:300]}") from None
        except (AttributeError, TypeError):
            # A list or a string where the API documents an object.
            raise RegistryAnswerInvalid("MLflow's answer is not shaped as its API documents") from None

    # -- the write-back --------------------------------------------------------------------------

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        """The version's tags as MLflow holds them now."""
        found = self._get("/api/2.0/mlflow/model-versions/get", {"name": name, "version": version})
        tags = _object(found.get("model_version")).get("tags") or []
        return _pairs(tags, "key", "value")

    def aliases(self, name: str) -> dict[str, str]:
        """The registered model's aliases → the version each points at."""
        found = self._get("/api/2.0/mlflow/registered-models/get", {"name": name})
        aliases = _object(found.get("registered_model")).get("aliases") or []
        return _pairs(aliases, "alias", "version")

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        self._call("POST", "/api/2.0/mlflow/model-versions/set-tag", json_body=body)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        body = {"name": name, "alias": alias, "version": version}
        self._call("POST", "/api/2.0/mlflow/registered-models/alias", json_body=body)

    def delete_alias(self, name: str, alias: str) -> None:
        # MLflow reads a DELETE's fields from its JSON body (only a GET's from the query).
        body = {"name": name, "alias": alias}
        self._call("DELETE", "/api/2.0/mlflow/registered-models/alias", json_body=body, absent_ok=True)

    # -- one retry loop for every call --------------------------------------------------------

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        json_body: dict[str, str] | None = None,
        absent_ok: bool = False,
    ) -> dict[str, Any]:
        """One call, repeated on transport errors, 429 and 5xx; `absent_ok`: a 404 is success (what
        was to be taken away is not there)."""
        delay = 0.5
        for attempt in range(self._attempts):
            last = attempt == self._attempts - 1
            try:
                with self._http.stream(method, path, params=params, json=json_body) as response:
                    if response.status_code in RETRIED and not last:
                        wait = _retry_after(response) or delay * (0.5 + random.random())
                    else:
                        if response.status_code in RETRIED:
                            raise RegistryUnavailable(f"MLflow answered {response.status_code} to {path}")
                        if response.status_code == 404 and absent_ok:
                            return {}
                        if response.status_code != 200:
                            # 404 too: the version was deleted since, or the URI names another server.
                            raise RegistryAnswerInvalid(f"MLflow answered {response.status_code} to {path}")
                        return _json(response)
            except httpx.TransportError as exc:
                if last:
                    raise RegistryUnavailable(f"MLflow could not be reached: {type(exc).__name__}") from None
                wait = delay * (0.5 + random.random())
            self._sleep(min(wait, 30.0))
            delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")


def registry_from_settings(settings: AimsSettings) -> MlflowRegistry | None:
    """The tracking server of AIMS_MLFLOW_TRACKING_URI, or None when it is not set."""
    if settings.mlflow_tracking_uri is None:
        return None
    return MlflowRegistry(settings.mlflow_tracking_uri, settings.mlflow_tracking_token)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isascii() and value.isdigit() else None


def _json(response: httpx.Response) -> dict[str, Any]:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise RegistryAnswerInvalid(f"MLflow's answer is over {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise RegistryAnswerInvalid("MLflow's answer is no JSON") from None
    if not isinstance(answer, dict):
        raise RegistryAnswerInvalid("MLflow's answer is no JSON object")
    return answer


def _object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RegistryAnswerInvalid("MLflow's answer is not shaped as its API documents")
    return value


def _pairs(items: Any, key: str, value: str) -> dict[str, str]:
    """[{key: k, value: v}, …] as {k: v}; anything else is an answer MLflow's API does not give."""
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get(key), str) and isinstance(i.get(value, ""), str)
        for i in items
    ):
        raise RegistryAnswerInvalid("MLflow's answer is not shaped as its API documents")
    return {i[key]: i.get(value, "") for i in items}


def _dataset(dataset_input: Any) -> dict[str, Any]:
    """One `dataset_inputs` item as a LoggedDataset's fields (validated by the caller)."""
    if not isinstance(dataset_input, dict):
        return {}
    dataset = dataset_input.get("dataset") or {}
    tags = {t.get("key"): t.get("value") for t in dataset_input.get("tags") or [] if isinstance(t, dict)}
    return {
        "name": dataset.get("name"),
        "digest": dataset.get("digest"),
        "source_type": dataset.get("source_type"),
        "source_uri": _source_uri(dataset.get("source")),
        "context": tags.get(CONTEXT_TAG),
    }


def _source_uri(source: Any) -> str | None:
    """MLflow keeps a dataset's source as JSON text, e.g. '{"uri": "s3://lake/loans.csv"}'."""
    if not isinstance(source, str):
        return None
    try:
        parsed = json.loads(source)
    except ValueError:
        return source
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return None


__all__ = [
    "MlflowRegistry",
    "RegistryAnswerInvalid",
    "RegistryUnavailable",
    "RegistryWriter",
    "VersionFactsSource",
    "registry_from_settings",
]
