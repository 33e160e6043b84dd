"""What every part of the policy shares: its model base, field types and how a check reports problems."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    pass

Loc = tuple[str | int, ...]

GroupName = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="Lowercase letters, digits, '-' and '_'.")
]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# A leading '#' is accepted and dropped (in YAML it must then be quoted: an unquoted '#' starts a comment).
SlackChannel = Annotated[
    str,
    BeforeValidator(lambda v: v.removeprefix("#") if isinstance(v, str) else v),
    Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,79}$", description="Slack channel name, without the '#'."),
]
JiraProject = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,9}$", description="Jira project key.")]
# The format of an Annex A control id; whether the id is one of the 38 is the catalogue's business.
ControlId = Annotated[str, Field(pattern=r"^A\.\d{1,2}\.\d{1,2}(\.\d{1,2})?$")]
Justification = Annotated[str, Field(min_length=1, max_length=10_000, pattern=r"\S")]


def fail(title: str, problems: list[tuple[Loc, str]]) -> None:
    """Raise every problem at its own location (pydantic prefixes the location of the field checked)."""
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError("policy", "{reason}", {"reason": msg}), loc=loc, input=None
                )
                for loc, msg in problems
            ],
        )


def problem(message: str) -> PydanticCustomError:
    """An error with `message` as it is, for a validator to raise at the field it checks."""
    return PydanticCustomError("policy", "{reason}", {"reason": message})


def distinct(items: tuple[Any, ...]) -> tuple[Any, ...]:
    fail(
        "distinct", [((i,), f"{item!r} is listed twice") for i, item in enumerate(items) if item in items[:i]]
    )
    return items


class PolicyModel(BaseModel):
    # Unknown keys are refused: a misspelt setting must not silently fall back to its default.
    model_config = ConfigDict(extra="forbid", frozen=True)
