"""What the ML platform does in MLflow, through MLflow's own client: run with MLflow's interpreter.

    MLFLOW_PYTHON tests/mlflow_client.py TRACKING_URI webhook URL SECRET
    MLFLOW_PYTHON tests/mlflow_client.py TRACKING_URI register NAME DATASET_URI [TAG=VALUE …]
    MLFLOW_PYTHON tests/mlflow_client.py TRACKING_URI alias NAME ALIAS VERSION
    MLFLOW_PYTHON tests/mlflow_client.py TRACKING_URI version NAME VERSION

Prints one JSON object (what was made) on stdout. Not a test module: MLflow lives in its own virtual
environment (its pins clash with ours), so the tests drive it through this script rather than
importing it (tests/mlflow_server.py).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

EVENTS = [
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
]


def webhook(client: Any, url: str, secret: str) -> dict[str, Any]:
    hook = client.create_webhook(name="aims", url=url, events=EVENTS, secret=secret)
    return {"webhook_id": hook.webhook_id}


def register(client: Any, name: str, dataset_uri: str, tags: list[str]) -> dict[str, Any]:
    """A run that logged a training dataset and an artifact, a registered model, a version of it."""
    import mlflow
    import pandas as pd

    mlflow.set_experiment("aims-tests")
    frame = pd.DataFrame({"income": [1.0, 2.0], "approved": [0, 1]})
    with mlflow.start_run() as run:
        dataset = mlflow.data.from_pandas(frame, source=dataset_uri, name="loans")
        mlflow.log_input(dataset, context="training")
        with tempfile.TemporaryDirectory() as folder:
            artifact = Path(folder) / "model.txt"
            artifact.write_text("not a real model")
            mlflow.log_artifact(str(artifact), artifact_path="model")
    model_tags = dict(tag.split("=", 1) for tag in tags)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name, tags=model_tags, description="registered by the tests")
    version = client.create_model_version(
        name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id, description="a test candidate"
    )
    return {"run_id": run.info.run_id, "version": version.version, "digest": dataset.digest}


def main(argv: list[str]) -> None:
    import mlflow
    from mlflow import MlflowClient

    tracking_uri, command, *args = argv
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    if command == "webhook":
        made = webhook(client, *args)
    elif command == "register":
        made = register(client, args[0], args[1], args[2:])
    elif command == "alias":
        client.set_registered_model_alias(args[0], args[1], args[2])
        made = {"alias": args[1]}
    elif command == "version":
        # What MLflow holds of a version now: its tags and the aliases pointing at it.
        found = client.get_model_version(args[0], args[1])
        made = {"tags": dict(found.tags), "aliases": sorted(found.aliases)}
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(made))


if __name__ == "__main__":
    main(sys.argv[1:])
