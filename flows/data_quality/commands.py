"""Accepting a drafted baseline suite as the reviewed one: an `AcceptBaseline` command on the one path.

`aims dq accept-baseline DATASET --by EMAIL` sends it through `flows.commands.handle`. The person is
proven as `aims approvals` proves an approver: the OS login must be one the policy lists under
`people: EMAIL: logins` (the unsafe demo setting `decisions.cli_any_login` accepts any login, marked
unauthenticated). When the dataset has an owner, only the owner (or a member of the owning team)
accepts. Every attempt is a `suite_review` row, accepted or refused with the reason; an accepted one
records who, when, the proof, the drafted version and the SHA-256 of the file accepted, and then
rewrites the file as the reviewed suite (`status: reviewed`, a new version) in the same unit of work,
so a file that cannot be written leaves no record of an acceptance.

Pure: no Prefect, no Kafka. The register and the policy are handed in (`Context`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flows.commands import Actor, Command, Context, Verdict, attempt_key, handles
from flows.data_quality.suite_review import ACCEPTANCE, acceptance_id, owner_of, review_round, reviewed_suite
from schemas.people import by_name, same_person
from schemas.records import SuiteReview

if TYPE_CHECKING:
    from schemas.policy import Policy


@dataclass(frozen=True, kw_only=True)
class AcceptBaseline(Command):
    """A person accepts the drafted suite of a dataset, as it stands in `suite_path`, as reviewed."""

    dataset: str
    suite_path: str

    def describe(self) -> str:
        return f"acceptance of the drafted suite of {self.dataset}"


def authenticate(policy: Policy, actor: Actor) -> bool | str:
    """True when the OS login proves the person, False when the unsafe demo setting lets it pass
    unproven, else why not (the rule of `aims approvals`)."""
    who, login = actor.name, actor.credential
    if login is None or not login.strip():
        return f"the {actor.channel.value} channel proved no identity for {who}"
    person = by_name(policy.people, who)
    if person is not None and login in person.logins:
        return True
    if policy.decisions.cli_any_login:
        return False
    return (
        f"OS login {login!r} may not act as {who}: the policy lists no such login under people: {who}: logins"
    )


def may_accept(policy: Policy, owner: str | None, who: str) -> str | None:
    """Why `who` may not accept the dataset's suite, or None: the owner, or a member of the owning team."""
    if owner is None or same_person(owner, who):
        return None
    team = policy.teams.get(owner)
    if team is not None and any(same_person(member, who) for member in team.members):
        return None
    return f"{who} is not the owner of the dataset ({owner}, as the policy's data source names it)"


@handles(AcceptBaseline)
def accept_baseline(command: AcceptBaseline, ctx: Context) -> Verdict:
    from schemas.suites import SuiteError, SuiteStatus, dump_suite, load_suite

    path = Path(command.suite_path)
    name = command.dataset
    with ctx.register.unit_of_work(command.actor.label) as uow:
        dataset = uow.datasets.get(name)
        if dataset is None:
            return Verdict.refusal(f"no dataset {name!r} in the register; `aims datasets` lists them")
        try:
            content = path.read_bytes()
            drafted = load_suite(path)
        except FileNotFoundError:
            return Verdict.refusal(f"{name} has no suite file at {path}: nothing to accept")
        except (SuiteError, OSError) as exc:
            return Verdict.refusal(f"the suite of {name} cannot be read; fix it first: {exc}")
        if drafted.dataset != name:
            return Verdict.refusal(f"{path} is the suite of {drafted.dataset!r}, not of {name!r}")
        if drafted.status is SuiteStatus.reviewed:
            return Verdict(
                "duplicate", f"the suite of {name} is reviewed already (version {drafted.version})"
            )
        reviews = uow.suite_reviews.find(dataset=name)
        owner = owner_of(dataset.owner, uow.dataset_versions.find(dataset=name), ctx.policy.data_sources)
        proof = authenticate(ctx.policy, command.actor)
        why = proof if isinstance(proof, str) else may_accept(ctx.policy, owner, command.actor.name)
        attempt = SuiteReview(
            id=acceptance_id(name, review_round(reviews)),
            dataset=name,
            kind=ACCEPTANCE,
            suite_version=drafted.version,
            suite_sha256=hashlib.sha256(content).hexdigest(),
            by=command.actor.name,
            channel=command.actor.channel.value,
            credential=command.actor.credential,
            at=command.at,
        )
        if why is not None:
            refused = attempt.model_copy(
                update={
                    "id": command.refusal_id()
                    or attempt_key(name, command.actor.name, command.actor.channel, str(command.at)),
                    "accepted": False,
                    "refusal": why,
                }
            )
            fresh = uow.suite_reviews.add_if_absent(refused)
            return Verdict.refusal(why, logged=True, fresh=fresh, record=refused)
        reviewed = reviewed_suite(drafted)
        accepted = attempt.model_copy(
            update={
                "reviewed_version": reviewed.version,
                "authenticated": proof is True,
                "note": f"drafted suite {drafted.version} accepted as reviewed suite {reviewed.version}",
            }
        )
        uow.suite_reviews.add(accepted)
        # Last, inside the unit of work: a file that cannot be written rolls the record back.
        dump_suite(reviewed, path)
    return Verdict(
        "accepted",
        f"drafted suite {drafted.version} accepted as reviewed suite {reviewed.version}",
        record=accepted,
        state="reviewed",
    )
