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

Reading and locating are `schemas.yaml_source`'s. Nothing heavy is imported: PyYAML and pydantic only.
This is the only policy loader: the flows get the policy through their runtime (`flows/runtime.py`),
the CLI and the gateway from here.
"""

from __future__ import annotations

from pathlib import Path

from schemas.errors import UserError
from schemas.policy import DataQuality, Policy
from schemas.yaml_source import YamlProblem, YamlSourceError, load_model

MAX_BYTES = 1_000_000

# One thing wrong with a policy file; `line` and `column` are 1-based, None when unknown.
PolicyProblem = YamlProblem


class PolicyError(UserError):
    """The policy file cannot be used; `problems` lists every reason, in file order."""

    def __init__(self, path: Path, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid policy {path} ({count}):\n" + "\n".join(str(p) for p in problems))


def load_policy(path: Path) -> Policy:
    """The validated policy in `path`, or `PolicyError` with every problem: never a partial policy."""
    try:
        return load_model(
            path, Policy, max_bytes=MAX_BYTES, what="policy file", expected="a mapping of policy settings"
        )
    except YamlSourceError as exc:
        raise PolicyError(path, exc.problems) from None


def data_quality_policy(path: Path) -> DataQuality:
    """The policy's data-quality settings; the defaults when there is no policy file at all.

    An invalid file is an error, not a reason to fall back: a window or threshold the organisation
    set must not be silently replaced by ours.
    """
    if not path.exists():
        return DataQuality()
    return load_policy(path).data_quality


def check_policy(path: Path) -> tuple[Policy | None, list[PolicyProblem]]:
    """The policy and no problems, or None and every problem (for `aims policy check`)."""
    try:
        return load_policy(path), []
    except PolicyError as exc:
        return None, exc.problems


class PolicyMissing(PolicyError):
    """No policy file where the settings say: the flows that need one cannot guess it."""

    def __init__(self, path: Path, why: str) -> None:
        self.problems = []
        UserError.__init__(
            self,
            f"{why}: no policy file at {path}; set AIMS_POLICY_FILE or copy policy/aims-policy.yaml there",
        )


def require_policy(path: Path, why: str) -> Policy:
    """The policy in `path`; `PolicyMissing` saying `why` it is needed when there is no file."""
    if not path.exists():
        raise PolicyMissing(path, why)
    return load_policy(path)
