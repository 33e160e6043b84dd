"""Explainable AI risk scoring: evidence in, likelihood × impact per risk out, with the rule behind each step.

Pure and deterministic: no clock, no register, no randomness. The same `RiskEvidence` and `Policy`
always give the same `RiskScore`s, so an auditor can recompute any assessment from the inputs the
register keeps with it.

How a score is built, per Annex C risk category:
- likelihood starts at "unlikely" (40 % up the policy's scale) and moves up a step per piece of evidence
  against it (failed data-quality checks, drift, incidents of that kind, a new major version, …);
- impact follows the system's risk tier (the EU AI Act's view of what is at stake), raised to what
  an incident of that kind already showed;
- the level is the policy's band of likelihood × impact (inherent);
- the treatment (the category's Annex A controls) lowers likelihood by one step when every control
  applies, i.e. none is excluded in the Statement of Applicability (residual).
Starting points are fractions of the policy's scales (2 to 10 levels); evidence adds whole steps, and
the result is clamped to the scale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.payloads import IncidentCategory, ReassessmentReason, RiskLevel, RiskTier, Severity
from schemas.policy import Policy


@dataclass(frozen=True)
class Category:
    name: str
    title: str
    treatment: str
    controls: tuple[str, ...]


# Annex C risk sources, as the organisation's default risk list for every AI system.
CATEGORIES: tuple[Category, ...] = (
    Category(
        "data_quality",
        "Poor or unrepresentative data leads to wrong outputs",
        "Expectation suites check every dataset version; failing versions are rejected (A.7.4, A.7.6).",
        ("A.7.4", "A.7.6"),
    ),
    Category(
        "drift",
        "Input data drifts away from what the model was trained on",
        "Every version is compared with the last accepted one; critical drift blocks it (A.6.2.6).",
        ("A.6.2.6", "A.7.4"),
    ),
    Category(
        "robustness",
        "The system fails or degrades on inputs met in operation",
        "Verification and validation before release, monitoring in operation (A.6.2.4, A.6.2.6).",
        ("A.6.2.4", "A.6.2.6"),
    ),
    Category(
        "fairness",
        "Outputs disadvantage individuals or groups",
        "Impact assessment of affected groups and fairness tests in validation (A.5.4, A.6.2.4).",
        ("A.5.4", "A.6.2.4"),
    ),
    Category(
        "privacy",
        "Personal data is acquired or used beyond its lawful purpose",
        "Data acquisition checked against its purpose, with recorded provenance (A.7.3, A.7.5).",
        ("A.7.3", "A.7.5"),
    ),
    Category(
        "security",
        "Attacks on the model, its data or its tooling",
        "Hardened tooling and monitored operation (A.4.4, A.6.2.6).",
        ("A.4.4", "A.6.2.6"),
    ),
    Category(
        "transparency",
        "Users and affected people cannot understand or contest outputs",
        "System documentation, user information and impact-assessment records (A.6.2.7, A.8.2, A.5.3).",
        ("A.6.2.7", "A.8.2", "A.5.3"),
    ),
    Category(
        "third_party",
        "Suppliers' data or components are not what they claim",
        "Supplier requirements and pinned provenance of every input (A.10.3, A.7.5).",
        ("A.10.3", "A.7.5"),
    ),
    Category(
        "misuse",
        "The system is used outside its intended use",
        "Intended use documented and processes for responsible use (A.9.2, A.9.4).",
        ("A.9.2", "A.9.4"),
    ),
)
CATEGORY_NAMES = tuple(c.name for c in CATEGORIES)

# Which risk an incident is evidence of.
INCIDENT_RISK: Mapping[IncidentCategory, str] = {
    IncidentCategory.bias: "fairness",
    IncidentCategory.fundamental_rights: "fairness",
    IncidentCategory.privacy: "privacy",
    IncidentCategory.security: "security",
    IncidentCategory.misuse: "misuse",
    IncidentCategory.performance: "robustness",
    IncidentCategory.health_and_safety: "robustness",
    IncidentCategory.death: "robustness",
    IncidentCategory.critical_infrastructure: "robustness",
    IncidentCategory.property_or_environment: "robustness",
    IncidentCategory.other: "robustness",
}
# Likelihood steps of an incident: once it happened, the risk is no longer hypothetical.
INCIDENT_STEP: Mapping[Severity, int] = {
    Severity.low: 1,
    Severity.medium: 1,
    Severity.high: 2,
    Severity.critical: 3,
}
# Where on the impact scale an incident of this severity puts the risk at least.
INCIDENT_IMPACT: Mapping[Severity, float] = {
    Severity.low: 0.0,
    Severity.medium: 0.6,
    Severity.high: 0.8,
    Severity.critical: 1.0,
}
# Where on the impact scale the risk tier puts every risk of the system.
TIER_IMPACT: Mapping[RiskTier | None, float] = {
    RiskTier.minimal: 0.2,
    RiskTier.limited: 0.4,
    None: 0.6,  # not assessed yet: assume more than limited until someone says otherwise
    RiskTier.high: 0.8,
    RiskTier.prohibited: 1.0,
}
BASE_LIKELIHOOD = 0.4
# A new major version changes behaviour that operation has not yet shown.
MAJOR_VERSION_RISKS = ("robustness", "fairness", "transparency")
REPEATED_INCIDENTS = 3


class Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IncidentFact(Facts):
    id: str
    category: IncidentCategory
    severity: Severity

    @property
    def severity_rank(self) -> int:
        return list(Severity).index(self.severity)


class RiskEvidence(Facts):
    """What an assessment knows about a system; kept with the assessment, so it can be recomputed."""

    system: str
    reason: ReassessmentReason
    risk_tier: RiskTier | None = None
    window_days: int = Field(90, ge=1)
    datasets: list[str] = Field(default_factory=list, description="Datasets its current model uses.")
    unpinned_datasets: list[str] = Field(default_factory=list, description="Used without a version.")
    checks: int = Field(0, ge=0, description="Data-quality checks of those datasets in the window.")
    failed_checks: list[str] = Field(default_factory=list, description="Results that failed.")
    drift_critical: list[str] = Field(default_factory=list, description="dataset.column at critical drift.")
    drift_warning: list[str] = Field(default_factory=list, description="dataset.column at warning drift.")
    incidents: list[IncidentFact] = Field(default_factory=list, description="Incidents in the window.")
    model_version: str | None = None
    previous_version: str | None = None
    open_impact_assessments: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _failures_are_checks(self) -> RiskEvidence:
        if len(self.failed_checks) > self.checks:
            raise ValueError(f"{len(self.failed_checks)} failed checks but only {self.checks} checks")
        return self

    @property
    def new_major_version(self) -> bool:
        new, old = major(self.model_version), major(self.previous_version)
        return new is not None and old is not None and new > old


class Step(Facts):
    """One rule applied: what it looked at and what it did to the score."""

    rule: str
    evidence: str
    effect: str


class RiskScore(Facts):
    category: str
    title: str
    likelihood: int
    impact: int
    inherent_level: RiskLevel
    residual_likelihood: int
    residual_level: RiskLevel
    treatment: str
    controls: list[str]
    rationale: list[Step]


def major(version: str | None) -> int | None:
    """The major number of "3", "v2.1.0" or "2024.1"; None when the version has none."""
    if version is None:
        return None
    found = re.match(r"^[vV]?(\d+)", version)
    return int(found.group(1)) if found else None


def on_scale(fraction: float, size: int) -> int:
    return min(size, max(1, math.ceil(round(fraction * size, 9))))


def _up(step: int, rule: str, evidence: str) -> tuple[int, Step]:
    return step, Step(rule=rule, evidence=evidence, effect=f"likelihood +{step}")


def _likelihood_steps(category: str, ev: RiskEvidence) -> list[tuple[int, Step]]:
    """(steps, why) of every rule that moves this category's likelihood."""
    moves: list[tuple[int, Step]] = []
    if category == "data_quality":
        if ev.checks:
            rate = len(ev.failed_checks) / ev.checks
            step = 3 if rate >= 0.5 else 2 if rate >= 0.25 else 1 if rate > 0 else 0
            if step:
                moves.append(
                    _up(
                        step,
                        "failure rate ≥ 50 %: +3, ≥ 25 %: +2, above 0: +1",
                        f"{len(ev.failed_checks)} of {ev.checks} checks failed in {ev.window_days} days "
                        f"({rate:.0%}): {', '.join(ev.failed_checks[:5])}",
                    )
                )
        elif ev.datasets:
            moves.append(
                _up(
                    1,
                    "data used but not checked: +1",
                    f"no data-quality check of {', '.join(ev.datasets)} in {ev.window_days} days",
                )
            )
    if category == "drift":
        if ev.drift_critical:
            rule = "critical drift (PSI at or above the policy's psi_critical): +2"
            moves.append(_up(2, rule, ", ".join(ev.drift_critical[:10])))
        elif ev.drift_warning:
            rule = "drift warning (psi_warning, or KS below ks_pvalue): +1"
            moves.append(_up(1, rule, ", ".join(ev.drift_warning[:10])))
    related = [i for i in ev.incidents if INCIDENT_RISK[i.category] == category]
    if related:
        worst = max(related, key=lambda i: i.severity_rank)
        moves.append(
            _up(
                INCIDENT_STEP[worst.severity],
                "incident of this kind in the window: low/medium +1, high +2, critical +3",
                f"{worst.severity} {worst.category} incident {worst.id}",
            )
        )
        if len(related) >= REPEATED_INCIDENTS:
            moves.append(
                _up(
                    1,
                    f"{REPEATED_INCIDENTS} or more such incidents in the window: +1",
                    f"{len(related)} incidents: {', '.join(i.id for i in related[:5])}",
                )
            )
    if category in MAJOR_VERSION_RISKS and ev.new_major_version:
        rule = "new major version: behaviour not yet seen in operation: +1"
        moves.append(_up(1, rule, f"version {ev.model_version} after {ev.previous_version}"))
    if category == "third_party" and ev.unpinned_datasets:
        rule = "inputs without a pinned version (A.7.5 provenance incomplete): +1"
        moves.append(_up(1, rule, ", ".join(ev.unpinned_datasets)))
    if category == "transparency" and ev.open_impact_assessments:
        rule = "impact assessment not completed (6.1.4): +1"
        moves.append(_up(1, rule, ", ".join(ev.open_impact_assessments)))
    return moves


def score_category(category: Category, ev: RiskEvidence, policy: Policy) -> RiskScore:
    criteria = policy.risk
    l_size, i_size = len(criteria.likelihood), len(criteria.impact)
    steps: list[Step] = []

    likelihood = on_scale(BASE_LIKELIHOOD, l_size)
    steps.append(
        Step(
            rule="baseline likelihood: 40 % up the scale",
            evidence="every AI system",
            effect=f"likelihood {likelihood} ({criteria.likelihood[likelihood - 1].name})",
        )
    )
    for step, why in _likelihood_steps(category.name, ev):
        likelihood += step
        steps.append(why)
    if likelihood > l_size:
        top = Step(
            rule="top of the scale",
            evidence=f"the evidence asks for likelihood {likelihood}",
            effect=f"likelihood {l_size}",
        )
        steps.append(top)
        likelihood = l_size

    tier = ev.risk_tier.value if ev.risk_tier else "not assessed"
    impact = on_scale(TIER_IMPACT[ev.risk_tier], i_size)
    steps.append(
        Step(
            rule="impact from the risk tier: minimal 20 %, limited 40 %, not assessed 60 %, high 80 %, "
            "prohibited 100 % of the scale",
            evidence=f"risk tier {tier}",
            effect=f"impact {impact} ({criteria.impact[impact - 1].name})",
        )
    )
    related = [i for i in ev.incidents if INCIDENT_RISK[i.category] == category.name]
    if related:
        worst = max(related, key=lambda i: i.severity_rank)
        floor = on_scale(INCIDENT_IMPACT[worst.severity], i_size) if INCIDENT_IMPACT[worst.severity] else 1
        if floor > impact:
            impact = floor
            steps.append(
                Step(
                    rule="impact at least what an incident showed: medium 60 %, high 80 %, critical 100 %",
                    evidence=f"{worst.severity} incident {worst.id}",
                    effect=f"impact {impact} ({criteria.impact[impact - 1].name})",
                )
            )
    inherent = policy.level_for(likelihood, impact)

    excluded = [c for c in category.controls if c in policy.statement_of_applicability.exclusions]
    residual_likelihood = likelihood
    if excluded:
        steps.append(
            Step(
                rule="treatment lowers likelihood one step only if all its controls apply",
                evidence=f"{', '.join(excluded)} excluded in the Statement of Applicability",
                effect="residual = inherent",
            )
        )
    else:
        residual_likelihood = max(1, likelihood - 1)
        steps.append(
            Step(
                rule="treatment with all its controls applied: likelihood -1, down to the lowest",
                evidence=", ".join(category.controls),
                effect=f"residual likelihood {residual_likelihood}",
            )
        )
    return RiskScore(
        category=category.name,
        title=category.title,
        likelihood=likelihood,
        impact=impact,
        inherent_level=inherent,
        residual_likelihood=residual_likelihood,
        residual_level=policy.level_for(residual_likelihood, impact),
        treatment=category.treatment,
        controls=list(category.controls),
        rationale=steps,
    )


def score(evidence: RiskEvidence, policy: Policy) -> list[RiskScore]:
    """Every category's score, in the order of `CATEGORIES`."""
    return [score_category(category, evidence, policy) for category in CATEGORIES]


# -- gates ----------------------------------------------------------------------------------------


class Gate(Facts):
    category: str
    previous: RiskLevel | None
    level: RiskLevel
    why: str


def gates(previous: Mapping[str, RiskLevel], scores: list[RiskScore], policy: Policy) -> list[Gate]:
    """The risks that need a decision: crossed the appetite, or rose a level while above it.

    A rise that stays within the appetite needs none: the appetite is, by definition, what the
    organisation accepts without an approval.
    """
    found = []
    for s in scores:
        before, now = previous.get(s.category), s.inherent_level
        if not policy.needs_approval(now):
            continue
        if before is None or not policy.needs_approval(before):
            why = f"{now} is above the appetite ({policy.risk.appetite})"
        elif now.rank > before.rank:
            why = f"rose from {before} to {now}"
        else:
            continue
        found.append(Gate(category=s.category, previous=before, level=now, why=why))
    return found


def highest(levels: list[RiskLevel]) -> RiskLevel:
    return max(levels, key=lambda level: level.rank, default=RiskLevel.low)
