"""Read-only queries of the Prefect REST API, for status views, the demo and tests.

Plain HTTP keeps `aims status` quick: importing the Prefect SDK alone costs about 2 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


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


class PrefectApi:
    def __init__(self, api_url: str, timeout: float = 10) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def healthy(self) -> bool:
        try:
            return self._http.get("/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def _flow_names(self, flow_ids: set[str]) -> dict[str, str]:
        if not flow_ids:
            return {}
        response = self._http.post("/flows/filter", json={"flows": {"id": {"any_": sorted(flow_ids)}}})
        response.raise_for_status()
        return {f["id"]: f["name"] for f in response.json()}

    def flow_runs(self, flow_runs_filter: dict[str, Any], limit: int = 200) -> list[FlowRunView]:
        response = self._http.post(
            "/flow_runs/filter",
            json={"flow_runs": flow_runs_filter, "limit": limit, "sort": "EXPECTED_START_TIME_DESC"},
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
            )
            for r in runs
        ]

    def runs_for_keys(self, keys: list[str]) -> list[FlowRunView]:
        return self.flow_runs({"idempotency_key": {"any_": keys}}, limit=max(len(keys) * 4, 10))

    def recent_runs(self, limit: int = 50) -> list[FlowRunView]:
        return self.flow_runs({}, limit=limit)

    def count_runs(self, flow_runs_filter: dict[str, Any] | None = None) -> int:
        response = self._http.post("/flow_runs/count", json={"flow_runs": flow_runs_filter or {}})
        response.raise_for_status()
        return int(response.json())
