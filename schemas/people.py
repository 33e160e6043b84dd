"""People of the policy and how each channel proves one of them (DESIGN.md, trust boundaries).

A human decision counts only with an identity a channel authenticated: Slack signs the clicking
user's id, Jira signs the webhook's account id, the command line runs as an OS login. The policy
maps each of those to a person (`people`), so that no channel takes a name from what a person typed.
Teams (`teams`) name the people behind an owner such as a model's "ml-platform", so that separation
of duties reaches every one of them.

Pure models and lookups: no I/O. Names compare as one identity however they are spelled (case,
spaces around); channel ids compare exactly, as the channels issue them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool

from schemas.payloads import Name
from schemas.policy_base import PolicyModel, distinct

SlackUserId = Annotated[
    str, Field(pattern=r"^[UW][A-Z0-9]{2,30}$", description="A Slack user id, e.g. U024BE7LH.")
]
JiraAccountId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9:_-]{0,127}$", description="A Jira account id, e.g. 712020:a1b2…"),
]
# MLflow's user names (its auth app's, often e-mail addresses), as the registry records `user_id`.
MlflowUser = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_.@+-]{1,254}$", description="An MLflow user name, e.g. lwei.")
]
# POSIX login names; no wildcard: the unsafe "any login" is one loud setting (`decisions`), not a pattern.
Login = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}$", description="An OS login name.")]


def same_person(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def person_key(name: str) -> str:
    """The one spelling of a person's name the lookups compare (emails are case-blind)."""
    return name.strip().casefold()


class Person(PolicyModel):
    slack: SlackUserId | None = Field(
        None, description="Their Slack user id: a click by it is theirs (without it, Slack's e-mail lookup)."
    )
    jira: JiraAccountId | None = Field(
        None, description="Their Jira account id: only a webhook signed for it decides for them in Jira."
    )
    mlflow: MlflowUser | None = Field(
        None,
        description="Their MLflow user name: a model version MLflow says they registered is theirs, so they "
        "do not approve it (without it, a version registered by an e-mail address is that person's).",
    )
    logins: Annotated[tuple[Login, ...], AfterValidator(distinct)] = Field(
        (), description="OS logins that may decide as them with `aims approvals approve|reject --by`."
    )


class Team(PolicyModel):
    members: Annotated[tuple[Name, ...], AfterValidator(distinct)] = Field(
        min_length=1, description="The people of the team: none of them approves what the team submits."
    )


class PrefectUi(StrEnum):
    """What a decision typed into the Prefect UI's resume form counts for: the form proves nobody."""

    refuse = "refuse"
    low_risk = "low-risk"


class Decisions(PolicyModel):
    prefect_ui: PrefectUi = Field(
        PrefectUi.refuse,
        description="refuse (default): decisions typed into the Prefect UI's resume form are recorded as "
        "refused; low-risk: accepted for low-risk approvals only, marked unauthenticated.",
    )
    cli_any_login: StrictBool = Field(
        False,
        description="UNSAFE, for a local demo only: `aims approvals` decides as any --by whatever OS login "
        "runs it; such decisions are marked unauthenticated. Never set it in a policy that guards anything.",
    )


def by_name(people: Mapping[str, Person], name: str) -> Person | None:
    key = person_key(name)
    return next((p for n, p in people.items() if person_key(n) == key), None)


def by_slack(people: Mapping[str, Person], user_id: str) -> str | None:
    """The person the policy pins this Slack user id to, if any."""
    return next((n for n, p in people.items() if p.slack is not None and p.slack == user_id.strip()), None)


def by_jira(people: Mapping[str, Person], account_id: str) -> str | None:
    """The person the policy pins this Jira account id to, if any."""
    return next((n for n, p in people.items() if p.jira is not None and p.jira == account_id.strip()), None)


def by_mlflow(people: Mapping[str, Person], user: str) -> str | None:
    """The person the policy pins this MLflow user name to, if any."""
    return next((n for n, p in people.items() if p.mlflow is not None and p.mlflow == user.strip()), None)


def by_login(people: Mapping[str, Person], login: str) -> list[str]:
    """The people an OS login may decide as (several only where the policy says so, e.g. a test bench)."""
    return [n for n, p in people.items() if login in p.logins]


def duplicate_ids(people: Mapping[str, Person]) -> Iterable[tuple[str, str, str]]:
    """(person, field, value) for every Slack, Jira or MLflow id another person holds already: one id,
    one person."""
    seen: dict[tuple[str, str], str] = {}
    for name, person in people.items():
        for field, value in (("slack", person.slack), ("jira", person.jira), ("mlflow", person.mlflow)):
            if value is None:
                continue
            if (field, value) in seen:
                yield name, field, value
            seen.setdefault((field, value), name)
