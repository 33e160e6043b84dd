"""The policy's evidence freshness: how old each control's newest evidence may be, and who supplies it.

Evidence that was true once is not evidence that a control operates now: an auditor looks at the
last quarter, not the first week. Each Annex A control gets a maximum age (`default` for the rest);
past it the control is stale and `collect-evidence` collects again what the AIMS can collect and asks
the control's owner for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

from pydantic import Field, StrictInt, model_validator

from schemas.policy_base import ControlId, Email, Loc, PolicyModel, fail

DEFAULT: Literal["default"] = "default"
# A year: the surveillance audit cycle of ISO/IEC 42001 certification.
DEFAULT_MAX_AGE_DAYS = 365
MaxAge = StrictInt


def _default_ages() -> Mapping[str, int]:
    return {DEFAULT: DEFAULT_MAX_AGE_DAYS}


class EvidenceFreshness(PolicyModel):
    max_age_days: Mapping[ControlId | Literal["default"], MaxAge] = Field(
        default_factory=_default_ages,
        description="Days a control's newest evidence stays fresh, per Annex A control id; `default` for "
        "every other control (365 if left out).",
    )
    owners: Mapping[ControlId | Literal["default"], Email] = Field(
        default_factory=dict,
        description="Who is asked in Slack for evidence a person must supply, per control id; `default` "
        "for every other control. Without an owner the request is kept in the register only.",
    )

    @model_validator(mode="after")
    def _known_controls_and_sane_ages(self) -> EvidenceFreshness:
        from schemas.catalogue import load_catalogue

        known = {c.id for c in load_catalogue().controls}
        problems: list[tuple[Loc, str]] = []
        for field, mapping in (("max_age_days", self.max_age_days), ("owners", self.owners)):
            for key in mapping:
                if key != DEFAULT and key not in known:
                    problems.append(((field, key), f"{key} is not an Annex A control of ISO/IEC 42001"))
        for key, days in self.max_age_days.items():
            if not 1 <= days <= 3650:
                problems.append((("max_age_days", key), f"{days} days: give 1 to 3650"))
        fail("EvidenceFreshness", problems)
        return self

    def max_age(self, control: str) -> timedelta:
        days = self.max_age_days.get(control, self.max_age_days.get(DEFAULT, DEFAULT_MAX_AGE_DAYS))
        return timedelta(days=days)

    def owner(self, control: str) -> str | None:
        return self.owners.get(control, self.owners.get(DEFAULT))
