"""Read-only queries of the Prefect REST API, for status views, the demo and tests.

Plain HTTP keeps `aims status` quick: importing the Prefect SDK alone costs about 2 s.
With the API's auth string (`user:password`, PREFECT_API_AUTH_STRING) every request carries it as
HTTP basic auth, as the Prefect SDK sends it; without it a server that requires one answers 401.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr


class PrefectAuth(httpx.Auth):
    """HTTP basic auth with the whole auth string, as the Prefect SDK sends it: the server compares the
    decoded credentials with its PREFECT_SERVER_API_AUTH_STRING as one string."""

    def __init__(self, auth: SecretStr) -> None:
        token = base64.b64encode(auth.get_secret_value().encode("utf-8")).decode("ascii")
        self._header = f"Basic {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "PrefectAuth(***)"


@dataclass(frozen=True)
class FlowRunView:
    id: str
    name: str
    flow_name: str
    state: str
    idempotency_key: str | None
    parameters: dict[str, Any]
    created: str
    start_time: str | None
    tags: tuple[str, ...] = ()


class PrefectApi:
    def __init__(self, api_url: str, timeout: float = 10, auth: SecretStr | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.api_url, timeout=timeout, auth=PrefectAuth(auth) if auth is not None else None
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, attempts: int = 6, **kwargs: Any) -> httpx.Response:
        """Every call here is a read or an idempotent delete, so repeating one is safe. Repeat on a
        transport error (an idle keep-alive connection the server already closed fails the first
        request on it) and on 429/503 (the SQLite-backed server answers 503 when its database is
        locked), with backoff."""
        delay = 0.25
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                if last:
                    raise
            else:
                if response.status_code not in (429, 503) or last:
                    return response
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
        raise AssertionError("unreachable")

    def delete_run(self, run_id: str) -> None:
        response = self.request("DELETE", f"/flow_runs/{run_id}")
        if response.status_code not in (204, 404):
            response.raise_for_status()

    def deployment_exists(self, name: str) -> bool:
        return self.request("GET", f"/deployments/name/{name}").status_code == 200

    def healthy(self) -> bool:
        try:
            return self.request("GET", "/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def _flow_names(self, flow_ids: set[str]) -> dict[str, str]:
        if not flow_ids:
            return {}
        response = self.request("POST", "/flows/filter", json={"flows": {"id": {"any_": sorted(flow_ids)}}})
        response.raise_for_status()
        return {f["id"]: f["name"] for f in response.json()}

    def flow_runs(
        self, flow_runs_filter: dict[str, Any], limit: int = 200, offset: int = 0
    ) -> list[FlowRunView]:
        response = self.request(
            "POST",
            "/flow_runs/filter",
            json={
                "flow_runs": flow_runs_filter,
                "limit": limit,
                "offset": offset,
                "sort": "EXPECTED_START_TIME_DESC",
            },
        )
        response.raise_for_status()
        runs = response.json()
        names = self._flow_names({r["flow_id"] for r in runs})
        return [
            FlowRunView(
                id=r["id"],
                name=r["name"],
                flow_name=names.get(r["flow_id"], "?"),
                state=(r.get("state") or {}).get("name") or r.get("state_name") or "?",
                idempotency_key=r.get("idempotency_key"),
                parameters=r.get("parameters") or {},
                created=r["created"],
                start_time=r.get("start_time"),
                tags=tuple(r.get("tags") or ()),
            )
            for r in runs
        ]

    def runs_for_keys(self, keys: list[str], chunk: int = 50) -> list[FlowRunView]:
        """Runs created with these idempotency keys (any number of keys: asked for in chunks)."""
        runs: list[FlowRunView] = []
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            # The API caps a page at 200; a key with more runs than 4 is a bug we want to see.
            runs += self.flow_runs({"idempotency_key": {"any_": part}}, limit=min(len(part) * 4, 200))
        return runs

    def runs_between(self, start: datetime, end: datetime, page: int = 200) -> list[FlowRunView]:
        """Every run expected to start in [start, end), however many: read page by page."""
        window = {"expected_start_time": {"after_": start.isoformat(), "before_": end.isoformat()}}
        runs: list[FlowRunView] = []
        while True:
            batch = self.flow_runs(window, limit=page, offset=len(runs))
            runs += batch
            if len(batch) < page:
                return runs

    def recent_runs(self, limit: int = 50) -> list[FlowRunView]:
        return self.flow_runs({}, limit=limit)

    def count_runs(self, flow_runs_filter: dict[str, Any] | None = None) -> int:
        response = self.request("POST", "/flow_runs/count", json={"flow_runs": flow_runs_filter or {}})
        response.raise_for_status()
        return int(response.json())
