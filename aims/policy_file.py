"""Load and check the policy file (`policy/aims-policy.yaml`), pointing every problem at its line.

Loading is all or nothing: `load_policy` returns a fully validated, frozen `Policy`, or raises
`PolicyError` listing every problem found — the file is never applied in part, and no caller ever sees
a policy that is half old and half new. Problems read like a compiler's, one per line:

    policy/aims-policy.yaml:42:5: approvals.critical.quorum: Input should be greater than or equal to 1

Line and column are those of the YAML node the problem is about (1-based); for a missing field, the
mapping that lacks it (at its key). Duplicate keys are problems too (YAML parsers silently keep the
last one). Checks across sections (an approval rule naming an unknown group, a level above the
appetite without a rule) run once every section is valid on its own, as pydantic's model validators
do: fixing a type error may reveal such a problem on the next run.

Nothing heavy is imported: PyYAML and pydantic only.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

# PyYAML has no type stubs in this environment; mypy's ignore_missing_imports makes it Any.
import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from aims.errors import CliError
from schemas.policy import Policy

try:  # libyaml's parser when PyYAML was built with it (ten times faster); the pure-Python one otherwise
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _SafeLoader

MAX_BYTES = 1_000_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy file; `line` and `column` are 1-based, None when unknown."""

    file: Path
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = str(self.file) if self.line is None else f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PolicyError(CliError):
    """The policy file cannot be used; `problems` lists every reason, in file order."""

    def __init__(self, path: Path, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid policy {path} ({count}):\n" + "\n".join(str(p) for p in problems))


class _Loader(_SafeLoader):
    """SafeLoader whose value errors (a 30 February, a 5000-digit int) carry the node's position."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None


def load_policy(path: Path) -> Policy:
    """The validated policy in `path`, or `PolicyError` with every problem: never a partial policy."""
    text = _read(path)
    try:
        root, data, problems = _parse(path, text)
    except yaml.YAMLError as exc:
        raise PolicyError(path, [_yaml_problem(path, exc)]) from None
    except RecursionError:
        deep = PolicyProblem(path, None, None, "", "the YAML is nested too deeply")
        raise PolicyError(path, [deep]) from None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems += [_locate(path, root, err) for err in _without_knock_ons(exc.errors(include_url=False))]
    if problems:
        raise PolicyError(path, sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
    return policy


def check_policy(path: Path) -> tuple[Policy | None, list[PolicyProblem]]:
    """The policy and no problems, or None and every problem (for `aims policy check`)."""
    try:
        return load_policy(path), []
    except PolicyError as exc:
        return None, exc.problems


def run_policy_check(path: Path, out: TextIO) -> int:
    """`aims policy check FILE`: 0 and a one-line summary if the policy is valid, else 1 and the problems."""
    policy, problems = check_policy(path)
    if policy is None:
        for problem in problems:
            print(problem, file=out)
        print(f"invalid: {path}: {len(problems)} problem(s); nothing of it applies", file=out)
        return 1
    levels = ", ".join(level.value for level in policy.levels_needing_approval()) or "none"
    print(
        f"ok: {path} (policy version {policy.version}, {len(policy.approver_groups)} approver groups, "
        f"appetite {policy.risk.appetite.value}, approval needed at: {levels}, "
        f"{len(policy.statement_of_applicability.exclusions)} Annex A exclusion(s))",
        file=out,
    )
    return 0


# -- reading and YAML errors ----------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        problem = PolicyProblem(path, None, None, "", f"cannot read the policy file: {exc.strerror or exc}")
        raise PolicyError(path, [problem]) from None
    if len(data) > MAX_BYTES:
        problem = PolicyProblem(path, None, None, "", f"larger than {MAX_BYTES} bytes: not a policy file")
        raise PolicyError(path, [problem])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        problem = PolicyProblem(path, line, column, "", f"not UTF-8 text: {exc.reason}")
        raise PolicyError(path, [problem]) from None


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> PolicyProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(part for part in (exc.context, exc.problem) if part)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        kind = (
            "invalid YAML value"
            if isinstance(exc, yaml.constructor.ConstructorError)
            else "YAML syntax error"
        )
        return PolicyProblem(path, line, column, "", f"{kind}: {what or exc}")
    return PolicyProblem(path, None, None, "", f"YAML error: {exc}")


def _parse(path: Path, text: str) -> tuple[yaml.Node, Any, list[PolicyProblem]]:
    """The root node, the data built from it, and the duplicate keys; YAMLError if it is no YAML."""
    # Found here rather than by the parser, whose position would be in bytes or characters.
    if bad := yaml.reader.Reader.NON_PRINTABLE.search(text):
        before = text[: bad.start()]
        line, column = before.count("\n") + 1, bad.start() - before.rfind("\n")
        raise PolicyError(
            path, [PolicyProblem(path, line, column, "", f"YAML does not allow {bad.group()!r}")]
        )
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            empty = PolicyProblem(path, 1, 1, "", "the file is empty: expected a mapping of policy settings")
            raise PolicyError(path, [empty])
        if not isinstance(root, yaml.MappingNode):
            found = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
            raise _error(path, root, "", f"expected a mapping of policy settings at the top, found {found}")
        problems = _duplicate_keys(path, root)
        return root, loader.construct_document(root), problems  # this flattens merges (<<) into the nodes
    finally:
        loader.dispose()


def _error(path: Path, node: yaml.Node, field: str, message: str) -> PolicyError:
    return PolicyError(path, [_problem(path, node, field, message)])


def _problem(path: Path, node: yaml.Node, field: str, message: str) -> PolicyProblem:
    return PolicyProblem(path, node.start_mark.line + 1, node.start_mark.column + 1, field, message)


# -- the node tree --------------------------------------------------------------------------------


def _key(node: yaml.Node) -> Any:
    """A mapping key as the loader builds it (`yes` is True, `0x1` is 1); its text if that fails."""
    if isinstance(node, yaml.ScalarNode):
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            return (node.tag, node.value)
    return (node.tag, id(node))


def _duplicate_keys(path: Path, root: yaml.Node) -> list[PolicyProblem]:
    problems: list[PolicyProblem] = []
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


def _locate(path: Path, root: yaml.Node, err: ErrorDetails) -> PolicyProblem:
    loc = tuple(err["loc"])
    message, where = err["msg"], loc
    if err["type"] == "extra_forbidden":  # point at the unknown key itself
        known = _known_fields(loc[:-1])
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
def _schema() -> dict[str, Any]:
    return Policy.model_json_schema()


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    """Field names the policy schema allows at `loc` (for "did you mean")."""
    schema = _schema()

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
