"""YAML files validated by pydantic, with every problem pointing at its line and column.

The machinery behind the policy file (`schemas.policy_file`) and the expectation suites (`schemas.suites`):

- `read_yaml` reads a file (size, encoding and syntax guarded) into its data, its root node, whose
  marks say where every value stands, and its duplicate keys (YAML parsers silently keep the last
  one); it raises `YamlSourceError` when the file cannot be read at all;
- `problems_from_validation_error` turns a pydantic `ValidationError` into problems at the YAML nodes
  its errors are about (`locate` gives the line and column of a pydantic `loc`);
- `load_model` does all of it: the validated model, or `YamlSourceError` with every problem.

Problems read like a compiler's, one per line (`file:line:column: field: message`), line and column
1-based. Nothing heavy is imported: PyYAML and pydantic only.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# PyYAML has no type stubs in this environment; mypy's ignore_missing_imports makes it Any.
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

try:  # libyaml's parser when PyYAML was built with it (ten times faster); the pure-Python one otherwise
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _SafeLoader

Model = TypeVar("Model", bound=BaseModel)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class YamlProblem:
    """One thing wrong with a YAML file; `line` and `column` are 1-based, None when unknown."""

    file: Path
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = str(self.file) if self.line is None else f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class YamlSourceError(Exception):
    """The file cannot be used; `problems` lists every reason, in file order."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_model(
    path: Path,
    model: type[Model],
    *,
    max_bytes: int,
    what: str,
    expected: str,
    empty: str | None = None,
    context: Any = None,
    rewrite: Callable[[ErrorDetails], ErrorDetails] | None = None,
) -> Model:
    """`model` validated from the YAML mapping in `path`, or `YamlSourceError` with every problem.

    `what`, `expected` and `empty` word the reading problems (see `read_yaml`); `context` is passed to
    pydantic, and `rewrite` to `problems_from_validation_error`.
    """
    data, root, problems = read_yaml(path, max_bytes, what=what, expected=expected, empty=empty)
    try:
        validated = model.model_validate(data, context=context)
    except ValidationError as exc:
        problems += problems_from_validation_error(path, root, exc, model=model, rewrite=rewrite)
    if problems:
        raise YamlSourceError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
    return validated


# -- reading --------------------------------------------------------------------------------------


class _Loader(_SafeLoader):
    """SafeLoader whose value errors (a 30 February, a 5000-digit int) carry the node's position."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None


def read_yaml(
    path: Path, max_bytes: int, *, what: str, expected: str, empty: str | None = None
) -> tuple[Any, yaml.MappingNode, list[YamlProblem]]:
    """The data in `path` (safely loaded), the mapping node it was built from, and its duplicate keys.

    Duplicate keys are problems that do not stop reading: report them with the validation's. Building
    the data flattens merges (`<<`) into the nodes, as `locate` expects.

    Raises `YamlSourceError` with the one problem that stops reading: the file cannot be read, is
    larger than `max_bytes`, is not UTF-8 text, is no YAML, is empty or holds no mapping at the top.
    `what` names the file ("policy file"), `expected` what its top mapping is ("a mapping of policy
    settings"), `empty` what an empty file should have held (`expected` if None).
    """
    text = _read(path, max_bytes, what)
    # Found here rather than by the parser, whose position would be in bytes or characters.
    if bad := yaml.reader.Reader.NON_PRINTABLE.search(text):
        before = text[: bad.start()]
        line, column = before.count("\n") + 1, bad.start() - before.rfind("\n")
        raise YamlSourceError([YamlProblem(path, line, column, "", f"YAML does not allow {bad.group()!r}")])
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                message = f"the file is empty: expected {empty or expected}"
                raise YamlSourceError([YamlProblem(path, 1, 1, "", message)])
            if not isinstance(root, yaml.MappingNode):
                found = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
                message = f"expected {expected} at the top, found {found}"
                raise YamlSourceError([_problem(path, root, "", message)])
            duplicates = _duplicate_keys(path, root)  # before merges (<<) are flattened into the nodes
            return loader.construct_document(root), root, duplicates
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise YamlSourceError([_yaml_problem(path, exc)]) from None
    except RecursionError:
        raise YamlSourceError([YamlProblem(path, None, None, "", "the YAML is nested too deeply")]) from None


def _read(path: Path, max_bytes: int, what: str) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        problem = YamlProblem(path, None, None, "", f"cannot read the {what}: {exc.strerror or exc}")
        raise YamlSourceError([problem]) from None
    if len(data) > max_bytes:
        raise YamlSourceError(
            [YamlProblem(path, None, None, "", f"larger than {max_bytes} bytes: not a {what}")]
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise YamlSourceError(
            [YamlProblem(path, line, column, "", f"not UTF-8 text: {exc.reason}")]
        ) from None


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> YamlProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(part for part in (exc.context, exc.problem) if part)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        kind = (
            "invalid YAML value"
            if isinstance(exc, yaml.constructor.ConstructorError)
            else "YAML syntax error"
        )
        return YamlProblem(path, line, column, "", f"{kind}: {what or exc}")
    return YamlProblem(path, None, None, "", f"YAML error: {exc}")


def _problem(path: Path, node: yaml.Node, field: str, message: str) -> YamlProblem:
    return YamlProblem(path, node.start_mark.line + 1, node.start_mark.column + 1, field, message)


# -- the node tree --------------------------------------------------------------------------------


def _key(node: yaml.Node) -> Any:
    """A mapping key as the loader builds it (`yes` is True, `0x1` is 1); its text if that fails."""
    if isinstance(node, yaml.ScalarNode):
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            return (node.tag, node.value)
    return (node.tag, id(node))


def _duplicate_keys(path: Path, root: yaml.Node) -> list[YamlProblem]:
    """A problem at every key that repeats an earlier one of its mapping (merged keys `<<` aside)."""
    problems: list[YamlProblem] = []
    seen: set[int] = set()  # aliases share nodes, and may even point back at their parent
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack += [(item, (*loc, i)) for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            for key_node, value in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = _key(key_node)
                try:
                    earlier = first.setdefault(key, key_node)
                except TypeError:  # unhashable: the constructor reports it
                    continue
                if earlier is not key_node:
                    first_line = earlier.start_mark.line + 1
                    message = f"duplicate key (first on line {first_line}); YAML keeps only the last one"
                    problems.append(_problem(path, key_node, _dotted((*loc, key)), message))
                stack.append((value, (*loc, key)))
    return problems


def _entry(mapping: yaml.Node, part: Any) -> tuple[yaml.Node, yaml.Node] | None:
    # After construction, merged entries come first and the mapping's own last: the last one wins.
    for key_node, value in reversed(mapping.value):
        key = _key(key_node)
        # pydantic names a key that is no string by its repr (or, for None, its str)
        if key == part or (not isinstance(key, tuple) and part in (str(key), repr(key))):
            return key_node, value
    return None


def _node_at(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node:
    """The node `loc` names or, when part of it is absent, the deepest one present.

    A "[key]" part (pydantic's, for an invalid mapping key) names the key of the entry reached so far.
    """
    node, key_node = root, None
    for part in loc:
        if part == "[key]":
            return key_node if key_node is not None else node
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node, key_node = node.value[part], None
        elif isinstance(node, yaml.MappingNode) and (entry := _entry(node, part)) is not None:
            key_node, node = entry
        else:
            break
    return node


def locate(root: yaml.Node, loc: tuple[Any, ...]) -> tuple[int, int]:
    """The 1-based line and column of the node a pydantic `loc` names in the tree under `root`.

    When part of `loc` is absent, the deepest node present; a "[key]" part names the key of the entry
    reached so far (pydantic's, for an invalid mapping key).
    """
    mark = _node_at(root, loc).start_mark
    return mark.line + 1, mark.column + 1


# -- validation errors ----------------------------------------------------------------------------


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return out


def _without_knock_ons(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Drop "too short" for a list whose items failed: pydantic counts only the valid items."""
    locs = [tuple(err["loc"]) for err in errors]

    def has_failed_items(loc: tuple[Any, ...]) -> bool:
        return any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)

    return [
        err
        for err, loc in zip(errors, locs, strict=True)
        if err["type"] != "too_short" or not has_failed_items(loc)
    ]


def problems_from_validation_error(
    path: Path,
    root: yaml.Node,
    exc: ValidationError,
    *,
    model: type[BaseModel],
    rewrite: Callable[[ErrorDetails], ErrorDetails] | None = None,
) -> list[YamlProblem]:
    """A problem for each error of `exc` (the validation of `model` from the data `root` was built into).

    An unknown field is pointed at by its key, with the closest field `model` allows there; a missing
    one at the mapping that lacks it. `rewrite`, if given, may change an error's `loc` and `msg` first.
    """
    errors = _without_knock_ons(exc.errors(include_url=False))
    return [_located(path, root, rewrite(err) if rewrite else err, model) for err in errors]


def _located(path: Path, root: yaml.Node, err: ErrorDetails, model: type[BaseModel]) -> YamlProblem:
    loc = tuple(err["loc"])
    message, where = err["msg"], loc
    if err["type"] == "extra_forbidden":  # point at the unknown key itself
        known = _known_fields(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "expected one of: " + ", ".join(known)
        message, where = (f"unknown field; {hint}" if known else "unknown field"), (*loc, "[key]")
    elif err["type"] == "missing":  # point at the mapping that lacks it, by its key if it has one
        where = (*loc[:-1], "[key]")
    elif err["type"] == "invalid_key":  # a key that is no string, at the top
        message, where = f"invalid key: {message}", (*loc, "[key]")
    elif loc and loc[-1] == "[key]":
        message = f"invalid key: {message}"
    node = _node_at(root, where)
    if (
        err["input"] is None
        and isinstance(node, yaml.ScalarNode)
        and node.value == ""
        and node.tag.endswith(":null")
    ):
        message += " (the value is empty: if it starts with '#', quote it, or YAML reads a comment)"
    return _problem(path, node, _dotted(loc), message)


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _known_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names the schema of `model` allows at `loc` (for "did you mean")."""
    schema = _schema(model)

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while True:
            if "$ref" in node:
                node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
            elif "anyOf" in node:
                node = next((n for n in node["anyOf"] if n.get("type") != "null"), {})
            else:
                return node

    node = resolve(schema)
    for part in loc:
        if isinstance(part, int) and "items" in node:
            node = resolve(node["items"])
        elif part in node.get("properties", {}):
            node = resolve(node["properties"][part])
        elif isinstance(node.get("additionalProperties"), dict):
            node = resolve(node["additionalProperties"])
        else:
            return []
    return sorted(node.get("properties", {}))
