"""`aims datasets [NAME]`: datasets with their versions, verdicts, drift, the suite used and its review."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from aims.commands.common import AddCommand, arg, cli_settings, dump, empty, load_policy, open_register
from aims.errors import CliError
from aims.tables import cell, fields, show

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas.policy import Policy
    from schemas.settings import AimsSettings


def dataset_document(
    uow: UnitOfWork, name: str, settings: AimsSettings, policy: Policy | None
) -> dict[str, Any]:
    """One dataset as `flows.data_quality.views.dataset_view` has it; CliError when there is none."""
    from flows.data_quality.suite_review import owner_of
    from flows.data_quality.views import dataset_view, suite_info
    from schemas.suites import suite_file

    dataset = uow.datasets.get(name)
    if dataset is None:
        raise CliError(f"no dataset {name!r} in the register; `aims datasets` lists them")
    versions = uow.dataset_versions.find(dataset=name)
    results = [r for v in versions for r in uow.data_quality.find(dataset_version_id=v.id)]
    reviews = uow.suite_reviews.find(dataset=name)
    owner = owner_of(dataset.owner, versions, policy.data_sources if policy is not None else {})
    try:
        suite = suite_info(suite_file(settings.suites_dir, name))
    except ValueError as exc:  # a dataset id from an event that can name no suite file
        suite = {"path": None, "status": "invalid", "version": None, "expectations": 0, "problem": str(exc)}
    return dataset_view(dataset, versions, results, reviews, suite, owner)


def _policy_or_none(settings: AimsSettings) -> Policy | None:
    """The policy, for data-source owners; without a readable one the listing still shows the rest."""
    try:
        return load_policy(settings, "read the data sources' owners")
    except CliError:
        return None


def cmd_datasets(args: argparse.Namespace) -> int:
    from schemas.payloads import FileId

    settings = cli_settings()
    name = arg(FileId, args.name, "NAME") if args.name is not None else None
    policy = _policy_or_none(settings)
    register = open_register(settings)
    with register.reader() as uow:
        names = [name] if name is not None else [d.name for d in uow.datasets.find(order_by="name")]
        docs = [dataset_document(uow, n, settings, policy) for n in names]
    if name is not None:
        return _show(docs[0], args.json)
    if args.json:
        dump({"datasets": docs})
        return 0
    if not docs:
        return empty("datasets", "a data-changed event starts the first check (`aims emit data-changed …`)")
    show(
        [
            (
                d["name"],
                d["owner"],
                f"{d['suite']['status']} {d['suite']['version'] or ''}".strip(),
                len(d["versions"]),
                d["versions"][0]["version"] if d["versions"] else None,
                d["versions"][0]["status"] if d["versions"] else None,
                d["versions"][0]["verdict"] if d["versions"] else None,
                d["reference"],
                len(d["provisional"]),
            )
            for d in docs
        ],
        ["dataset", "owner", "suite", "versions", "latest", "status", "verdict", "reference", "provisional"],
        [28, 30, 24, 8, 16, 11, 10, 16, 11],
    )
    return 0


def _show(doc: dict[str, Any], as_json: bool) -> int:
    if as_json:
        dump(doc)
        return 0
    suite = doc["suite"]
    print(
        fields(
            [
                ("dataset", doc["name"]),
                ("owner", doc["owner"] or "— (set `owner` on its data source in the policy)"),
                ("suite", f"{suite['path']} ({suite['status']}, version {suite['version'] or '—'})"),
                ("drift reference", doc["reference"] or "none yet (no accepted version)"),
                ("accepted by", doc["accepted_by"]),
            ]
        )
    )
    if suite.get("problem"):
        print(f"\nthe suite file is invalid:\n{cell(suite['problem'], 2000)}")
    print(f"\nversions ({len(doc['versions'])}, newest first):")
    show(
        [
            (
                v["version"],
                v["status"],
                v["verdict"],
                f"{v['suite_version'] or '—'} ({v['suite_status'] or '—'})",
                f"{len(v['failed_critical'])} critical, {len(v['failed_warning'])} warning",
                v["drifted"],
                v["reference_version"],
                v["result"],
            )
            for v in doc["versions"]
        ],
        ["version", "status", "verdict", "suite", "failed", "drift in", "vs", "result"],
        [16, 11, 10, 24, 22, 30, 16, 40],
    )
    for v in doc["versions"]:
        for severity in ("critical", "warning"):
            for expectation in v[f"failed_{severity}"]:
                print(f"  {cell(v['version'], 40)}: {severity} {cell(expectation, 200)}")
    if doc["reviews"]:
        print("\nsuite review:")
    for r in doc["reviews"]:
        what = "reminded" if r["kind"] == "reminder" else "accepted" if r["accepted"] else "REFUSED"
        why = f": {r['refusal']}" if r["refusal"] else f": {r['note']}" if r["note"] else ""
        print(
            cell(
                f"  {r['at'][:16]} {what} {r['suite_version']} — "
                f"{r['by'] or 'nobody'} via {r['channel']}{why}",
                300,
            )
        )
    if suite["status"] == "baseline":
        print(
            f"\nthe suite is a drafted baseline: versions checked against it are provisional and none is a "
            "drift reference until it is reviewed — "
            f"`aims dq accept-baseline {cell(doc['name'], 256)} --by EMAIL`"
        )
    return 0


def add_commands(add: AddCommand) -> None:
    datasets = add(
        "datasets",
        cmd_datasets,
        "Datasets: each with its owner, suite, versions, verdicts and drift reference (the default), "
        "or one in full with every version's verdict, drift and suite, and the suite's review.",
    )
    datasets.add_argument("name", metavar="NAME", nargs="?", help="one dataset in full")
    datasets.add_argument("--json", action="store_true")
