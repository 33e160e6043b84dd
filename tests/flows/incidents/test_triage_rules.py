"""Incident triage: severity floors, the Art. 73 criteria and the deadline each report comes to."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flows.incidents.clocks import clock
from flows.incidents.rules import INVENTORY_CONTROLS, inventory_finding, triage
from schemas.payloads import Art73Criterion, IncidentCategory, Severity
from schemas.policy import Art73Clock, Policy
from tests.flows.incidents.incident_samples import (
    ART73,
    INC,
    NO_FLOOR,
    POLICY,
    T0,
    C,
    reported,
    with_incidents,
)

# -- 1. triage ----------------------------------------------------------------------------------

Cat, S = IncidentCategory, Severity
HARM_CATEGORIES = (
    Cat.health_and_safety,
    Cat.critical_infrastructure,
    Cat.fundamental_rights,
    Cat.property_or_environment,
)


def case(
    name: str,
    category: IncidentCategory,
    severity: Severity,
    final: Severity,
    criteria: tuple[Art73Criterion, ...] = (),
    days: int | None = None,
    basis: str | None = None,
    harms: tuple[Art73Criterion, ...] = (),
    policy: Policy = POLICY,
) -> object:
    """One triage: what is reported, and the severity, criteria and deadline it must come to."""
    return pytest.param(policy, category, severity, harms, final, criteria, days, basis, id=name)


TRIAGE_CASES = [
    case("death", Cat.death, S.low, S.critical, (C.death,), 10, "death"),
    case("death-below-serious_from", Cat.death, S.low, S.low, (C.death,), 10, "death", policy=NO_FLOOR),
    # Each harm category at serious_from (high), without floors in the way.
    case(
        "health",
        Cat.health_and_safety,
        S.high,
        S.high,
        (C.serious_harm_to_health,),
        15,
        "general",
        policy=NO_FLOOR,
    ),
    case(
        "critical-infrastructure",
        Cat.critical_infrastructure,
        S.high,
        S.high,
        (C.critical_infrastructure_disruption,),
        2,
        "widespread",
        policy=NO_FLOOR,
    ),
    case(
        "fundamental-rights",
        Cat.fundamental_rights,
        S.high,
        S.high,
        (C.fundamental_rights_infringement,),
        15,
        "general",
        policy=NO_FLOOR,
    ),
    case(
        "property",
        Cat.property_or_environment,
        S.high,
        S.high,
        (C.serious_harm_to_property_or_environment,),
        15,
        "general",
        policy=NO_FLOOR,
    ),
    case(
        "property-critical",
        Cat.property_or_environment,
        S.critical,
        S.critical,
        (C.serious_harm_to_property_or_environment,),
        15,
        "general",
    ),
    # Below serious_from: not serious, no clock.
    *[case(f"{c}-{s}", c, s, s, policy=NO_FLOOR) for c in HARM_CATEGORIES for s in (S.low, S.medium)],
    case("property-medium-shipped", Cat.property_or_environment, S.medium, S.medium),
    # The shipped floors lift a low report into seriousness.
    case(
        "floor-critical-infrastructure",
        Cat.critical_infrastructure,
        S.low,
        S.critical,
        (C.critical_infrastructure_disruption,),
        2,
        "widespread",
    ),
    case("floor-health", Cat.health_and_safety, S.medium, S.high, (C.serious_harm_to_health,), 15, "general"),
    # Harms the reporter names.
    case(
        "named-widespread",
        Cat.performance,
        S.low,
        S.low,
        (C.widespread_infringement,),
        2,
        "widespread",
        harms=(C.widespread_infringement,),
    ),
    case(
        "named-health",
        Cat.misuse,
        S.medium,
        S.medium,
        (C.serious_harm_to_health,),
        15,
        "general",
        harms=(C.serious_harm_to_health,),
    ),
    # Several criteria: the shortest deadline wins.
    case(
        "death-and-critical-infrastructure",
        Cat.death,
        S.critical,
        S.critical,
        (C.death, C.critical_infrastructure_disruption),
        2,
        "widespread",
        harms=(C.critical_infrastructure_disruption,),
    ),
    case(
        "death-beats-general",
        Cat.fundamental_rights,
        S.high,
        S.high,
        (C.death, C.fundamental_rights_infringement),
        10,
        "death",
        harms=(C.death,),
    ),
    # Non-harm categories: floors apply, never serious.
    case("floor-bias", Cat.bias, S.low, S.medium),
    case("floor-privacy", Cat.privacy, S.low, S.medium),
    *[
        case(f"{c}-critical", c, S.critical, S.critical)
        for c in (Cat.security, Cat.privacy, Cat.bias, Cat.performance, Cat.misuse, Cat.other)
    ],
]


@pytest.mark.parametrize(
    ("policy", "category", "severity", "harms", "final", "criteria", "days", "basis"), TRIAGE_CASES
)
def test_triage(
    policy: Policy,
    category: IncidentCategory,
    severity: Severity,
    harms: tuple[Art73Criterion, ...],
    final: Severity,
    criteria: tuple[Art73Criterion, ...],
    days: int | None,
    basis: str | None,
) -> None:
    result = triage(reported(category, severity, harms), policy)
    assert result.severity is final
    assert result.criteria == criteria
    assert result.serious is bool(criteria)
    if days is None:
        assert result.clock is None
        return
    assert result.clock is not None
    assert (result.clock.days, result.clock.basis) == (days, basis)
    assert result.clock.detected_at == T0
    assert result.clock.due_at == T0 + timedelta(days=days)
    assert result.clock.text.endswith(f", {days} days")


def test_clock_text_names_the_article() -> None:
    death = clock(T0, [C.death], ART73)
    widespread = clock(T0, [C.widespread_infringement], ART73)
    general = clock(T0, [C.serious_harm_to_health], ART73)
    assert death is not None and death.text == "Art. 73(4): death of a person, 10 days"
    assert widespread is not None and widespread.text.startswith("Art. 73(3)")
    assert general is not None and general.text == "Art. 73(2): serious incident, 15 days"
    assert clock(T0, [], ART73) is None


def test_a_floor_never_lowers_a_reported_severity() -> None:
    assert triage(reported(IncidentCategory.bias, Severity.critical), POLICY).severity is Severity.critical
    assert triage(reported(IncidentCategory.bias, Severity.high), POLICY).severity is Severity.high


def test_serious_from_is_the_policys() -> None:
    lower = with_incidents(NO_FLOOR, serious_from=Severity.medium)
    medium = triage(reported(IncidentCategory.fundamental_rights, Severity.medium), lower)
    assert medium.criteria == (C.fundamental_rights_infringement,)
    higher = with_incidents(NO_FLOOR, serious_from=Severity.critical)
    assert not triage(reported(IncidentCategory.health_and_safety, Severity.high), higher).serious
    assert triage(reported(IncidentCategory.death, Severity.low), higher).criteria == (C.death,)


def test_when_death_and_widespread_share_a_deadline_death_is_named() -> None:
    same = Art73Clock(general_days=15, death_days=2, widespread_days=2)
    result = clock(T0, [C.widespread_infringement, C.death], same)
    assert result is not None and (result.days, result.basis) == (2, "death")


def test_an_unknown_system_is_one_finding_against_a_4_2_and_a_6_2_6() -> None:
    finding = inventory_finding("shadow-scorer", INC, T0)
    assert finding.id == "inventory:shadow-scorer" == inventory_finding("shadow-scorer", "other", T0).id
    assert (finding.source, finding.source_ref, finding.status) == ("inventory", INC, "open")
    assert finding.controls == list(INVENTORY_CONTROLS) == ["A.4.2", "A.6.2.6"]
    assert "'shadow-scorer'" in finding.description and INC in finding.description
