"""Ids that become file names: one safe path component each, never the same for two ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.events import DATA_CHANGED, DECLARATIONS, parse_event
from schemas.file_names import id_file_name, id_path
from schemas.payloads import DataChanged, Payload, ReviewRequested
from tests.factories import raw_event

# Any text an event or a request can carry, lone surrogates included (JSON allows "\ud800").
ids = st.text(min_size=1, max_size=300).filter(lambda s: bool(s.strip(".")))
# Ids near one another: what slugging folds together (separators, case, dots, length).
close = st.text(alphabet="aA/_.:-+ \\#~\x00é", min_size=1, max_size=80).filter(lambda s: bool(s.strip(".")))
SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")


def assert_one_component(name: str) -> None:
    assert SAFE.fullmatch(name), name
    assert name not in (".", "..") and len(name.encode()) <= 81
    assert Path(name).name == name and len(Path(name).parts) == 1


@given(ids)
def test_every_name_is_a_single_safe_path_component(ident: str) -> None:
    assert_one_component(id_file_name(ident))


@given(st.lists(st.one_of(ids, close), min_size=2, max_size=30, unique=True))
def test_no_two_distinct_ids_share_a_name_not_even_on_a_case_insensitive_file_system(
    idents: list[str],
) -> None:
    names = [id_file_name(i) for i in idents]
    assert len({n.lower() for n in names}) == len(idents), dict(zip(idents, names, strict=True))


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=64))
def test_plain_lowercase_names_are_their_own_name(ident: str) -> None:
    if ident[0].isalnum():
        assert id_file_name(ident) == ident


def test_the_ids_of_the_issue_are_apart_and_readable() -> None:
    assert id_file_name("a/b") != id_file_name("a_b") == "a_b"
    assert id_file_name("a/b").startswith("a_b+")
    assert id_file_name("Review-A") != id_file_name("review-a")
    assert id_file_name("extraordinary:serious:urn:support#77").startswith(
        "extraordinary_serious_urn_support_77+"
    )
    assert id_file_name("../../etc").startswith("etc+")


@pytest.mark.parametrize("ident", ["", ".", "..", "...", "." * 300])
def test_empty_and_dot_only_ids_are_refused_with_a_reason(ident: str) -> None:
    with pytest.raises(ValueError, match="cannot name a file"):
        id_file_name(ident)


@given(ids)
def test_the_path_stays_directly_inside_its_folder(ident: str) -> None:
    folder = Path("/srv/aims/state/reviews")
    path = id_path(folder, ident)
    assert path.parent == folder and path.resolve().parent == folder.resolve()


def test_a_name_that_is_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "q1").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="outside"):
        id_path(folder, "q1")


@pytest.mark.parametrize(("model", "field"), [(ReviewRequested, "review_id"), (DataChanged, "dataset_id")])
def test_events_whose_ids_name_folders_refuse_dot_only_ids_at_intake(
    model: type[Payload], field: str
) -> None:
    example = next(d.example for d in DECLARATIONS if d.payload is model)
    # A dataset id also names its suite file as it is, so it is held to that file's pattern too
    # (below); a review id is only ever escaped into a file name.
    with pytest.raises(ValidationError, match=r"cannot name a file|should match pattern"):
        model.model_validate({**example, field: ".."})
    assert getattr(model.model_validate({**example, field: "a.b"}), field) == "a.b"


@pytest.mark.parametrize("dataset_id", ["lineage/loans.csv", "¡", "-leading-dash", "loans csv"])
def test_a_data_change_names_a_dataset_its_suite_file_can_be_named_after(dataset_id: str) -> None:
    # The check names the dataset's suite file after its id (schemas/suites.suite_file): an id that
    # cannot name one crashed the check's run instead of being refused here, with its reason.
    event = raw_event(DATA_CHANGED)
    event["data"]["dataset_id"] = dataset_id
    with pytest.raises(ValidationError, match="dataset_id"):
        parse_event(event)


@pytest.mark.parametrize("dataset_id", ["loans", "loan-applications", "lake.loans_2026", "L0ans"])
def test_a_data_change_of_a_suite_nameable_dataset_is_taken(dataset_id: str) -> None:
    event = raw_event(DATA_CHANGED)
    event["data"]["dataset_id"] = dataset_id
    assert parse_event(event).data.dataset_id == dataset_id
