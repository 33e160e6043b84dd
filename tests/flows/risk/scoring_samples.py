"""Shared by the risk scoring tests: the shipped and edited policies, evidence and its scores."""

from __future__ import annotations

import copy
import functools
from typing import Any

import yaml
from hypothesis import HealthCheck, settings

from flows.risk.scoring import CATEGORIES, IncidentFact, RiskEvidence, RiskScore, score_category
from schemas.payloads import IncidentCategory, ReassessmentReason, RiskLevel, RiskTier, Severity
from schemas.policy import Policy
from schemas.policy_file import load_policy
from tests.resources import EXAMPLE_POLICY

EXAMPLE = EXAMPLE_POLICY
# database=None: nothing is written under the project (.hypothesis/) by these tests.
PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
BY_NAME = {c.name: c for c in CATEGORIES}
L, M, H, C = RiskLevel.low, RiskLevel.medium, RiskLevel.high, RiskLevel.critical


# -- policies --------------------------------------------------------------------------------------


@functools.cache
def shipped() -> Policy:
    return load_policy(EXAMPLE)


def example_dict() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return copy.deepcopy(data)


@functools.cache
def excluding_a74() -> Policy:
    """The shipped policy with A.7.4 (a data_quality and drift control) excluded in the SoA."""
    data = example_dict()
    data["statement_of_applicability"]["exclusions"]["A.7.4"] = "Data quality is the supplier's duty."
    return Policy.model_validate(data)


@functools.cache
def appetite_medium() -> Policy:
    data = example_dict()
    data["risk"]["appetite"] = "medium"
    del data["approvals"]["medium"]
    del data["slas"]["medium"]
    return Policy.model_validate(data)


def sized(likelihoods: int, impacts: int) -> Policy:
    """The shipped policy with scales of other sizes, and four bands spread over the new matrix."""
    data = example_dict()
    risk = data["risk"]
    risk["likelihood"] = [
        {"score": i, "name": f"l{i}", "description": f"Likelihood {i}."} for i in range(1, likelihoods + 1)
    ]
    risk["impact"] = [
        {"score": i, "name": f"i{i}", "description": f"Impact {i}."} for i in range(1, impacts + 1)
    ]
    top = likelihoods * impacts  # at least 4: every band below gets a distinct max_score under top
    risk["levels"] = [
        {"level": "low", "max_score": top // 4},
        {"level": "medium", "max_score": top // 2},
        {"level": "high", "max_score": 3 * top // 4},
        {"level": "critical", "max_score": top},
    ]
    return Policy.model_validate(data)


# -- evidence --------------------------------------------------------------------------------------


def ev(**fields: Any) -> RiskEvidence:
    return RiskEvidence(system="credit-scoring", reason=ReassessmentReason.manual, **fields)


def inc(id: str, category: IncidentCategory, severity: Severity) -> IncidentFact:
    return IncidentFact(id=id, category=category, severity=severity)


def scored(evidence: RiskEvidence, category: str, policy: Policy) -> RiskScore:
    return score_category(BY_NAME[category], evidence, policy)


# -- rationale -------------------------------------------------------------------------------------


def check_rationale(s: RiskScore) -> None:
    assert s.rationale, s.category
    for step in s.rationale:
        for text in (step.rule, step.evidence, step.effect):
            assert isinstance(text, str) and text.strip(), step
    first = s.rationale[0]
    assert first.rule.startswith("baseline likelihood"), first
    assert any(step.rule.startswith("impact from the risk tier") for step in s.rationale)


RICH = ev(
    risk_tier=RiskTier.high,
    window_days=30,
    datasets=["loans", "bureau"],
    unpinned_datasets=["bureau"],
    checks=7,
    failed_checks=["r1", "r2"],
    drift_critical=["loans.income"],
    drift_warning=["loans.age"],
    incidents=[
        inc("INC-1", IncidentCategory.bias, Severity.medium),
        inc("INC-2", IncidentCategory.performance, Severity.critical),
    ],
    model_version="v4.1",
    previous_version="3.9",
    open_impact_assessments=["IA-3"],
)
