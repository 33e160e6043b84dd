"""`aims mlflow [list] [--outcome O]`: what the gateway made of MLflow's model-registry webhooks;
`aims mlflow write-back SYSTEM [--dry-run]`: write the register's state onto its MLflow versions now.

Every delivery the gateway took is in the register (`WebhookDelivery`), so a model version that no
AI system claims is listed here as an unmapped candidate with its reasons, rather than lost: map it
in the policy's `mlflow.models` (or tag it) and register the version again.

The write-back runs after every assessment and decision (`write-back-to-mlflow`); when a run failed
for good (MLflow down longer than its retries), `write-back` does the same now, from the register,
with the same rules (flows/models/mlflow_writeback.py): it writes only what differs, so it is safe
to repeat. Each change MLflow makes is announced by its webhook and recorded by the gateway.
"""

from __future__ import annotations

import argparse

from aims.commands.common import (
    AddCommand,
    cli_settings,
    dump,
    empty,
    load_policy,
    open_register,
    utc_time,
)
from aims.errors import CliError
from aims.tables import show

OUTCOMES = ("onboarded", "unmapped", "recorded", "deployed-without-approval")


def cmd_mlflow_list(args: argparse.Namespace) -> int:
    filters = {"outcome": args.outcome} if args.outcome else {}
    with open_register(cli_settings()).reader() as uow:
        found = uow.webhook_deliveries.find(
            order_by="received_at", descending=True, sender="mlflow", **filters
        )
    if args.json:
        dump(found)
        return 0
    if not found:
        if filters:
            print(f"no MLflow deliveries with outcome {args.outcome}; `aims mlflow` lists them all")
            return 0
        return empty("MLflow deliveries", "point an MLflow webhook at the gateway's /mlflow/webhook")
    rows = [
        [
            utc_time(d.received_at),
            d.kind,
            d.subject,
            d.ai_system or "—",
            d.outcome,
            "; ".join(d.reasons) or "—",
        ]
        for d in found
    ]
    show(
        rows, ["received", "kind", "subject", "AI system", "outcome", "why"], widths=[20, 28, 40, 24, 26, 80]
    )
    return 0


def cmd_mlflow_write_back(args: argparse.Namespace) -> int:
    from connectors.mlflow_registry import RegistryAnswerInvalid, RegistryUnavailable, registry_from_settings
    from flows.models.mlflow_writeback import links_of, outcome_of, plan_of, write

    settings = cli_settings()
    policy = load_policy(settings, "write back to MLflow")
    with open_register(settings).reader() as uow:
        if uow.systems.get(args.system) is None:
            raise CliError(f"no AI system {args.system!r} in the inventory (`aims systems` lists them)")
        wanted = plan_of(uow, args.system, policy.mlflow.write_back, links_of(settings))
    if isinstance(wanted, str):
        print(f"nothing to write back: {wanted}")
        return 0
    mlflow = registry_from_settings(settings)
    if mlflow is None:
        raise CliError("no MLflow tracking server: set AIMS_MLFLOW_TRACKING_URI")
    try:
        outcome = outcome_of(args.system, wanted, write(mlflow, wanted, dry_run=args.dry_run))
    except (RegistryUnavailable, RegistryAnswerInvalid) as exc:
        raise CliError(f"MLflow: {exc}; nothing is lost, run it again") from None
    finally:
        mlflow.close()
    if args.json:
        dump(outcome)
        return 0
    changes = outcome["tags_set"] + outcome["aliases_changed"]
    verb = "would write" if args.dry_run else "wrote"
    tail = ":" if changes else " (up to date)"
    print(f"{verb} {len(changes)} change(s) to MLflow for {args.system}{tail}")
    for change in changes:
        print(f"  {change}")
    for why in outcome["not_cleared"]:
        print(f"  not cleared: {why}")
    return 0


def add_commands(add: AddCommand) -> None:
    mlflow = add(
        "mlflow",
        cmd_mlflow_list,
        "MLflow's model-registry webhooks as the gateway recorded them, newest first: new versions "
        "onboarded or unmapped (with why), alias and tag changes, deployments without approval.",
    )
    mlflow.add_argument("--outcome", choices=OUTCOMES, help="only these (unmapped: the candidates to map)")
    mlflow.add_argument("--json", action="store_true")
    msub = mlflow.add_subparsers(dest="mlflow_command", required=False, metavar="ACTION")
    mlist = msub.add_parser("list", help="every recorded delivery, newest first (the default)")
    mlist.add_argument("--outcome", choices=OUTCOMES, default=argparse.SUPPRESS)
    mlist.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    mlist.set_defaults(handler=cmd_mlflow_list)
    wb = msub.add_parser(
        "write-back",
        help="write the register's assessment and approval state (tags, the approved alias) onto the "
        "AI system's MLflow versions now: what the write-back-to-mlflow runs do, safe to repeat",
    )
    wb.add_argument("system", help="the AI system")
    wb.add_argument("--dry-run", action="store_true", help="read MLflow and say what would change")
    wb.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    wb.set_defaults(handler=cmd_mlflow_write_back)
