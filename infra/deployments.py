"""Prefect deployments of the flows, served by a runner (`aims worker`).

The routing table names deployments as "<flow-name>/aims"; this module is what makes them exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from events.routing import DEPLOYMENT, ROUTES

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

    from connectors.prefect_api import PrefectApi


def all_flows() -> list[Flow[..., Any]]:
    from flows.check_data_quality import check_data_quality
    from flows.handle_incident import handle_incident
    from flows.onboard_model import onboard_model

    return [onboard_model, check_data_quality, handle_incident]


def deployments() -> list[RunnerDeployment]:
    # to_deployment is sync-or-async; called from sync code it returns the deployment itself.
    return [
        cast(
            "RunnerDeployment",
            f.to_deployment(name=DEPLOYMENT, tags=["aims", "event-driven"], description=f.description),
        )
        for f in all_flows()
    ]


def served(api: PrefectApi) -> bool:
    """True once every deployment the routing table names exists on the Prefect server."""
    return all(api.deployment_exists(r.deployment) for routes in ROUTES.values() for r in routes)


def serve(limit: int | None = None) -> None:
    """Register the deployments and run their flow runs until interrupted."""
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(), limit=limit, print_starting_message=False)
