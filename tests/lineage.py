"""OpenLineage run events and a policy that maps their datasets, for the intake's tests.

Not a test module: the pure intake's tests and the gateway's share it.
"""

from __future__ import annotations

from typing import Any

from schemas.policy import Policy
from tests.resources import example_policy

RUN = "0190f1a2-3b4c-7d5e-8f60-123456789abc"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"


def lineage_policy(lake: str = "/srv/lake") -> Policy:
    """The example policy with a files source `lake` at `lake`, a SQL source, and OpenLineage
    locations for both (a folder of the lake named as one dataset)."""
    return Policy.model_validate(
        example_policy().model_dump(mode="json", exclude={"data_sources", "openlineage"})
        | {
            "data_sources": {
                "lake": {"kind": "files", "roots": [lake]},
                "warehouse": {"kind": "sql", "url": "postgresql+psycopg://reader@db/analytics"},
            },
            "openlineage": {
                "dataset_locations": [
                    {"namespace": "file", "prefix": f"{lake}/", "source": "lake"},
                    {
                        "namespace": "file",
                        "prefix": f"{lake}/loans/",
                        "source": "lake",
                        "under": "loans/",
                        "dataset": "loans",
                    },
                    {
                        "namespace": "postgres://db:5432",
                        "prefix": "analytics.public.",
                        "source": "warehouse",
                        "under": "public.",
                    },
                ]
            },
        }
    )


def output(name: str, namespace: str = "file", **facets: Any) -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "facets": facets}


def event_body(
    event_type: str | None = "COMPLETE", outputs: list[Any] | None = None, **more: Any
) -> dict[str, Any]:
    """A RunEvent as the client's JSON (one output in the lake unless told otherwise)."""
    body = {
        "eventType": event_type,
        "eventTime": "2026-12-05T12:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": RUN},
        "job": {"namespace": "pipelines", "name": "nightly-loans"},
        "inputs": [],
        "outputs": outputs if outputs is not None else [output("/srv/lake/scores.csv")],
    } | more
    if event_type is None:
        body.pop("eventType")
    return body


ASSERTIONS = {
    "dataQualityAssertions": {
        "assertions": [
            {"assertion": "not_null", "success": True, "column": "applicant_id"},
            {"assertion": "unique", "success": True, "column": "applicant_id"},
            {"assertion": "income_positive", "success": False, "column": "income"},
        ]
    },
    "dataQualityMetrics": {"rowCount": 500, "columnMetrics": {"income": {"nullCount": 0}}},
}
