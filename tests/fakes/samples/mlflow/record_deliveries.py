"""Record real MLflow webhook deliveries as test samples (run with MLflow's own interpreter).

    .venv-mlflow/bin/python tests/fakes/samples/mlflow/record_deliveries.py OUT_DIR

(`.venv-mlflow` is what `make mlflow-venv` builds from requirements-mlflow.lock.)

Starts `mlflow server` on a loopback port with an SQLite backend store (MLflow sends webhooks only
from a database store, and to loopback only with the two MLFLOW_WEBHOOK_* variables below), a tiny
HTTP recorder beside it, and through MLflow's own client: a run with a logged input dataset, a
registered model, a version of it, a tag set and deleted, an alias set and deleted. Every delivery
the recorder receives is written with its headers and exact body, with the webhook's secret, so the
signature check can be tested against what a real server sent where no server is started. The REST
answers the gateway's enrichment reads (the version, its run) are written beside them.

Not a test: it needs MLflow, which lives in its own virtual environment (its pins clash with ours).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

SECRET = "sample-mlflow-webhook-secret"  # a test value, written into the samples on purpose
MODEL = "credit-scoring"
EVENTS = [
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
]


class Recorder(BaseHTTPRequestHandler):
    deliveries: ClassVar[list[dict[str, Any]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.lock:
            self.deliveries.append(
                {
                    "received_at": time.time(),
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": body.decode("utf-8"),
                }
            )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"mlflow server at {url} did not come up within {timeout} s")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def main(out: Path) -> None:
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    out.mkdir(parents=True, exist_ok=True)
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{recorder.server_address[1]}/mlflow/webhook"

    work = Path(tempfile.mkdtemp(prefix="mlflow-samples-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{work / 'mlflow.db'}",
            "--artifacts-destination",
            str(work / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=(work / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(url)
        mlflow.set_tracking_uri(url)
        client = MlflowClient(url)
        client.create_webhook(name="aims", url=hook_url, events=EVENTS, secret=SECRET)

        mlflow.set_experiment("credit")
        frame = pd.DataFrame({"income": [1.0, 2.0], "approved": [0, 1]})
        with mlflow.start_run() as run:
            dataset = mlflow.data.from_pandas(frame, source="s3://data/loans/2026-11-27.csv", name="loans")
            mlflow.log_input(dataset, context="training")
            mlflow.log_param("alpha", 0.5)
            artifact = work / "model.txt"
            artifact.write_text("not a real model")
            mlflow.log_artifact(str(artifact), artifact_path="model")
        run_id = run.info.run_id
        source = f"{run.info.artifact_uri}/model"

        client.create_registered_model(MODEL, tags={"aims.ai_system": "credit-scoring"})
        version = client.create_model_version(
            MODEL, source, run_id=run_id, tags={"team": "risk-ml"}, description="first candidate"
        )
        client.set_model_version_tag(MODEL, version.version, "validation", "passed")
        client.delete_model_version_tag(MODEL, version.version, "validation")
        client.set_registered_model_alias(MODEL, "production", version.version)
        client.delete_registered_model_alias(MODEL, "production")

        deadline = time.monotonic() + 30  # deliveries go from a thread pool, after the answer
        while len(Recorder.deliveries) < len(EVENTS) and time.monotonic() < deadline:
            time.sleep(0.2)

        rest = {
            "model_version": get_json(
                f"{url}/api/2.0/mlflow/model-versions/get?name={MODEL}&version={version.version}"
            ),
            "registered_model": get_json(f"{url}/api/2.0/mlflow/registered-models/get?name={MODEL}"),
            "run": get_json(f"{url}/api/2.0/mlflow/runs/get?run_id={run_id}"),
        }
    finally:
        server.terminate()
        server.wait(30)
        recorder.shutdown()

    samples = {
        "recorded_with": f"mlflow {mlflow.__version__}, sqlite backend store, loopback",
        "secret": SECRET,
        "deliveries": sorted(Recorder.deliveries, key=lambda d: d["received_at"]),
    }
    (out / "deliveries.json").write_text(json.dumps(samples, indent=2) + "\n")
    (out / "rest.json").write_text(json.dumps(rest, indent=2) + "\n")
    print(f"{len(Recorder.deliveries)} deliveries recorded in {out}; server log in {work / 'server.log'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
