"""`aims mlflow [list] [--outcome O]`: what the gateway made of MLflow's model-registry webhooks.

Every delivery the gateway took is in the register (`WebhookDelivery`), so a model version that no
AI system claims is listed here as an unmapped candidate with its reasons, rather than lost: map it
in the policy's `mlflow.models` (or tag it) and register the version again.
"""

from __future__ import annotations

import argparse

from aims.commands.common import AddCommand, cli_settings, dump, empty, open_register, utc_time
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
