"""MLflow's model-registry webhooks (MLflow 3.x) as typed models, and the policy's `mlflow` section.

A delivery is a JSON body `{entity, action, timestamp, data}` (and `workspace` when MLflow runs with
workspaces); what `data` holds depends on the entity and action (`PAYLOADS`). Everything here is
untrusted input that the gateway has authenticated (gateway/signatures.py) but not yet believed:

- MLflow adds fields between releases, so unknown fields are ignored, not refused (unlike our own
  event payloads, whose producers we control);
- every string is capped at MLflow's own limits and the names we record are `Name`s (one line, no
  control characters), so a hostile name is refused with its reason rather than reaching a
  terminal, Slack or Jira;
- an (entity, action) pair outside `PAYLOADS` is refused by name: prompts and budget policies are
  MLflow entities too (`IGNORED_ENTITIES`), but they are no model versions of an AI system.

The policy's `mlflow` section (`MlflowIntake`) says what a registered model is in AIMS terms: which
AI system (a mapping of registered-model names, else a tag), who answers for it when MLflow cannot
say who registered it, which aliases mean "going live", and which dataset locations are which of
the policy's data sources. Pure models: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.data_sources import SourceId
from schemas.fields import Name, Text
from schemas.policy_base import PolicyModel, fail

# MLflow's own limits (mlflow/utils/validation.py, 3.17): anything longer did not come from MLflow.
MAX_TAG_KEY: Final = 250
MAX_TAG_VALUE: Final = 100_000
MAX_TAGS: Final = 1_000
MAX_ALIAS: Final = 255
MAX_SOURCE: Final = 65_535

# The registry's version numbers are decimal integers as text.
VersionNumber = Annotated[str, Field(pattern=r"^[0-9]{1,18}$", description="A model version number.")]
RunId = Annotated[str, Field(pattern=r"^[0-9a-zA-Z_-]{1,64}$", description="An MLflow run id.")]
Alias = Annotated[Name, Field(max_length=MAX_ALIAS)]


def _no_nul(value: str) -> str:
    # MLflow's own store accepts NUL in a tag; PostgreSQL's text and JSONB cannot hold it, so a
    # delivery carrying one would fail the register's write instead of being refused with a reason.
    if "\x00" in value:
        raise ValueError(f"must not contain NUL (\\x00), got one at character {value.index(chr(0)) + 1}")
    return value


# Text from MLflow that the register keeps as it is: anything but NUL.
MlflowText = Annotated[str, AfterValidator(_no_nul)]
TagKey = Annotated[MlflowText, Field(min_length=1, max_length=MAX_TAG_KEY)]
TagValue = Annotated[MlflowText, Field(max_length=MAX_TAG_VALUE)]
Tags = Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)]


class MlflowEntity(StrEnum):
    registered_model = "registered_model"
    model_version = "model_version"
    model_version_tag = "model_version_tag"
    model_version_alias = "model_version_alias"


class MlflowAction(StrEnum):
    created = "created"
    updated = "updated"
    deleted = "deleted"
    set = "set"


# MLflow entities that are not model versions: a webhook subscribed to them is answered and ignored.
IGNORED_ENTITIES: Final = frozenset(
    {"prompt", "prompt_version", "prompt_tag", "prompt_version_tag", "prompt_alias", "budget_policy"}
)


class _Data(BaseModel):
    # MLflow adds fields between releases (workspaces did); what we do not read is ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


class RegisteredModelCreated(_Data):
    name: Name
    tags: Tags = Field(default_factory=dict)
    description: TagValue | None = None


class ModelVersionCreated(_Data):
    name: Name = Field(description="The registered model's name.")
    version: VersionNumber
    source: MlflowText = Field(min_length=1, max_length=MAX_SOURCE, description="Where its artifacts are.")
    # None for a version registered from a path rather than from a run.
    run_id: RunId | None = None
    tags: Tags = Field(default_factory=dict)
    description: TagValue | None = None


class ModelVersionTagSet(_Data):
    name: Name
    version: VersionNumber
    key: TagKey
    value: TagValue


class ModelVersionTagDeleted(_Data):
    name: Name
    version: VersionNumber
    key: TagKey


class ModelVersionAliasCreated(_Data):
    name: Name
    alias: Alias
    version: VersionNumber


class ModelVersionAliasDeleted(_Data):
    # MLflow 3.17 does not say which version the alias left.
    name: Name
    alias: Alias


MlflowData = (
    RegisteredModelCreated
    | ModelVersionCreated
    | ModelVersionTagSet
    | ModelVersionTagDeleted
    | ModelVersionAliasCreated
    | ModelVersionAliasDeleted
)

# The (entity, action) pairs MLflow 3.17 sends for model versions (its VALID_ENTITY_ACTIONS) → the
# shape of their `data`. `updated` and an alias `set` are in MLflow's action list but sent for none
# of these entities; a delivery claiming them is refused.
PAYLOADS: Final[Mapping[tuple[MlflowEntity, MlflowAction], type[MlflowData]]] = {
    (MlflowEntity.registered_model, MlflowAction.created): RegisteredModelCreated,
    (MlflowEntity.model_version, MlflowAction.created): ModelVersionCreated,
    (MlflowEntity.model_version_tag, MlflowAction.set): ModelVersionTagSet,
    (MlflowEntity.model_version_tag, MlflowAction.deleted): ModelVersionTagDeleted,
    (MlflowEntity.model_version_alias, MlflowAction.created): ModelVersionAliasCreated,
    (MlflowEntity.model_version_alias, MlflowAction.deleted): ModelVersionAliasDeleted,
}


class Envelope(BaseModel):
    """The body of every delivery; `data` is read by `PAYLOADS[entity, action]` once both are known."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    entity: str = Field(max_length=64)
    action: str = Field(max_length=64)
    timestamp: AwareDatetime = Field(description="When MLflow built the delivery (ISO 8601, UTC).")
    data: dict[str, Any]
    workspace: Name | None = None


class Delivery(BaseModel):
    """An authenticated, parsed delivery: who sent it (its id), what happened and its data."""

    model_config = ConfigDict(frozen=True)

    delivery_id: Name = Field(description="X-MLflow-Delivery-Id: the same on MLflow's retries.")
    entity: MlflowEntity
    action: MlflowAction
    timestamp: AwareDatetime
    workspace: Name | None = None
    data: MlflowData


# -- what MLflow's REST API adds to a model_version.created delivery ---------------------------------


class LoggedDataset(_Data):
    """A dataset input of the version's run (runs/get: run.inputs.dataset_inputs)."""

    name: Name
    digest: Name | None = Field(None, max_length=36, description="MLflow's content digest: its version.")
    source_type: Name | None = None
    source_uri: MlflowText | None = Field(None, max_length=MAX_SOURCE, description="Where it was read from.")
    context: Name | None = Field(None, description="The input's mlflow.data.context tag: training, eval…")


class VersionFacts(_Data):
    """What the registry knows of a version beyond its webhook: read from MLflow, so still untrusted."""

    user_id: MlflowText | None = Field(
        None, max_length=256, description="Who registered it; empty when MLflow runs without authentication."
    )
    model_tags: Tags = Field(default_factory=dict, description="The registered model's tags.")
    model_description: TagValue | None = None
    datasets: Annotated[list[LoggedDataset], Field(max_length=1000)] = Field(default_factory=list)


# -- the policy's `mlflow` section ------------------------------------------------------------------


class RegisteredModel(PolicyModel):
    """What a registered model of MLflow is in AIMS terms."""

    ai_system: Name = Field(description="The AI system (inventory name) its versions belong to.")
    owner: Name = Field(
        description="Who answers for its versions when MLflow cannot say who registered one (MLflow "
        "without authentication records no user): a person or a team of `teams`, kept out of approving."
    )
    intended_use: Text = Field(description="What the model is meant for (A.9.4), for the inventory entry.")


class DatasetLocation(PolicyModel):
    """MLflow datasets logged from under `prefix` are data of the policy's data source `source`."""

    prefix: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^\S+$")] = Field(
        description="The start of the dataset's source URI as MLflow logs it, e.g. 's3://lake/loans/'."
    )
    source: SourceId = Field(description="A data source of `data_sources`.")


class MlflowWriteBack(PolicyModel):
    """What AIMS writes back on the MLflow model versions it governs (issue 21: written back)."""

    tags: bool = Field(
        True,
        description="Set the aims.* tags (assessment, highest residual risk, approval status, links) on "
        "each version that came from MLflow, after each assessment and approval decision.",
    )
    approved_alias: Alias | None = Field(
        None,
        description="An alias of `deployment_aliases` that AIMS moves to the newest cleared version (its "
        "latest assessment's approval granted or not needed, nothing pending for the system) and takes "
        "away while the system is blocked. None: AIMS never touches aliases.",
    )


class MlflowIntake(PolicyModel):
    """How model-registry webhooks from MLflow become events, and what is written back (issue 21)."""

    system_tag: TagKey = Field(
        "aims.ai_system",
        description="The version or registered-model tag naming the AI system of a model `models` "
        "does not map. A model that neither maps is recorded as an unmapped candidate, never dropped.",
    )
    models: Mapping[Name, RegisteredModel] = Field(
        default_factory=dict,
        description="Registered-model name → what it is; wins over the tag (the policy is reviewed, "
        "a tag is set by whoever may edit the model).",
    )
    deployment_aliases: Annotated[tuple[Alias, ...], Field(max_length=50)] = Field(
        ("production", "champion"),
        description="Aliases that mean 'going live': set on a version without a granted approval, an "
        "incident-grade finding.",
    )
    dataset_locations: Annotated[tuple[DatasetLocation, ...], Field(max_length=200)] = Field(
        (), description="Where logged training datasets live, per data source (longest prefix wins)."
    )

    write_back: MlflowWriteBack = Field(
        default_factory=MlflowWriteBack,
        description="Tags and the approved alias AIMS sets on MLflow's versions (needs "
        "AIMS_MLFLOW_TRACKING_URI).",
    )

    @model_validator(mode="after")
    def _approved_alias_is_watched(self) -> MlflowIntake:
        # The alias AIMS moves must be one the gateway watches: set by hand before approval, it is then
        # reported as a deployment without approval; any other alias would gate nothing.
        alias = self.write_back.approved_alias
        if alias is not None and not self.is_deployment(alias):
            listed = ", ".join(self.deployment_aliases) or "none"
            fail(
                "mlflow",
                [
                    (
                        ("write_back", "approved_alias"),
                        f"{alias!r} is not one of deployment_aliases ({listed}): setting it by hand "
                        "would go unnoticed",
                    )
                ],
            )
        return self

    def mapping(self, model: str) -> RegisteredModel | None:
        return self.models.get(model)

    def source_of(self, uri: str) -> str | None:
        """The data source a dataset at `uri` belongs to: the longest matching prefix's, else None."""
        found = [loc for loc in self.dataset_locations if uri.startswith(loc.prefix)]
        return max(found, key=lambda loc: len(loc.prefix)).source if found else None

    def is_deployment(self, alias: str) -> bool:
        return alias.casefold() in {a.casefold() for a in self.deployment_aliases}
