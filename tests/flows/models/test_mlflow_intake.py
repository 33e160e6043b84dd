"""A new MLflow version → the model-version-registered payload, or an unmapped candidate with reasons."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from flows.approvals.rules import submitters
from flows.models.mlflow_intake import Onboarding, Unmapped, intake
from schemas.mlflow import LoggedDataset, MlflowIntake, ModelVersionCreated, VersionFacts
from schemas.payloads import DatasetRef
from schemas.people import Person
from schemas.policy import Policy
from tests.resources import example_policy

POLICY = MlflowIntake.model_validate(
    {
        "models": {
            "credit-scoring": {
                "ai_system": "credit-scoring",
                "owner": "ml-platform",
                "intended_use": "Pre-screen consumer loan applications",
            }
        },
        "dataset_locations": [
            {"prefix": "s3://lake/", "source": "lake"},
            {"prefix": "s3://lake/loans/", "source": "loans"},
        ],
    }
)
RUN = "0123456789abcdef0123456789abcdef"


def created(**changes: Any) -> ModelVersionCreated:
    fields = {
        "name": "credit-scoring",
        "version": "3",
        "source": f"mlflow-artifacts:/1/{RUN}/artifacts/model",
        "run_id": RUN,
        "tags": {},
        "description": None,
    }
    return ModelVersionCreated.model_validate(fields | changes)


def test_a_mapped_model_becomes_its_payload_with_the_mlflow_user_as_owner() -> None:
    facts = VersionFacts(
        user_id="li.wei@northwind.example",
        datasets=[
            LoggedDataset(
                name="loans", digest="a1b2c3", source_uri="s3://lake/loans/2026.csv", context="training"
            ),
            LoggedDataset(name="holdout", digest="ffff", source_uri="s3://lake/holdout.csv", context="eval"),
        ],
    )
    got = intake(created(), facts, POLICY)
    assert isinstance(got, Onboarding), got
    assert got.payload.ai_system == "credit-scoring"
    assert got.payload.owner == "li.wei@northwind.example"
    assert got.payload.run_id == RUN
    assert got.payload.source_uri == f"mlflow-artifacts:/1/{RUN}/artifacts/model"
    assert got.payload.intended_use == "Pre-screen consumer loan applications"
    assert got.payload.training_datasets == [DatasetRef(dataset_id="loans", version="a1b2c3")]
    assert got.notes == ()


def test_without_an_mlflow_user_the_policy_owner_answers_for_it() -> None:
    got = intake(created(), VersionFacts(user_id=""), POLICY)
    assert isinstance(got, Onboarding) and got.payload.owner == "ml-platform", got


def test_the_policy_mapping_wins_over_a_tag_and_the_disagreement_is_noted() -> None:
    got = intake(created(tags={"aims.ai_system": "chatbot"}), VersionFacts(), POLICY)
    assert isinstance(got, Onboarding) and got.payload.ai_system == "credit-scoring", got
    assert any("'chatbot'" in note for note in got.notes)


def test_an_unmapped_model_named_by_a_tag_onboards_with_its_description_as_use() -> None:
    facts = VersionFacts(user_id="dev@northwind.example", model_tags={"aims.ai_system": "fraud-screen"})
    got = intake(created(name="fraud-gbm", description="Flag card fraud"), facts, POLICY)
    assert isinstance(got, Onboarding), got
    assert (got.payload.ai_system, got.payload.intended_use) == ("fraud-screen", "Flag card fraud")


def test_a_model_nobody_maps_is_an_unmapped_candidate_with_every_reason() -> None:
    got = intake(created(name="side-project", run_id=None), VersionFacts(), POLICY)
    assert isinstance(got, Unmapped), got
    assert (got.name, got.version, got.ai_system) == ("side-project", "3", None)
    assert [r.split(":")[0] for r in got.reasons] == ["no AI system", "no owner", "no intended use", "no run"]


def test_a_training_dataset_outside_every_data_source_is_kept_and_noted() -> None:
    facts = VersionFacts(
        datasets=[LoggedDataset(name="scraped", digest="09", source_uri="https://x.example/a")]
    )
    got = intake(created(), facts, POLICY)
    assert isinstance(got, Onboarding), got
    assert got.payload.training_datasets == [DatasetRef(dataset_id="scraped", version="09")]
    assert got.notes == ("training dataset 'scraped' was read from 'https://x.example/a', in no data source",)


def test_the_longest_prefix_names_the_source() -> None:
    assert POLICY.source_of("s3://lake/loans/x.csv") == "loans"
    assert POLICY.source_of("s3://lake/other.csv") == "lake"
    assert POLICY.source_of("s3://elsewhere/x.csv") is None


def test_a_source_uri_our_contract_refuses_makes_an_unmapped_candidate() -> None:
    got = intake(created(source="s3://bucket/" + "x" * 300), VersionFacts(), POLICY)
    assert isinstance(got, Unmapped) and got.reasons[0].startswith("source_uri:"), got


@given(
    name=st.from_regex(r"\A[a-z][a-z0-9-]{0,30}\Z"),
    tag=st.none() | st.from_regex(r"\A[a-z][a-z0-9-]{0,30}\Z"),
    user=st.none() | st.just("") | st.emails(),
    run=st.none() | st.just(RUN),
    description=st.none() | st.text(st.characters(exclude_characters="\x00"), max_size=40),
)
def test_intake_always_answers_and_never_loses_the_version(
    name: str, tag: str | None, user: str | None, run: str | None, description: str | None
) -> None:
    version = created(
        name=name, run_id=run, description=description, tags={"aims.ai_system": tag} if tag else {}
    )
    got = intake(version, VersionFacts(user_id=user), POLICY)
    if isinstance(got, Onboarding):
        assert (got.payload.name, got.payload.version) == (name, "3")
        assert got.payload.ai_system == ("credit-scoring" if name == "credit-scoring" else tag)
    else:
        assert (got.name, got.version) == (name, "3") and got.reasons


PEOPLE = {
    "li.wei@northwind.example": Person(mlflow="lwei"),
    "tom.becker@northwind.example": Person(mlflow="tom.becker@northwind.example"),
}


def test_the_mlflow_user_who_registered_it_is_the_person_the_policy_pins_that_user_to() -> None:
    # MLflow's auth app names users by its own user names; separation of duties compares people.
    got = intake(created(), VersionFacts(user_id="lwei"), POLICY, PEOPLE)
    assert isinstance(got, Onboarding), got
    assert got.payload.owner == "li.wei@northwind.example"
    assert not got.notes, got.notes


def test_an_mlflow_user_the_policy_does_not_know_stays_the_owner_and_is_noted() -> None:
    got = intake(created(), VersionFacts(user_id="night-batch"), POLICY, PEOPLE)
    assert isinstance(got, Onboarding), got
    assert got.payload.owner == "night-batch"
    assert any("night-batch" in n and "no person of the policy" in n for n in got.notes), got.notes


def test_a_person_pinned_to_an_mlflow_user_may_not_approve_what_they_registered() -> None:
    data = example_policy().model_dump(mode="json")
    data["people"]["li.wei@northwind.example"]["mlflow"] = "lwei"
    policy = Policy.model_validate(data)
    got = intake(created(), VersionFacts(user_id="lwei"), policy.mlflow, policy.people)
    assert isinstance(got, Onboarding), got
    who = submitters(policy, got.payload.owner)
    assert "li.wei@northwind.example" in who.people and who.extra == 0, who


def test_one_mlflow_user_is_one_person() -> None:
    data = example_policy().model_dump(mode="json")
    data["people"]["li.wei@northwind.example"]["mlflow"] = "lwei"
    data["people"]["tom.becker@northwind.example"]["mlflow"] = "lwei"
    with pytest.raises(ValidationError, match="'lwei' is another person's already"):
        Policy.model_validate(data)
