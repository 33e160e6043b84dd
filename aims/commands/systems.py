"""`aims systems [NAME]`: the AI system inventory, or one system with its versions, risks, incidents."""

from __future__ import annotations

import argparse

from aims.commands.common import AddCommand, cli_settings, dump, empty, open_register
from aims.errors import CliError
from aims.tables import fields, show


def cmd_systems(args: argparse.Namespace) -> int:
    register = open_register(cli_settings())
    with register.reader() as uow:
        if args.name:
            system = uow.systems.one(args.name) if uow.systems.get(args.name) else None
            if system is None:
                raise CliError(f"no AI system {args.name!r} in the register; `aims systems` lists them")
            versions = uow.model_versions.find(system=args.name, order_by="registered_at")
            risks = uow.risks.find(system=args.name, order_by="category")
            incidents = uow.incidents.find(system=args.name, order_by="detected_at")
            if args.json:
                dump(
                    {
                        "system": system.model_dump(mode="json"),
                        "model_versions": [v.model_dump(mode="json") for v in versions],
                        "risks": [r.model_dump(mode="json") for r in risks],
                        "incidents": [i.model_dump(mode="json") for i in incidents],
                    }
                )
                return 0
            print(fields(list(system.model_dump().items())))
            print(f"\nmodel versions ({len(versions)}):")
            for v in versions:
                print(f"  {v.model_name} v{v.version}  by {v.submitted_by}  {v.registered_at:%Y-%m-%d %H:%M}")
            print(
                f"risks ({len(risks)}): "
                + (", ".join(f"{r.category}={r.residual_level}" for r in risks) or "none")
            )
            print(f"incidents ({len(incidents)}): " + (", ".join(i.id for i in incidents) or "none"))
            return 0
        systems = uow.systems.find(order_by="name")
    if args.json:
        dump(systems)
        return 0
    if not systems:
        return empty("AI systems", "a model-version-registered event adds its system (`aims emit`)")
    show(
        [
            (s.name, s.owner, s.lifecycle_stage, s.risk_tier or "not assessed", s.intended_use)
            for s in systems
        ],
        ["name", "owner", "stage", "risk tier", "intended use"],
        [30, 24, 12, 14, 50],
    )
    return 0


def add_commands(add: AddCommand) -> None:
    systems = add("systems", cmd_systems, "List the AI system inventory, or show one system.")
    systems.add_argument("name", nargs="?")
    systems.add_argument("--json", action="store_true")
