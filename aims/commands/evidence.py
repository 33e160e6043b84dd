"""`aims evidence bundle` and `aims evidence verify`: evidence for auditors, as one signed archive
(`aims evidence add`, evidence a person supplies, is in `evidence_add.py`).

Thin: the arguments are checked before anything is opened or written (bad ones exit 2 and leave no
file), then flows/evidence_bundle gathers, renders and seals; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aims.commands.common import (
    AddCommand,
    annex_a_controls,
    cli_settings,
    iso_date,
    load_policy,
    open_register,
    usage_only,
)
from aims.errors import CliError

if TYPE_CHECKING:
    from aims.soa import SoaRow
    from flows.evidence_bundle.gather import Bundle, Scope
    from schemas.catalogue import Catalogue
    from schemas.policy import Policy
    from schemas.settings import AimsSettings


def progress(line: str) -> None:
    print(f"evidence bundle: {line}", file=sys.stderr, flush=True)


def bundle_scope(first: str | None, last: str | None, controls: list[str]) -> Scope:
    """The period and controls of the command line, checked: a usage error names what is wrong."""
    from flows.evidence_bundle.gather import Scope

    start: date | None = iso_date(first, "--from") if first is not None else None
    end: date | None = iso_date(last, "--to") if last is not None else None
    if start is not None and end is not None and end < start:
        raise CliError(f"invalid --to {last}: the period ends before it starts (--from {first})")
    controls = annex_a_controls(controls, "--control")
    return Scope.of_days(start, end, controls)


def _out(path: Path, force: bool) -> Path:
    if path.is_dir():
        raise CliError(f"invalid --out {path}: a folder; name the archive file to write")
    if not path.parent.is_dir():
        raise CliError(f"invalid --out {path}: folder {path.parent} does not exist")
    if path.exists() and not force:
        raise CliError(f"invalid --out {path}: it exists (--force replaces it)")
    return path


def _audit_key(settings: AimsSettings) -> bytes:
    from connectors.register import audit_key

    key = audit_key(settings)
    if key is None:
        raise CliError(
            "no audit key (AIMS_AUDIT_KEY, or audit.key in the state folder): the bundle's manifest "
            "is signed and checked with the audit log's key"
        )
    return key.get_secret_value().encode()


def cmd_bundle(args: argparse.Namespace) -> int:
    from aims.commands.register import audit_anchors, parse_anchor
    from flows.evidence_bundle.archive import BundleExists, seal, write_atomically
    from flows.evidence_bundle.gather import audit_section, gather
    from schemas.catalogue import load_catalogue

    scope = bundle_scope(args.from_, args.to, args.control)
    out = _out(args.out, args.force)
    for text in args.anchor:
        parse_anchor(text)
    settings = cli_settings()
    key = _audit_key(settings)
    policy = load_policy(settings, "build the evidence bundle")
    catalogue = load_catalogue()
    register = open_register(settings)
    try:
        progress("checking the audit log")
        anchors, note = audit_anchors(args, settings, register)
        report = register.verify_audit(anchors)
        audit = audit_section(report, list(anchors.by_seq.values()) if anchors else [], note)
        progress(f"audit log: {report.entries} entries, head {report.head_seq}, intact: {report.ok}")
        now = datetime.now(UTC).replace(microsecond=0)
        with register.reader() as uow:
            bundle = gather(
                uow,
                catalogue,
                scope,
                now=now,
                organisation=policy.organisation,
                audit=audit,
                docs_root=settings.state_path / "data-docs",
                progress=progress,
            )
    finally:
        register.close()
    rows = attach_soa(bundle, catalogue, policy, now)
    progress(f"statement of applicability: {len(rows)} controls")
    progress(f"attachments (Data Docs, review packs): {len(bundle.attachments)}")
    data = seal(bundle, key)
    try:
        write_atomically(data, out, force=args.force)
    except BundleExists as exc:
        raise CliError(str(exc)) from None
    summary: dict[str, Any] = {
        "out": str(out),
        "bytes": len(data),
        "period": scope.describe(),
        "counts": bundle.counts(),
        "audit_head": audit["anchor_text"],
        "audit_intact": audit["intact"],
    }
    progress(f"written {out} ({len(data)} bytes)")
    if args.json:
        json.dump(summary, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print(out)
    return 0


def attach_soa(bundle: Bundle, catalogue: Catalogue, policy: Policy, now: datetime) -> list[SoaRow]:
    """The Statement of Applicability of the bundle's controls, its evidence counted in the period
    as `aims controls` counts it over all time, as rows in the index and as CSV and Markdown files."""
    from aims.soa import EvidenceStat, render_soa_markdown, soa_csv_row, statement_of_applicability

    stats = {i: EvidenceStat(n, last) for i, (n, last) in bundle.evidence_stats().items()}
    try:
        rows = statement_of_applicability(catalogue, stats, policy.statement_of_applicability.exclusions)
    except ValueError as exc:
        raise CliError(f"the policy's statement_of_applicability: {exc}") from None
    chosen = {c["id"] for c in bundle.controls}
    rows = [row for row in rows if row.id in chosen]
    bundle.with_soa([_soa_row(row) for row in rows])
    bundle.texts["statement-of-applicability.csv"] = _csv([soa_csv_row(row) for row in rows])
    bundle.texts["statement-of-applicability.md"] = render_soa_markdown(
        rows, organisation=policy.organisation, generated_at=now, policy_version=policy.version
    )
    return rows


def _soa_row(row: SoaRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "applicable": row.applicable,
        "justification": row.justification,
        "implemented_by": list(row.implemented_by),
        "evidence_count": row.evidence_count,
        "last_evidence_at": row.last_evidence_at.isoformat() if row.last_evidence_at else None,
    }


def _csv(rows: list[dict[str, str]]) -> str:
    import csv
    import io

    from aims.soa import SOA_CSV_FIELDS

    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=SOA_CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def cmd_verify(args: argparse.Namespace) -> int:
    from flows.evidence_bundle.archive import verify

    path: Path = args.file
    if not path.is_file():
        raise CliError(f"invalid FILE {path}: no such file")
    key = _audit_key(cli_settings())
    result = verify(path.read_bytes(), key)
    if args.json:
        json.dump(
            {
                "ok": result.ok,
                "files": result.files,
                "problems": [{"path": f.path, "kind": f.kind, "detail": f.detail} for f in result.findings],
            },
            sys.stdout,
            indent=2,
            sort_keys=True,
        )
        print()
    elif result.ok:
        head = (result.manifest or {}).get("audit_head")
        print(f"ok: {path}: {result.files} files match the signed manifest (audit log head {head})")
    else:
        for finding in result.findings:
            print(finding, file=sys.stderr)
        print(f"FAILED: {path}: {len(result.findings)} problem(s)", file=sys.stderr)
    return 0 if result.ok else 1


def add_commands(add: AddCommand) -> None:
    evidence = add("evidence", usage_only, "Evidence for auditors: one signed archive, checked offline.")
    sub = evidence.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")
    bundle = sub.add_parser(
        "bundle",
        help="write the evidence of a period as one self-contained, signed archive",
        description="Per control what implements it and its evidence, data-quality results with their "
        "Data Docs, risks, approvals, incidents, review packs, the SoA, the audit log's head and anchors, "
        "and a manifest of every file's SHA-256 signed with the audit log's key.",
    )
    bundle.add_argument("--from", dest="from_", metavar="DATE", help="first day (YYYY-MM-DD, UTC)")
    bundle.add_argument("--to", metavar="DATE", help="last day, included (YYYY-MM-DD, UTC)")
    bundle.add_argument(
        "--control", action="append", default=[], metavar="ID", help="only this Annex A control; repeatable"
    )
    bundle.add_argument("--out", type=Path, required=True, metavar="FILE", help="the archive to write (.zip)")
    bundle.add_argument("--force", action="store_true", help="replace --out if it exists")
    bundle.add_argument("--json", action="store_true", help="a summary as JSON on stdout")
    bundle.add_argument(
        "--anchor", action="append", default=[], metavar="SEQ:HASH", help="an anchor kept elsewhere"
    )
    bundle.add_argument("--no-anchors", action="store_true", help="do not read the anchors topic")
    bundle.set_defaults(handler=cmd_bundle)
    check = sub.add_parser("verify", help="check a bundle offline; name every file changed, missing or added")
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=cmd_verify)
    from aims.commands.evidence_add import add_parser

    add_parser(sub)
