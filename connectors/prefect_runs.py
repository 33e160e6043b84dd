"""Starting flow runs on Prefect deployments, behind a small Protocol the router depends on."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient


class TransientLaunchError(Exception):
    """The orchestrator could not take the run now (down, overloaded, not deployed yet). Retry."""


class RejectedLaunch(Exception):
    """The orchestrator refused the run for good (e.g. parameters it will never accept)."""


class FlowRunLauncher(Protocol):
    async def launch(self, deployment: str, parameters: dict[str, Any], idempotency_key: str) -> UUID:
        """Create a flow run; a repeated idempotency key returns the run created the first time."""
        ...


_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class PrefectLauncher:
    """`run_deployment(..., timeout=0, idempotency_key=...)` outside any flow context.

    Use as an async context manager: one HTTP client is kept for the router's lifetime.
    """

    def __init__(self) -> None:
        self._client: PrefectClient | None = None

    async def __aenter__(self) -> PrefectLauncher:
        from prefect.client.orchestration import get_client

        self._client = get_client()
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.__aexit__(exc_type, exc, tb)
            self._client = None

    async def launch(self, deployment: str, parameters: dict[str, Any], idempotency_key: str) -> UUID:
        import httpx
        from prefect.deployments.flow_runs import arun_deployment
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        if self._client is None:
            raise RuntimeError("PrefectLauncher used outside `async with`")
        try:
            run = await arun_deployment(
                name=deployment,
                client=self._client,
                parameters=parameters,
                timeout=0,
                idempotency_key=idempotency_key,
                as_subflow=False,
            )
        except ObjectNotFound as exc:
            # Usually the worker has not registered the deployments yet; holding is safe.
            raise TransientLaunchError(
                f"deployment {deployment!r} not found; start the worker (aims up / aims worker)"
            ) from exc
        except PrefectHTTPStatusError as exc:
            status = exc.response.status_code
            if status in _TRANSIENT_STATUS:
                raise TransientLaunchError(f"Prefect answered {status}") from exc
            raise RejectedLaunch(f"Prefect answered {status}: {exc.response.text[:500]}") from exc
        except (httpx.TransportError, TimeoutError, OSError) as exc:
            raise TransientLaunchError(f"Prefect API unreachable: {type(exc).__name__}: {exc}") from exc
        return run.id
