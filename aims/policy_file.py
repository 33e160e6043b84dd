"""`aims policy check FILE`: every problem of a policy file, located, or a one-line summary."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from schemas.policy_file import check_policy


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
