"""`aims evidence add`: evidence a person supplies (a signed policy, a training record, a drill report).

What `collect-evidence` asks an owner for comes back this way. The evidence says when it was
collected (which may be long before it is recorded: an effective date), until when it is valid, who
supplied it, and, with `--file`, the file's SHA-256 and a copy kept in the state folder. Everything
is checked before anything is written: a bad argument exits 2 and records nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from aims.commands.common import (
    annex_a_controls,
    checked_text,
    cli_settings,
    dump,
    identity,
    iso_date,
    load_policy,
    open_register,
)
from aims.errors import CliError

# A supplied file is evidence, not an archive: a scan or a report fits easily.
MAX_FILE_BYTES = 50 * 1024 * 1024


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def _file(path: Path | None) -> tuple[Path, int] | None:
    if path is None:
        return None
    if not path.is_file():
        raise CliError(f"invalid --file {path}: not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CliError(f"invalid --file {path}: {size} bytes; at most {MAX_FILE_BYTES} (50 MiB)")
    return path, size


def _keep(path: Path, state: Path) -> dict[str, Any]:
    """Copy the file under its SHA-256 into the state folder; its name is only shown, never used as a path."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    kept = state / "evidence-files" / sha
    if not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(".partial")
        shutil.copyfile(path, partial)
        partial.replace(kept)
    return {"file": path.name, "sha256": sha, "bytes": path.stat().st_size}


def cmd_add(args: argparse.Namespace) -> int:
    from connectors.register.coverage import SUPPLIED
    from connectors.register.store import RegisterError
    from schemas.trail import EvidenceRecord

    controls = annex_a_controls(args.control, "CONTROL")
    by = identity(args.by, "who supplies the evidence")
    note = checked_text(args.note, "--note", "say what the evidence is and where the original is kept")
    now = datetime.now(UTC)
    collected = _day_start(iso_date(args.collected, "--collected")) if args.collected else now
    if collected > now:
        raise CliError(f"invalid --collected {args.collected}: in the future; evidence is collected first")
    valid_until = _day_start(iso_date(args.valid_until, "--valid-until")) if args.valid_until else None
    if valid_until is not None and valid_until <= collected:
        raise CliError(f"invalid --valid-until {args.valid_until}: not after --collected; it was never valid")
    supplied = _file(args.file)
    settings = cli_settings()
    policy = load_policy(settings, "tell how long the evidence stays fresh")
    if valid_until is None:
        valid_until = collected + min(policy.evidence.max_age(c) for c in controls)
    register = open_register(settings)
    outcome: dict[str, Any] = {"note": note, "supplied_by": by}
    if supplied is not None:
        outcome.update(_keep(supplied[0], settings.state_path))
    record = EvidenceRecord(
        event_key=f"supplied:{uuid.uuid4()}",
        flow=SUPPLIED,
        event_type="org.aims.evidence.supplied",
        subject=controls[0],
        recorded_at=now,
        collected_at=collected,
        valid_until=valid_until,
        controls=controls,
        outcome=outcome,
        event={},
    )
    try:
        with register.unit_of_work(f"cli:{by}") as uow:
            uow.evidence.add(record)
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        dump(record)
        return 0
    fresh_for = (valid_until - now) if valid_until > now else timedelta(0)
    print(
        f"recorded evidence for {', '.join(controls)} supplied by {by}: collected {collected:%Y-%m-%d}, "
        f"valid until {valid_until:%Y-%m-%d} ({fresh_for.days} days from now)",
        file=sys.stdout,
    )
    return 0


def add_parser(sub: Any) -> None:
    add = sub.add_parser(
        "add",
        help="record evidence a person supplies for Annex A controls",
        description="Evidence a person supplies (a signed policy, a training record, a drill report): "
        "when it was collected, until when it is valid, who supplied it, and a copy of the file.",
    )
    add.add_argument("control", nargs="+", metavar="CONTROL", help="Annex A control ids, e.g. A.2.3")
    add.add_argument("--by", metavar="EMAIL", help="who supplies it (default: your login name)")
    add.add_argument("--note", required=True, help="what the evidence is and where the original is kept")
    add.add_argument("--file", type=Path, metavar="FILE", help="the evidence itself: hashed and kept")
    add.add_argument("--collected", metavar="DATE", help="when it was collected (YYYY-MM-DD; default: now)")
    add.add_argument(
        "--valid-until",
        metavar="DATE",
        help="until when it is valid (default: the policy's shortest maximum age of its controls)",
    )
    add.add_argument("--json", action="store_true")
    add.set_defaults(handler=cmd_add)
