"""`aims emit` and `aims schemas export`: publishing an event, and the contract producers validate against."""

from __future__ import annotations

import argparse
from pathlib import Path

from aims.commands.common import AddCommand, cli_settings, usage_only
from aims.errors import CliError


def cmd_emit(args: argparse.Namespace) -> int:
    from aims.emit import build_event

    settings = cli_settings()
    event = build_event(
        args.type,
        args.data or [],
        args.file,
        subject=args.subject,
        source=args.source,
        event_id=args.id,
    )
    if args.dry_run:
        print(event.model_dump_json(indent=2, exclude_none=True))
        return 0
    from aims.endpoints import resolve
    from events.producer import EventPublisher
    from schemas.signing import SigningKeyMissing

    endpoints = resolve(settings)
    publisher = EventPublisher(endpoints.kafka, settings.events_topic, signing_key=settings.event_signing_key)
    try:
        partition = publisher.publish(event, mode="binary" if args.binary else "structured")
    except SigningKeyMissing as exc:
        raise CliError(str(exc)) from None
    finally:
        publisher.close()
    print(f"published {event.type} id={event.id} subject={event.key} → {settings.events_topic}[{partition}]")
    return 0


def cmd_schemas_export(args: argparse.Namespace) -> int:
    from schemas.export import export_json_schemas

    for path in export_json_schemas(args.directory):
        print(path)
    return 0


def add_commands(add: AddCommand) -> None:
    emit = add("emit", cmd_emit, "Publish an event from flags or from a JSON file.")
    emit.add_argument("type", nargs="?", help="model-version-registered | data-changed | incident-reported")
    emit.add_argument(
        "-d",
        "--data",
        action="append",
        metavar="FIELD=VALUE",
        help="a data field; dotted names nest (location.uri=…); JSON values allowed",
    )
    emit.add_argument("-f", "--file", type=Path, help="a whole CloudEvent, or its data when TYPE is given")
    emit.add_argument("--subject", help="defaults to the AI system or dataset in the data")
    emit.add_argument("--source", default="urn:aims:cli", help="CloudEvents source (default %(default)s)")
    emit.add_argument("--id", help="event id (default: a new UUID); reuse one to test redelivery")
    emit.add_argument("--binary", action="store_true", help="binary content mode (ce_ headers)")
    emit.add_argument("--dry-run", action="store_true", help="validate and print, publish nothing")

    schemas = add("schemas", usage_only, "Event contract tools.")
    ssub = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    export = ssub.add_parser("export", help="write the JSON Schemas producers validate against")
    export.add_argument("directory", type=Path)
    export.set_defaults(handler=cmd_schemas_export)
