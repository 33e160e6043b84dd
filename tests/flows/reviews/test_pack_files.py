"""Where a review pack is written: one folder per review id under `<state>/reviews/`, whatever the id.

Review ids arrive in `review.requested` events. A review `..` once wrote its pack into the state folder
itself, and the reviews `a/b` and `a_b` wrote into one folder, each overwriting the other's pack.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.register.store import Register
from flows.runtime import Runtime, use
from schemas.policy import Policy
from schemas.settings import load_settings
from tests.flows.reviews.seeding import bare_pack
from tests.resources import example_policy


@pytest.fixture
def state(sqlite_register: Register, tmp_path: Path) -> Iterator[Path]:
    """The state folder of a runtime the flow code reads its settings from."""
    folder = tmp_path / "state"
    resources = Runtime(
        settings=load_settings(state_dir=folder),
        register=sqlite_register,
        load_policy=example_policy,
        chat=None,
        tracker=None,
    )
    with use(resources):
        yield folder


def write(review_id: str) -> dict[str, Path]:
    import flows.reviews.hold_management_review as hold

    policy: Policy = example_policy()
    return {
        kind: Path(p)
        for kind, p in hold.write_files.fn(
            bare_pack(review_id, kind="extraordinary", reason="test"), policy
        ).items()
    }


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


@pytest.mark.parametrize("review_id", ["..", ".", "...."])
def test_a_dot_only_review_id_is_refused_and_nothing_is_written(state: Path, review_id: str) -> None:
    with pytest.raises(ValueError, match="cannot name a file"):
        write(review_id)
    assert files_under(state) == set()


def test_reviews_a_slash_b_and_a_underscore_b_get_folders_of_their_own(state: Path) -> None:
    first, second = write("a/b"), write("a_b")
    assert first["markdown"].parent != second["markdown"].parent
    assert len(files_under(state / "reviews")) == 6


@pytest.mark.parametrize(
    "review_id",
    [
        "/etc/aims",
        "../../outside",
        "..\\..\\outside",
        "a/../../b",
        "extraordinary:serious:urn:support#77",
        "scheduled:2027-01-01",
        "nul\x00byte",
        "~",
        "-rf",
        "x" * 300,
        "Review-A",
    ],
)
def test_every_pack_lands_in_one_folder_directly_under_reviews(state: Path, review_id: str) -> None:
    written = write(review_id)
    reviews = (state / "reviews").resolve()
    for path in written.values():
        assert path.resolve().parent.parent == reviews, path
        assert path.is_file()
    assert files_under(state) == {p for p in written.values()}
