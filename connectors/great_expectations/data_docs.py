"""A stored check outcome turned back into the GX validation result that Data Docs render, with its
store key. GX is imported only when a site is built.
"""

from __future__ import annotations

import re
from typing import Any

from schemas.suites import (
    CheckOutcome,
)


def gx_validation_result(outcome: CheckOutcome) -> tuple[Any, Any]:
    """A stored outcome back as the GX validation result Data Docs render, and its store key."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.metadata_types import FailureSeverity

    results = []
    for e in outcome.expectations:
        result: dict[str, Any] = {}
        if e.observed_value is not None:
            result["observed_value"] = e.observed_value
        for name in ("element_count", "unexpected_count", "unexpected_percent"):
            if getattr(e, name) is not None:
                result[name] = getattr(e, name)
        if e.unexpected_count is not None:
            result["partial_unexpected_list"] = e.unexpected_sample
        exception = {
            "raised_exception": e.exception is not None,
            "exception_message": e.exception,
            # the renderer needs text here; tracebacks are not kept
            "exception_traceback": e.exception,
        }
        config = ExpectationConfiguration(
            type=e.expectation, kwargs=e.kwargs, severity=FailureSeverity(e.severity.value)
        )
        results.append(
            ExpectationValidationResult(
                success=e.success, expectation_config=config, result=result, exception_info=exception
            )
        )
    stats = outcome.statistics
    run_id = RunIdentifier(run_name=path_safe(outcome.data_version or "check"), run_time=outcome.checked_at)
    suite_name = path_safe(outcome.dataset)
    value = ExpectationSuiteValidationResult(
        success=stats.unsuccessful == 0,  # as GX has it; the verdict is among the batch markers
        results=results,
        suite_name=suite_name,
        statistics={
            "evaluated_expectations": stats.evaluated,
            "successful_expectations": stats.successful,
            "unsuccessful_expectations": stats.unsuccessful,
            "success_percent": stats.success_percent,
        },
        meta={
            "great_expectations_version": gx.__version__,
            "run_id": run_id,
            "validation_time": outcome.checked_at,
            "active_batch_definition": {
                "datasource_name": outcome.engine,
                "data_connector_name": "",
                "data_asset_name": outcome.location,
                "batch_identifiers": {},
            },
            "batch_markers": {
                "verdict": outcome.verdict.value,
                "suite_version": outcome.suite_version,
                "suite_status": outcome.suite_status.value,
            },
            "batch_spec": {"location": outcome.location},
        },
    )
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run_id,
        batch_identifier=path_safe(f"{outcome.dataset}-{outcome.checked_at:%Y%m%dT%H%M%S%fZ}"),
    )
    return key, value


def path_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:100] or "_"
