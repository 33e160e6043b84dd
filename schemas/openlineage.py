"""OpenLineage run events (spec 2-0-x) as typed models, and the policy's `openlineage` section.

A pipeline's OpenLineage client (its HTTP transport) posts every event of a run to
`/api/v1/lineage`: `{eventType, eventTime, producer, schemaURL, run: {runId, facets}, job: {namespace,
name}, inputs: [...], outputs: [...]}`. Everything here is untrusted input that the gateway has
authenticated (its bearer key) but not yet believed:

- producers add facets and fields at will, so unknown fields and facets are ignored, not refused;
  only the facets read here (data quality, statistics, version, lifecycle, error message) are
  validated, and a malformed one refuses the event with its reason;
- names are one line without control characters and capped, so a hostile dataset or job name is
  refused rather than reaching a terminal, Slack or Jira; lists are capped.

Data-quality facets: the spec defines `dataQualityAssertions` and `dataQualityMetrics` as *input*
dataset facets (`inputFacets`), for a job that validated what it read. Producers put them elsewhere
too (a dataset facet in `facets`, an `outputFacets` entry of the dataset a job wrote), so each
dataset's facets are read from all three places, `inputFacets` first.

The policy's `openlineage` section maps datasets (a namespace and a name prefix) to the policy's data
sources, in the shape of `mlflow.dataset_locations` (longest prefix wins) plus the namespace and
where in the source the prefix points (`under`): that and the rest of the name are the path (file
source) or table (SQL source) in it. Pure models: no I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, FiniteFloat, field_validator

from schemas.controls import first_control, shown
from schemas.fields import NAME_PATTERN, Name
from schemas.mlflow import DatasetLocation
from schemas.policy_base import PolicyModel

MAX_NAME: Final = 2048  # dataset names are paths and qualified table names: longer than our `Name`s
MAX_DATASETS: Final = 500
MAX_ASSERTIONS: Final = 2000
MAX_COLUMNS: Final = 2000
# The register's audit log hashes RFC 8785 JSON, which holds integers up to 2**53 - 1 and no NaN or
# infinity: counts beyond it are refused here, not at the commit.
MAX_COUNT: Final = 2**53 - 1


def _one_line(value: str) -> str:
    found = first_control(value)
    if found is not None:
        raise ValueError(f"must not contain control characters, got {shown(found[1])} at {found[0] + 1}")
    return value


# A namespace, job or dataset name: one line without control characters, capped.
LineageName = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN), AfterValidator(_one_line)
]
# What a producer wrote about an assertion or a failure: shown in records, so one line, capped.
Said = Annotated[str, Field(max_length=1000), AfterValidator(_one_line)]


class EventType(StrEnum):
    """A run's transition (the spec's RunEvent.eventType)."""

    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ABORT = "ABORT"
    FAIL = "FAIL"
    OTHER = "OTHER"


class _Read(BaseModel):
    # Producers add fields and facets between releases; what we do not read is ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- the facets read -------------------------------------------------------------------------------


class Assertion(_Read):
    assertion: Said = Field(description="The test, e.g. not_null.")
    success: bool
    column: Said | None = None
    severity: Said | None = None


class DataQualityAssertions(_Read):
    """`dataQualityAssertions`: the tests a producer ran on the dataset and whether each passed."""

    assertions: Annotated[list[Assertion], Field(max_length=MAX_ASSERTIONS)]


class ColumnMetrics(_Read):
    nullCount: int | None = Field(None, ge=0, le=MAX_COUNT)  # the spec's field names
    distinctCount: int | None = Field(None, ge=0, le=MAX_COUNT)
    count: FiniteFloat | None = None
    min: FiniteFloat | None = None
    max: FiniteFloat | None = None


class DataQualityMetrics(_Read):
    """`dataQualityMetrics`: the producer's own measures of the dataset."""

    rowCount: int | None = Field(None, ge=0, le=MAX_COUNT)
    bytes: int | None = Field(None, ge=0, le=MAX_COUNT)
    columnMetrics: Annotated[dict[Said, ColumnMetrics], Field(max_length=MAX_COLUMNS)] = Field(
        default_factory=dict
    )


class OutputStatistics(_Read):
    """`outputStatistics`: what a job wrote to an output dataset."""

    rowCount: int | None = Field(None, ge=0, le=MAX_COUNT)
    size: int | None = Field(None, ge=0, le=MAX_COUNT)


class DatasetVersion(_Read):
    """`version`: the dataset's own version (a Delta or Iceberg snapshot, a file's generation)."""

    datasetVersion: Name


class LifecycleStateChange(_Read):
    """`lifecycleStateChange`: what the job did to the dataset."""

    lifecycleStateChange: Annotated[str, Field(max_length=32)]


class ErrorMessage(_Read):
    """`errorMessage`, a run facet: why a run failed."""

    message: Said = ""


# Facet name → its model, for the facets this intake reads.
DATASET_FACETS: Final[dict[str, type[_Read]]] = {
    "dataQualityAssertions": DataQualityAssertions,
    "dataQualityMetrics": DataQualityMetrics,
    "outputStatistics": OutputStatistics,
    "version": DatasetVersion,
    "lifecycleStateChange": LifecycleStateChange,
}


class Facets(_Read):
    """A dataset's facets that this intake reads, wherever the producer put them."""

    dataQualityAssertions: DataQualityAssertions | None = None
    dataQualityMetrics: DataQualityMetrics | None = None
    outputStatistics: OutputStatistics | None = None
    version: DatasetVersion | None = None
    lifecycleStateChange: LifecycleStateChange | None = None


class Dataset(_Read):
    namespace: LineageName
    name: LineageName
    facets: dict[str, Any] = Field(default_factory=dict)
    inputFacets: dict[str, Any] = Field(default_factory=dict)
    outputFacets: dict[str, Any] = Field(default_factory=dict)

    def read_facets(self) -> Facets:
        """The facets read, from `inputFacets`, then `outputFacets`, then `facets` (the first wins);
        ValueError naming a known facet that is malformed."""
        found: dict[str, Any] = {}
        for place in ("inputFacets", "outputFacets", "facets"):
            for name, value in getattr(self, place).items():
                if name in DATASET_FACETS and name not in found:
                    found[name] = value
        return Facets.model_validate(found)


class Run(_Read):
    runId: UUID
    facets: dict[str, Any] = Field(default_factory=dict)

    @field_validator("facets")
    @classmethod
    def _error_message_readable(cls, facets: dict[str, Any]) -> dict[str, Any]:
        if "errorMessage" in facets:
            ErrorMessage.model_validate(facets["errorMessage"])
        return facets

    def error(self) -> str | None:
        given = self.facets.get("errorMessage")
        if given is None:
            return None
        return ErrorMessage.model_validate(given).message or None


class Job(_Read):
    namespace: LineageName
    name: LineageName


class RunEvent(_Read):
    """A RunEvent. A missing eventType is the spec's "no transition" and is read as OTHER."""

    eventType: EventType = EventType.OTHER
    eventTime: AwareDatetime
    producer: Annotated[LineageName, Field(max_length=1024)]
    run: Run
    job: Job
    inputs: Annotated[list[Dataset], Field(max_length=MAX_DATASETS)] = Field(default_factory=list)
    outputs: Annotated[list[Dataset], Field(max_length=MAX_DATASETS)] = Field(default_factory=list)

    @field_validator("inputs", "outputs")
    @classmethod
    def _facets_readable(cls, datasets: list[Dataset]) -> list[Dataset]:
        for dataset in datasets:
            dataset.read_facets()  # a malformed facet this intake reads refuses the event, with where
        return datasets

    @property
    def run_id(self) -> str:
        return str(self.run.runId)


# -- the policy's `openlineage` section ------------------------------------------------------------


class LineageLocation(DatasetLocation):
    """OpenLineage datasets in `namespace` whose name starts with `prefix` are data of `source`: the
    path (file source) or table (SQL source) in it is `under` followed by the rest of the name."""

    namespace: LineageName = Field(
        description="The datasets' OpenLineage namespace as the producer names it: 'file', "
        "'s3://lake', 'postgres://db:5432'."
    )
    prefix: Annotated[str, Field(max_length=MAX_NAME, pattern=r"^\S*$")] = Field(
        description="The start of the dataset names, e.g. '/srv/lake/' or 'warehouse.' ('' for every "
        "name in the namespace, as the keys of one bucket); what follows it is the path or table "
        "inside the source."
    )
    under: Annotated[str, Field(max_length=MAX_NAME, pattern=r"^\S*$")] = Field(
        "",
        description="What `prefix` stands for inside the source: '' for its root (a files source's "
        "root, a database's tables), 'loans/' for a folder under the root, 'public.' for a schema. "
        "The path or table is this followed by the rest of the dataset's name.",
    )
    dataset: Name | None = Field(
        None,
        description="The register's dataset id of every dataset under the prefix (partitions of one "
        "dataset); unset: the path or table inside the source is its id.",
    )


class OpenLineageIntake(PolicyModel):
    """How OpenLineage run events become data-changed events (issue 21)."""

    dataset_locations: Annotated[tuple[LineageLocation, ...], Field(max_length=200)] = Field(
        (),
        description="Which output datasets are which data source's (longest matching prefix in the "
        "dataset's namespace wins); an output under none is recorded as unmapped, not checked.",
    )

    def location_of(self, namespace: str, name: str) -> LineageLocation | None:
        found = [
            loc
            for loc in self.dataset_locations
            if loc.namespace == namespace and name.startswith(loc.prefix)
        ]
        return max(found, key=lambda loc: len(loc.prefix)) if found else None
