"""`aims dq show|check|accept-baseline`: one data-quality result in full, a check asked for now, and a
drafted baseline suite accepted as the reviewed one.

`check` stages a data-changed event for a version the register holds (where it was read, as its
first event named it) in the outbox and sends it, as `aims review request` does; the router starts
check-data-quality for it. There is no check-requested event in the contract, and none is needed: a
data-changed event of a version already checked re-checks it, its result replacing the old one.
`accept-baseline` goes through `flows.commands.handle` (an `AcceptBaseline` command), proven by the OS
login as `aims approvals` decisions are.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aims import login as os_login
from aims.commands.common import (
    AddCommand,
    arg,
    cli_settings,
    dump,
    identity,
    load_policy,
    open_register,
    send_now,
    usage_only,
)
from aims.errors import CliError
from aims.tables import cell, fields, show

if TYPE_CHECKING:
    from schemas.events import DataChangedEvent
    from schemas.records import DatasetVersion
    from schemas.settings import AimsSettings


def _dataset(value: str) -> str:
    from schemas.payloads import FileId

    return arg(FileId, value, "DATASET")


def cmd_dq_show(args: argparse.Namespace) -> int:
    """`aims dq show RESULT`: verdict, suite, failed expectations with observed values and samples."""
    from flows.data_quality.views import docs_page, result_view
    from schemas.file_names import id_path
    from schemas.payloads import Name

    result_id = arg(Name, args.result, "RESULT")
    settings = cli_settings()
    with open_register(settings).reader() as uow:
        result = uow.data_quality.get(result_id)
        if result is None:
            raise CliError(
                f"no data-quality result {result_id!r} in the register; results are DATASET@VERSION, "
                "`aims datasets DATASET` lists them"
            )
        version = uow.dataset_versions.get(result.dataset_version_id)
    docs = None
    if version is not None:
        with contextlib.suppress(ValueError):  # a name that cannot be a folder has no site
            docs = docs_page(id_path(settings.state_path / "data-docs", version.dataset), version.version)
    view = result_view(result, version, docs)
    if args.json:
        dump(view)
        return 0
    stats = view["statistics"]
    print(
        fields(
            [
                ("result", view["result"]),
                ("verdict", view["verdict"]),
                ("version status", view["status"]),
                ("suite", f"{view['suite']} version {view['suite_version']} ({view['suite_status'] or '—'})"),
                ("checked", view["checked_at"][:19].replace("T", " ") + " UTC"),
                ("evaluated", f"{stats.get('evaluated', '—')} ({stats.get('unsuccessful', '—')} failed)"),
                ("read", stats.get("location") or view["location"]),
                ("sha256", view["content_hash"]),
                ("drift against", stats.get("reference_version") or stats.get("reference")),
                ("data docs", view["data_docs"] or "— (built by the flow run, in the state folder)"),
            ]
        )
    )
    if "error" in stats:
        print(f"\nnot checked: {cell(str(stats['error']), 2000)}")
    failed = view["failed"]
    print(f"\nfailed expectations ({len(failed)}):" if failed else "\nfailed expectations: none")
    for f in failed:
        observed = "" if f["observed"] is None else f" observed {cell(_short(f['observed']), 120)}"
        count = "" if f["unexpected_count"] is None else f", {f['unexpected_count']} unexpected"
        print(f"  {f['severity']:8} {cell(f['expectation'], 100)}{observed}{count}")
        if f["sample"]:
            print(f"           sample: {cell(', '.join(_short(v) for v in f['sample'][:10]), 200)}")
        if f["error"]:
            print(f"           error: {cell(str(f['error']), 200)}")
    drift = view["drift"]
    if drift:
        print("\ndrift:")
        show(
            [
                (c, d.get("level"), d.get("psi"), d.get("ks"))
                for c, d in sorted(drift.items())
                if isinstance(d, dict)
            ],
            ["column", "level", "psi", "ks"],
            [40, 10, 12, 12],
        )
    return 0


def _short(value: Any) -> str:
    return "null" if value is None else str(value)


# -- check -----------------------------------------------------------------------------------------


def _pick(versions: list[DatasetVersion], dataset: str, wanted: str | None) -> DatasetVersion:
    if not versions:
        raise CliError(
            f"no dataset {dataset!r} in the register; `aims datasets` lists them (nothing was sent)"
        )
    if wanted is None:
        return max(versions, key=lambda v: v.received_at)
    for v in versions:
        if v.version == wanted:
            return v
    known = ", ".join(v.version for v in sorted(versions, key=lambda v: v.received_at)[-10:])
    raise CliError(f"{dataset} has no version {wanted!r} in the register (latest: {known}); nothing was sent")


def check_event(version: DatasetVersion, by: str) -> DataChangedEvent:
    """A data-changed event of a recorded version, naming its data as its first event did."""
    import uuid

    from pydantic import ValidationError

    from aims.emit import explain
    from flows.data_quality.recheck import recheck_event

    try:
        return recheck_event(version, f"check:{uuid.uuid4()}", "urn:aims:cli", datetime.now(UTC))
    except ValidationError as exc:
        raise CliError(
            f"cannot ask for a check of {version.id}: the register's record of where it was read does not "
            f"make an event:\n{explain(exc)}\nsend one with `aims emit data-changed` (nothing was sent)"
        ) from None


def cmd_dq_check(args: argparse.Namespace) -> int:
    """`aims dq check DATASET [--version V]`: a data-changed event for a recorded version, now."""
    from connectors.register.outbox import stage
    from connectors.register.store import RegisterError
    from schemas.payloads import Name

    dataset = _dataset(args.dataset)
    wanted = arg(Name, args.version, "--version") if args.version is not None else None
    by = identity(args.by, "who asks for the check", "NAME")
    settings = cli_settings()
    register = open_register(settings)
    with register.reader() as uow:
        version = _pick(uow.dataset_versions.find(dataset=dataset), dataset, wanted)
    event = check_event(version, by)
    try:
        with register.unit_of_work(f"cli:{by}") as uow:
            keys = stage(uow, [event], settings.events_topic)
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    _announce(settings, keys, args.json, event, by)
    return 0


def _announce(
    settings: AimsSettings, keys: list[str], as_json: bool, event: DataChangedEvent, by: str
) -> None:
    done = "sent: check-data-quality checks it (its run shows in the Prefect UI)"
    if as_json:
        with contextlib.redirect_stdout(sys.stderr):
            send_now(settings, keys, done=done)
        dump({"requested_by": by, "key": keys[0], "event": event.model_dump(mode="json")})
        return
    data = event.data
    print(
        f"asked for a check of {cell(data.dataset_id, 256)} version {cell(data.version, 256)} "
        f"by {cell(by, 256)}"
    )
    send_now(settings, keys, done=done)


# -- accept-baseline ---------------------------------------------------------------------------------


def cmd_dq_accept(args: argparse.Namespace) -> int:
    """`aims dq accept-baseline DATASET --by EMAIL`: the drafted suite becomes the reviewed one."""
    from connectors.register.store import RegisterError
    from flows.commands import Actor, Context, cli_text, handle
    from flows.data_quality.commands import AcceptBaseline
    from flows.data_quality.views import suite_info
    from schemas.payloads import DecisionChannel
    from schemas.people import by_login
    from schemas.suites import suite_file

    dataset = _dataset(args.dataset)
    settings = cli_settings()
    login = os_login.operator_login()
    policy = load_policy(settings, "check who may accept a suite")
    if args.by is not None:
        by = identity(args.by, "who accepts the suite")
    elif login is not None and len(mine := by_login(policy.people, login)) == 1:
        by = mine[0]  # the one person the policy maps this login to
    else:
        raise CliError(f"cannot tell who accepts on login {login!r}: pass --by EMAIL")
    register = open_register(settings)
    try:
        path = suite_file(settings.suites_dir, dataset)
    except ValueError:
        raise CliError(
            f"{dataset!r} can have no suite file: nothing to accept (nothing was recorded)"
        ) from None
    with register.reader() as uow:
        if uow.datasets.get(dataset) is None:
            raise CliError(
                f"no dataset {dataset!r} in the register; `aims datasets` lists them (nothing was recorded)"
            )
    suite = suite_info(path)
    if suite["status"] != "baseline":
        why = {
            "missing": f"there is no suite file at {path}: a check drafts one from the first version",
            "invalid": f"the suite file is invalid; fix it first:\n{suite.get('problem')}",
            "reviewed": f"the suite at {path} is reviewed already (version {suite['version']})",
        }[suite["status"]]
        raise CliError(f"nothing to accept for {dataset}: {why} (nothing was recorded)")
    command = AcceptBaseline(
        actor=Actor(by, DecisionChannel.cli, login), dataset=dataset, suite_path=str(path)
    )
    try:
        verdict = handle(command, Context(register, policy, settings.events_topic))
    except RegisterError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(
            f"could not write the reviewed suite to {path}: {exc} (nothing was recorded)"
        ) from None
    text, code = cli_text(verdict, dataset, by)
    if code:
        raise CliError(text)
    if args.json:
        record = verdict.record.model_dump(mode="json") if verdict.record is not None else None  # type: ignore[attr-defined]
        dump({"status": verdict.status, "message": verdict.message, "review": record, "suite": str(path)})
        return 0
    print(cell(text, 1000))
    if verdict.accepted:
        print(
            f"{path} is the reviewed suite now; versions checked against the draft stay provisional: "
            f"`aims dq check {dataset}` checks the latest against the reviewed suite"
        )
    return 0


def add_commands(add: AddCommand) -> None:
    dq = add(
        "dq",
        usage_only,
        "Data quality: one result in full, a check asked for now, a drafted baseline suite accepted.",
    )
    sub = dq.add_subparsers(dest="dq_command", required=True, metavar="ACTION")
    one = sub.add_parser(
        "show",
        help="one result: verdict, failed expectations with observed values and samples, drift, Data Docs",
        description="One data-quality result (DATASET@VERSION, as `aims datasets DATASET` lists them).",
    )
    one.add_argument("result", metavar="RESULT")
    one.add_argument("--json", action="store_true")
    one.set_defaults(handler=cmd_dq_show)
    check = sub.add_parser(
        "check",
        help="ask for a check of a dataset's latest (or a given) version now, as a data-changed event",
        description="Publish a data-changed event for a version the register holds, naming its data as "
        "its first event did; the router starts check-data-quality for it.",
    )
    check.add_argument("dataset", metavar="DATASET")
    check.add_argument("--version", metavar="V", help="the version to check (default: the latest received)")
    check.add_argument("--by", metavar="NAME", help="who asks (default: your login name)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=cmd_dq_check)
    accept = sub.add_parser(
        "accept-baseline",
        help="make a dataset's drafted baseline suite its reviewed suite, recorded with who and when",
        description="Accept the drafted (baseline) suite of a dataset, as the file now reads, as its "
        "reviewed suite: the file gets `status: reviewed` and a new version. Checked like an approval "
        "from the CLI: your OS login must be one the policy lists for --by (people: EMAIL: logins), "
        "and only the dataset's owner accepts when it has one; a refusal is recorded and says why.",
    )
    accept.add_argument("dataset", metavar="DATASET")
    accept.add_argument(
        "--by",
        metavar="EMAIL",
        help="who accepts, as the policy lists them (default: the one person your OS login maps to)",
    )
    accept.add_argument("--json", action="store_true")
    accept.set_defaults(handler=cmd_dq_accept)
