"""`aims controls`, `aims soa export` and `aims policy check`: the standard's view of the register."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from aims.commands.common import AddCommand, cli_settings, load_policy, open_register, usage_only
from aims.errors import CliError

if TYPE_CHECKING:
    from aims.soa import CoverageRow
    from flows.freshness.rules import ControlFreshness


def cmd_controls(args: argparse.Namespace) -> int:
    """`aims controls`: each control, what implements it, its evidence and whether that is fresh."""
    from aims.coverage import evidence_by_id
    from aims.soa import coverage, render_coverage_table
    from flows.freshness.rules import Status, judge_by_policy
    from schemas.catalogue import load_catalogue

    catalogue = load_catalogue()
    settings = cli_settings()
    # Freshness is judged by the policy's maximum ages: without a valid policy there is nothing to judge by.
    policy = load_policy(settings, "judge how fresh each control's evidence is")
    register = open_register(settings)
    with register.reader() as uow:
        evidence = evidence_by_id(uow, catalogue)
    rows = coverage(catalogue, evidence, include_clauses=args.clauses)
    judged = {c.id: c for c in judge_by_policy(catalogue, evidence, policy, datetime.now(UTC))}
    if args.due:
        rows = [r for r in rows if r.id in judged and judged[r.id].status in (Status.stale, Status.missing)]
    if args.json:
        json.dump([_control_json(r, judged.get(r.id)) for r in rows], sys.stdout, indent=2)
        print()
        return 0
    print(render_coverage_table(rows, freshness={id_: c.status.value for id_, c in judged.items()}))
    return 0


def _control_json(row: CoverageRow, judged: ControlFreshness | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "kind": row.kind,
        "title": row.title,
        "implemented_by": list(row.implemented_by),
        "evidence_count": row.evidence_count,
        "last_evidence_at": row.last_evidence_at.isoformat() if row.last_evidence_at else None,
    }
    if judged is not None:  # controls; clauses have no maximum age
        out.update(
            freshness=judged.status.value,
            max_age_days=judged.max_age.days,
            stale_at=judged.stale_at.isoformat() if judged.stale_at else None,
            due_since=judged.period_start.isoformat() if judged.period_start else None,
        )
    return out


def cmd_soa_export(args: argparse.Namespace) -> int:
    from aims.coverage import evidence_by_id
    from aims.soa import soa_summary, statement_of_applicability, write_soa_csv, write_soa_markdown
    from schemas.catalogue import load_catalogue
    from schemas.policy_file import load_policy as read_policy

    settings = cli_settings()
    policy = read_policy(args.policy or settings.policy_file)
    catalogue = load_catalogue()
    register = open_register(settings)
    with register.reader() as uow:
        evidence = evidence_by_id(uow, catalogue)
    try:
        rows = statement_of_applicability(catalogue, evidence, policy.statement_of_applicability.exclusions)
    except ValueError as exc:
        raise CliError(f"the policy's statement_of_applicability: {exc}") from None
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_soa_csv(rows, out / "statement-of-applicability.csv")
    md_path = write_soa_markdown(
        rows,
        out / "statement-of-applicability.md",
        organisation=policy.organisation,
        generated_at=datetime.now(UTC),
        policy_version=policy.version,
    )
    summary = soa_summary(rows)
    print(
        f"{summary.controls} controls: {summary.applicable} applicable, {summary.excluded} excluded, "
        f"{summary.with_evidence} with evidence in the register"
    )
    print(csv_path)
    print(md_path)
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    return run_policy_check(args.file, sys.stdout)


def run_policy_check(path: Path, out: TextIO) -> int:
    """`aims policy check FILE`: 0 and a one-line summary if the policy is valid, else 1 and the problems."""
    from schemas.policy_file import check_policy

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
    if policy.decisions.cli_any_login:
        print(
            "warning: decisions.cli_any_login is on: any OS login may decide approvals as anyone with "
            "`aims approvals --by` (recorded as unauthenticated). For a local demo only: switch it off "
            "and list each person's logins under people before this policy guards anything.",
            file=out,
        )
    return 0


def add_commands(add: AddCommand) -> None:
    controls = add(
        "controls",
        cmd_controls,
        "ISO/IEC 42001 coverage: each control, what implements it, its evidence, fresh, stale or missing.",
    )
    controls.add_argument("--clauses", action="store_true", help="list clauses 4-10 too")
    controls.add_argument(
        "--due", action="store_true", help="only controls whose evidence is stale or missing"
    )
    controls.add_argument("--json", action="store_true")
    soa = add("soa", usage_only, "Statement of Applicability.")
    ssub = soa.add_subparsers(dest="soa_command", required=True, metavar="ACTION")
    export = ssub.add_parser("export", help="write the SoA as CSV and Markdown from the register's evidence")
    export.add_argument("--out", type=Path, default=Path("."), help="folder to write to (default: here)")
    export.add_argument("--policy", type=Path, help="policy file (default: AIMS_POLICY_FILE)")
    export.set_defaults(handler=cmd_soa_export)
    policy = add("policy", usage_only, "Policy file tools.")
    psub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = psub.add_parser("check", help="validate a policy file; every error with its field and line")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=cmd_policy_check)
