"""schemas.yaml_source: YAML read with its node marks, and problems located at their line and column."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.yaml_source import (
    YamlProblem,
    YamlSourceError,
    load_model,
    locate,
    problems_from_validation_error,
    read_yaml,
)

DOC = """\
name: demo
owner:
  team: risk
  contact:
    email: a@example.org
items:
  - id: 1
    tags: [x, y]
  - id: 2
    tags:
      - z
"""


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str


class Owner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: str
    contact: Contact


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    tags: list[str]


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    owner: Owner
    items: list[Item]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def read(tmp_path: Path, text: str) -> tuple[object, object, list[YamlProblem]]:
    return read_yaml(write(tmp_path, text), 10_000, what="test file", expected="a mapping")


def reading_problem(tmp_path: Path, text: str) -> YamlProblem:
    with pytest.raises(YamlSourceError) as raised:
        read(tmp_path, text)
    [problem] = raised.value.problems
    return problem


@pytest.mark.parametrize(
    ("loc", "position"),
    [
        (("name",), (1, 7)),
        (("owner", "contact", "email"), (5, 12)),
        (("owner", "contact", "[key]"), (4, 3)),  # the key of the entry
        (("items", 1), (9, 5)),  # a list item: its mapping
        (("items", 0, "tags", 1), (8, 15)),  # an item of a flow list
        (("items", 1, "tags", 0), (11, 9)),  # an item of a block list
        (("owner", "nowhere", "deeper"), (3, 3)),  # absent: the deepest node present
    ],
)
def test_locate_nested_keys_and_list_items(
    tmp_path: Path, loc: tuple[object, ...], position: tuple[int, int]
) -> None:
    data, root, duplicates = read(tmp_path, DOC)
    assert duplicates == [] and Doc.model_validate(data).items[1].tags == ["z"]
    assert locate(root, loc) == position


def test_duplicate_keys_are_reported_at_the_second_key_merges_aside(tmp_path: Path) -> None:
    text = "base: &b {team: a}\nowner:\n  <<: *b\n  team: b\n  contact: {email: x}\n  contact: {email: y}\n"
    data, _, duplicates = read(tmp_path, text)
    assert data["owner"] == {"team": "b", "contact": {"email": "y"}}  # type: ignore[index]
    [problem] = duplicates
    assert (problem.line, problem.column, problem.field) == (6, 3, "owner.contact")
    assert problem.message == "duplicate key (first on line 5); YAML keeps only the last one"
    assert str(problem).endswith("doc.yaml:6:3: owner.contact: " + problem.message)


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("name: [unclosed\nowner: x\n", (2, 6), "YAML syntax error"),
        ("name: a\n  owner: b\n", (2, 8), "YAML syntax error"),
        ("name: 2025-02-30\n", (1, 7), "invalid YAML value: day is out of range"),
        ("name: \x07\n", (1, 7), "YAML does not allow '\\x07'"),
        ("", (1, 1), "the file is empty: expected a mapping"),
        ("- a\n", (1, 1), "expected a mapping at the top, found a list"),
    ],
)
def test_reading_problems_have_line_and_column(
    tmp_path: Path, text: str, position: tuple[int, int], message: str
) -> None:
    problem = reading_problem(tmp_path, text)
    assert (problem.line, problem.column) == position and problem.message.startswith(message)


def test_size_and_encoding_are_guarded(tmp_path: Path) -> None:
    big = write(tmp_path, "name: " + "x" * 100)
    with pytest.raises(YamlSourceError, match="larger than 50 bytes: not a test file"):
        read_yaml(big, 50, what="test file", expected="a mapping")
    (tmp_path / "bad.yaml").write_bytes(b"name: a\nowner: \xff\n")
    with pytest.raises(YamlSourceError) as raised:
        read_yaml(tmp_path / "bad.yaml", 100, what="test file", expected="a mapping")
    assert (raised.value.problems[0].line, raised.value.problems[0].column) == (2, 8)


def test_validation_errors_point_at_their_nodes(tmp_path: Path) -> None:
    text = DOC.replace("team: risk", "teem: risk").replace("id: 2", "id: two")
    data, root, _ = read(tmp_path, text)
    with pytest.raises(ValidationError) as raised:
        Doc.model_validate(data)
    problems = problems_from_validation_error(tmp_path / "doc.yaml", root, raised.value, model=Doc)
    found = {(p.line, p.column, p.field): p.message for p in problems}
    assert found[(3, 3, "owner.teem")] == "unknown field; did you mean 'team'?"
    assert found[(2, 1, "owner.team")] == "Field required"
    assert found[(9, 9, "items[1].id")].startswith("Input should be a valid integer")


def test_load_model_returns_the_model_or_every_problem_in_file_order(tmp_path: Path) -> None:
    loaded = load_model(write(tmp_path, DOC), Doc, max_bytes=10_000, what="test file", expected="a mapping")
    assert loaded.owner.contact.email == "a@example.org"
    text = DOC.replace("id: 2", "id: two") + "name: again\n"
    with pytest.raises(YamlSourceError) as raised:
        load_model(write(tmp_path, text), Doc, max_bytes=10_000, what="test file", expected="a mapping")
    assert [(p.line, p.field) for p in raised.value.problems] == [(9, "items[1].id"), (12, "name")]
