"""The ISO/IEC 42001 catalogue: clauses 4–10, the 38 Annex A controls, and what in this tool evidences each.

The data lives in `schemas/iso42001.yaml` (package data beside this module); `load_catalogue` reads and
validates it once per process. Identifiers and paraphrased titles only: the standard's text is ISO's.

An *implementation* is something in this tool that leaves evidence for clauses and controls: a flow (by
its deployment name), the event router, or a register record type (by its entity name in the register).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from importlib import resources
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, model_validator

CATALOGUE_FILE = "iso42001.yaml"
ANNEX_A_CONTROL_COUNT = 38

CLAUSE_ID = r"^(?:[4-9]|10)(?:\.\d{1,2}){1,2}$"
OBJECTIVE_ID = r"^A\.\d{1,2}$"
CONTROL_ID = r"^A\.\d{1,2}\.\d{1,2}(?:\.\d{1,2})?$"

ClauseId = Annotated[
    StrictStr, Field(pattern=CLAUSE_ID, description="Clause id, e.g. 6.1.2 (quoted in YAML).")
]
ObjectiveId = Annotated[StrictStr, Field(pattern=OBJECTIVE_ID, description="Annex A objective, e.g. A.6.")]
ControlId = Annotated[StrictStr, Field(pattern=CONTROL_ID, description="Annex A control, e.g. A.6.2.8.")]
Title = Annotated[StrictStr, Field(min_length=1, max_length=120, description="Paraphrased title.")]


@dataclass(frozen=True)
class EvidenceStat:
    """How much evidence the register holds for one clause or control, and when the latest was recorded."""

    count: int
    last_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"an evidence count cannot be negative, got {self.count}")
        if self.last_at is not None and (self.last_at.tzinfo is None or self.last_at.utcoffset() is None):
            raise ValueError(
                f"the time of the latest evidence must be timezone-aware, got {self.last_at.isoformat()}"
            )


class CatalogueError(ValueError):
    """The catalogue file is missing, not YAML, or not a valid catalogue."""


def id_sort_key(id_: str) -> tuple[int, ...]:
    """Natural order of clause and control ids: 9.3 < 10.1, A.9.4 < A.10.2; controls after clauses."""
    annex = id_.startswith("A.")
    return (int(annex), *(int(part) for part in id_.removeprefix("A.").split(".")))


class Phase(StrEnum):
    """PDCA phase of a clause; clause 7 (support) enables every phase."""

    plan = "plan"
    do = "do"
    check = "check"
    act = "act"
    support = "support"


class ImplementationKind(StrEnum):
    flow = "flow"
    router = "router"
    record = "record"


class CatalogueModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Clause(CatalogueModel):
    id: ClauseId
    title: Title
    phase: Phase


class Objective(CatalogueModel):
    """An Annex A control objective (A.2 … A.10)."""

    id: ObjectiveId
    title: Title


class Control(CatalogueModel):
    id: ControlId
    title: Title
    objective: ObjectiveId = Field(description="The objective the control belongs to, e.g. A.6 for A.6.2.8.")

    @model_validator(mode="after")
    def _within_objective(self) -> Control:
        if not self.id.startswith(self.objective + "."):
            raise ValueError(f"control {self.id} does not belong to objective {self.objective}")
        return self


class Implementation(CatalogueModel):
    """A flow, the router or a register record type, and the clauses and controls it gives evidence for."""

    name: StrictStr = Field(
        pattern=r"^[a-z][a-z0-9_-]*$", description="Deployment name of a flow, or register entity name."
    )
    kind: ImplementationKind
    how: StrictStr = Field(min_length=1, max_length=300, description="One line: how it evidences them.")
    clauses: tuple[ClauseId, ...] = ()
    controls: tuple[ControlId, ...] = ()

    @model_validator(mode="after")
    def _something_and_no_repeats(self) -> Implementation:
        if not self.clauses and not self.controls:
            raise ValueError(f"implementation {self.name!r} names no clause and no control")
        for label, ids in (("clause", self.clauses), ("control", self.controls)):
            repeated = _repeated(ids)
            if repeated:
                raise ValueError(f"implementation {self.name!r} names {label} {', '.join(repeated)} twice")
        return self

    @property
    def ids(self) -> tuple[str, ...]:
        return (*self.clauses, *self.controls)


def _repeated(values: Iterable[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


class Catalogue(CatalogueModel):
    """The whole catalogue, checked for consistency; look-ups are by id or implementation name."""

    standard: StrictStr
    clauses: tuple[Clause, ...] = Field(min_length=1)
    objectives: tuple[Objective, ...] = Field(min_length=1)
    controls: tuple[Control, ...]
    implementations: tuple[Implementation, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        problems: list[str] = []
        for label, ids in (
            ("clause id", [c.id for c in self.clauses]),
            ("objective id", [o.id for o in self.objectives]),
            ("control id", [c.id for c in self.controls]),
            ("implementation name", [i.name for i in self.implementations]),
        ):
            repeated = _repeated(ids)
            if repeated:
                problems.append(f"{label}s appear more than once: {', '.join(repeated)}")
        if len(self.controls) != ANNEX_A_CONTROL_COUNT:
            problems.append(
                f"Annex A has {ANNEX_A_CONTROL_COUNT} controls, the catalogue lists {len(self.controls)}"
            )
        objectives = {o.id for o in self.objectives}
        orphans = sorted({c.objective for c in self.controls} - objectives, key=id_sort_key)
        if orphans:
            problems.append(f"controls name unknown objectives: {', '.join(orphans)}")
        clauses = {c.id for c in self.clauses}
        controls = {c.id for c in self.controls}
        for impl in self.implementations:
            unknown = [i for i in impl.clauses if i not in clauses] + [
                i for i in impl.controls if i not in controls
            ]
            if unknown:
                problems.append(f"implementation {impl.name!r} names unknown ids: {', '.join(unknown)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- indexes, built on first use (a frozen model keeps them in its instance dict) --------------------

    @functools.cached_property
    def _clauses_by_id(self) -> dict[str, Clause]:
        return {c.id: c for c in self.clauses}

    @functools.cached_property
    def _controls_by_id(self) -> dict[str, Control]:
        return {c.id: c for c in self.controls}

    @functools.cached_property
    def _implementations_by_name(self) -> dict[str, Implementation]:
        return {i.name: i for i in self.implementations}

    @functools.cached_property
    def _implementations_by_id(self) -> dict[str, list[Implementation]]:
        index: dict[str, list[Implementation]] = {
            i: [] for i in (*self._clauses_by_id, *self._controls_by_id)
        }
        for impl in self.implementations:
            for id_ in impl.ids:
                index[id_].append(impl)
        return index

    # -- look-ups ---------------------------------------------------------------------------------------

    @property
    def ids(self) -> frozenset[str]:
        """Every clause and control id."""
        return frozenset(self._implementations_by_id)

    def clause(self, id_: str) -> Clause:
        try:
            return self._clauses_by_id[id_]
        except KeyError:
            raise KeyError(
                f"no clause {id_!r} in the ISO/IEC 42001 catalogue (clauses are 4.1 … 10.2)"
            ) from None

    def control(self, id_: str) -> Control:
        try:
            return self._controls_by_id[id_]
        except KeyError:
            raise KeyError(
                f"no Annex A control {id_!r} in the ISO/IEC 42001 catalogue (controls are A.2.2 … A.10.4)"
            ) from None

    def objective(self, id_: str) -> Objective:
        for objective in self.objectives:
            if objective.id == id_:
                return objective
        raise KeyError(f"no Annex A objective {id_!r} in the ISO/IEC 42001 catalogue (A.2 … A.10)")

    def title(self, id_: str) -> str:
        """Title of a clause or a control."""
        if id_ in self._clauses_by_id:
            return self._clauses_by_id[id_].title
        return self.control(id_).title

    def implementation(self, name: str) -> Implementation:
        try:
            return self._implementations_by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._implementations_by_name))
            raise KeyError(
                f"no flow or record type {name!r} in the catalogue; known names: {known}"
            ) from None

    def names(self, kind: ImplementationKind | None = None) -> list[str]:
        """Implementation names in catalogue order, optionally of one kind."""
        return [i.name for i in self.implementations if kind is None or i.kind == kind]

    def implementations_for(self, id_: str) -> list[Implementation]:
        """What gives evidence for a clause or control; empty when it is met outside the tool."""
        try:
            return list(self._implementations_by_id[id_])
        except KeyError:
            raise KeyError(f"{id_!r} is neither a clause nor an Annex A control in the catalogue") from None

    def ids_for(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(clauses, controls) a flow, the router or a register record type gives evidence for."""
        impl = self.implementation(name)
        return impl.clauses, impl.controls


def parse_catalogue(data: Any, *, source: str = "catalogue") -> Catalogue:
    """Validate already-loaded catalogue data; any problem raises a `CatalogueError` naming `source`."""
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError(f"{source} is not a valid ISO/IEC 42001 catalogue:\n{exc}") from exc


def read_catalogue_data() -> Any:
    """The catalogue file's YAML, parsed but not validated."""
    import yaml  # imported here: nothing heavy at import time

    path = resources.files("schemas").joinpath(CATALOGUE_FILE)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CatalogueError(f"the catalogue file {path} is missing (package data of `schemas`)") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path} is not valid YAML: {exc}") from exc


@functools.cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the package, validated once per process."""
    return parse_catalogue(read_catalogue_data(), source=f"schemas/{CATALOGUE_FILE}")


def is_control_id(id_: str) -> bool:
    return re.fullmatch(CONTROL_ID, id_) is not None
