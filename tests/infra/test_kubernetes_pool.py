"""infra/deploy/prefect/kubernetes-pool.json, the base job template of a Prefect work pool of type
`kubernetes` (issue 23), holds to the application as the manifests of infra/deploy/k8s/ do.

Nothing here runs it (no cluster, and prefect-kubernetes is not a dependency). What is checked:
- Prefect's server accepts it (every placeholder a variable, every default of its variable's type),
  and it keeps what Prefect's kubernetes worker requires of a job manifest;
- the Job its variables' defaults render to, with Prefect's own templating, validates against
  Kubernetes' schemas at the versions tests/infra/test_manifests.py pins;
- the Job runs the image of the manifests, as the image's user, with the settings of the worker
  Deployment (k8s/worker.yaml): every variable a setting, secrets from Secrets of k8s/ only;
- its command is Prefect's, under the image's tini rather than the image's `aims` entrypoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from infra.prefect_server import prefect_client_env
from infra.unresponsive import heartbeat_env
from schemas.settings import AimsSettings
from tests.infra.test_manifests import (
    COMPONENTS,
    DEPLOY,
    ENTRYPOINT,
    KUBERNETES_VERSIONS,
    REPO,
    config_map,
    container,
    image_user,
    k8s_objects,
    one,
    pod_spec,
    secret_problems,
    strimzi_objects,
    unknown_variables,
)

# Prefect is imported inside the tests, never at the top: `pytest -m integration` collects this module
# too, and the session imports Prefect only after pointing its settings at its server (tests/conftest.py).
POOL = DEPLOY / "prefect" / "kubernetes-pool.json"
WHERE = "prefect/kubernetes-pool.json"
# The variables of prefect-kubernetes' worker (KubernetesWorkerVariables, 0.8.0): the template keeps
# them all, so that the job variables Prefect documents for a kubernetes pool mean the same here.
PREFECT_VARIABLES = frozenset(
    {
        "name",
        "env",
        "labels",
        "command",
        "annotations",
        "namespace",
        "image",
        "service_account_name",
        "image_pull_policy",
        "backoff_limit",
        "finished_job_ttl",
        "job_watch_timeout_seconds",
        "pod_watch_timeout_seconds",
        "stream_output",
        "cluster_config",
        "cpu_request",
        "cpu_limit",
        "memory_request",
        "memory_limit",
    }
)
# What prefect-kubernetes' worker refuses a job manifest without (_get_base_job_manifest, 0.8.0).
# `parallelism` and `completions` are Job fields it wants in the pod spec, where the API server
# drops them (the worker does not ask for strict field validation); the strict check below
# validates the Job without them.
WORKER_POD_FIELDS = {"parallelism": 1, "completions": 1, "restartPolicy": "Never"}
WORKER_CONTAINER = "prefect-job"
# Memory of one flow run's pod, in MiB (infra/serving.py): Prefect's `flow-run execute` (measured
# importing it: ~90 MB) beside the run's engine process, ~115 MB, ~350 MB for a data-quality check.
SUPERVISOR_MB, RUN_MB, DATA_QUALITY_MB = 90, 115, 350


def pool_template() -> dict[str, Any]:
    template: dict[str, Any] = json.loads(POOL.read_text(encoding="utf-8"))
    return template


def defaults(template: dict[str, Any]) -> dict[str, Any]:
    """The variables' defaults as Prefect's worker takes them (BaseJobConfiguration
    `_get_base_config_defaults`): a default of None counts as none, so its placeholder goes."""
    properties = template["variables"]["properties"]
    return {name: p["default"] for name, p in properties.items() if p.get("default") is not None}


def render(template: dict[str, Any]) -> dict[str, Any]:
    """The Job the worker starts from with the defaults, before it adds the run's own environment,
    labels and command: a placeholder without a value is removed with its key, as Prefect does."""
    from prefect.utilities.templating import apply_values

    rendered: dict[str, Any] = apply_values(template["job_configuration"]["job_manifest"], defaults(template))
    return rendered


def job_container(job: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(job)["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def job_env(template: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The rendered Job's variables, as test_manifests' checks take them."""
    return [(WHERE, list(job_container(render(template)).get("env", [])))]


def mebibytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match, f"{quantity}: not in Mi or Gi"
    return int(match[1]) * (1024 if match[2] == "Gi" else 1)


def millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(quantity) * 1000


# -- Prefect takes it -------------------------------------------------------------------------------


def test_prefects_server_accepts_the_template() -> None:
    from prefect.server.schemas.actions import WorkPoolCreate

    template = pool_template()
    WorkPoolCreate(name="aims-kubernetes", type="kubernetes", base_job_template=template)
    assert template["variables"]["properties"].keys() == PREFECT_VARIABLES
    # Every default is of its variable's type, as a deployment's job variables must be.
    jsonschema.validate(defaults(template), template["variables"])
    # A placeholder without its variable, or a default of another type, is refused.
    broken = pool_template()
    broken["job_configuration"]["job_manifest"]["spec"]["backoffLimit"] = "{{ backof_limit }}"
    with pytest.raises(ValueError, match="backof_limit"):
        WorkPoolCreate(name="aims-kubernetes", type="kubernetes", base_job_template=broken)
    broken = pool_template()
    broken["variables"]["properties"]["finished_job_ttl"]["default"] = "1h"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(defaults(broken), broken["variables"])


def test_the_template_keeps_what_prefects_kubernetes_worker_requires() -> None:
    configuration = pool_template()["job_configuration"]
    manifest = configuration["job_manifest"]
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "Job")
    pod = pod_spec(manifest)
    assert {key: pod.get(key) for key in WORKER_POD_FIELDS} == WORKER_POD_FIELDS
    assert job_container(manifest)["name"] == WORKER_CONTAINER
    # The worker puts the run's command in `args` and the run's environment (API URL, flow run id)
    # before the env written here; the run's name, labels and namespace come from the variables.
    assert job_container(manifest)["args"] == "{{ command }}"
    assert configuration["command"] == "{{ command }}" and configuration["env"] == "{{ env }}"
    assert manifest["metadata"]["generateName"] == "{{ name }}-"
    assert configuration["namespace"] == manifest["metadata"]["namespace"] == "{{ namespace }}"


# -- the Job ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_rendered_job_validates_against_the_api_schemas(version: str) -> None:
    from prefect.utilities.templating import find_placeholders

    job = render(pool_template())
    assert not find_placeholders(json.dumps(job)), "a placeholder left in the rendered Job"
    unexpected = "'completions', 'parallelism' were unexpected"
    with pytest.raises(kubernetes_validate.ValidationError, match=unexpected):
        kubernetes_validate.validate(job, version, strict=True)
    for key in ("parallelism", "completions"):  # the worker's, dropped by the API server
        job["spec"]["template"]["spec"].pop(key)
    kubernetes_validate.validate(job, version, strict=True)
    job["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError, match="volumeMount"):
        kubernetes_validate.validate(job, version, strict=True)


def test_the_job_runs_prefects_command_under_the_images_tini() -> None:
    from prefect.workers.base import BaseJobConfiguration

    template = pool_template()
    main = job_container(render(template))
    # The image's entrypoint is tini → `aims`: left to it, the worker's args would be `aims prefect
    # flow-run execute`. The Job keeps tini (PID 1 reaps the engine process the command starts).
    assert main["command"] == ENTRYPOINT[:-1] and ENTRYPOINT[-1] == "aims"
    assert "args" not in main and template["variables"]["properties"]["command"].get("default") is None
    # What the worker then puts in args: `prefect`, on the image's PATH from the locked runtime.
    assert BaseJobConfiguration._base_flow_run_command().split()[0] == "prefect"
    assert re.search(r"^prefect==", (REPO / "requirements.lock").read_text(encoding="utf-8"), re.MULTILINE)


def test_the_job_is_the_worker_deployments_pod_for_one_run() -> None:
    job = render(pool_template())
    pod, main = pod_spec(job), job_container(job)
    worker_pod, worker = pod_spec(one("Deployment", "aims-worker")), container("worker")
    # The manifests' image, run as the image's user, non-root, with the worker's security settings.
    assert {container(c)["image"] for c in COMPONENTS} == {main["image"]}
    assert pod["securityContext"] == worker_pod["securityContext"]
    assert str(pod["securityContext"]["runAsUser"]) == image_user()
    assert main["securityContext"] == worker["securityContext"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    # The flow's settings: the ConfigMap and the worker's variables (its Kafka user among them) …
    assert main["envFrom"] == worker["envFrom"]
    names = {e["name"] for e in worker["env"]}
    assert [e for e in main["env"] if e["name"] in names] == worker["env"]
    # … and Prefect's home in the state folder, which `aims worker` derives from AIMS_STATE_DIR for
    # its flow-run processes (use_prefect), and their heartbeats (infra.unresponsive); `prefect
    # flow-run execute` does neither, so the Job says it.
    state = config_map()["AIMS_STATE_DIR"]
    client = prefect_client_env(Path(state), config_map()["PREFECT_API_URL"])
    extra = {e["name"]: e["value"] for e in main["env"] if e["name"] not in names}
    heartbeat = int(config_map().get("AIMS_FLOW_HEARTBEAT_SECONDS", AimsSettings().flow_heartbeat_seconds))
    assert extra == {k: client[k] for k in ("PREFECT_HOME", "PREFECT_LOCAL_STORAGE_PATH")} | heartbeat_env(
        heartbeat
    )
    # The state folder and /tmp on emptyDirs (the root filesystem is read-only), the Kafka CA mounted.
    assert main["volumeMounts"] == worker["volumeMounts"] and pod["volumes"] == worker_pod["volumes"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert volumes[mounts[state]]["emptyDir"] == {} and volumes[mounts["/tmp"]]["emptyDir"] == {}
    # A run talks to Prefect, Kafka and the register, never to the Kubernetes API.
    assert pod["automountServiceAccountToken"] is False


def test_the_job_names_only_config_maps_and_secrets_of_the_manifests() -> None:
    job = render(pool_template())
    main = job_container(job)
    config_maps = {d["metadata"]["name"] for d in k8s_objects() if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"] for d in k8s_objects() if d["kind"] == "Secret"}
    # Strimzi writes one Secret per KafkaUser and the cluster CA's (infra/deploy/strimzi/).
    strimzi = {u["metadata"]["name"] for u in strimzi_objects("KafkaUser")} | {"aims-kafka-cluster-ca-cert"}
    assert {ref["configMapRef"]["name"] for ref in main["envFrom"]} <= config_maps
    named = {e["valueFrom"]["secretKeyRef"]["name"] for e in main["env"] if "valueFrom" in e}
    named |= {v["secret"]["secretName"] for v in pod_spec(job)["volumes"] if "secret" in v}
    assert named and named <= secrets | strimzi
    assert secret_problems(job_env(pool_template())) == []


def test_a_secret_in_the_template_as_a_value_or_from_an_unknown_key_fails() -> None:
    template = pool_template()
    env = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "AIMS_EVENT_SIGNING_KEY", "value": "0" * 64})
    env.append({"name": "AIMS_SLACK_SIGNING_SECRET", "value": "REPLACE-ME"})
    ref = {"name": "aims-secrets", "key": "AIMS_JIRA_TOKEN"}  # the key is AIMS_JIRA_API_TOKEN
    env.append({"name": "AIMS_JIRA_API_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    assert secret_problems(job_env(template)) == [
        f"{WHERE}: AIMS_EVENT_SIGNING_KEY as a literal value",
        f"{WHERE}: AIMS_SLACK_SIGNING_SECRET as a literal value",
        f"{WHERE}: AIMS_JIRA_API_TOKEN from {ref}, not in the template",
    ]


def test_every_variable_the_job_sets_is_a_setting() -> None:
    assert unknown_variables(job_env(pool_template())) == []


def test_a_template_naming_a_setting_the_application_lacks_fails() -> None:
    template = pool_template()
    env = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "AIMS_STATE_DIRECTORY", "value": "/var/lib/aims"})  # AIMS_STATE_DIR
    env.append({"name": "KAFKA_SASL_USER", "value": "aims-worker"})  # KAFKA_SASL_USERNAME
    env.append({"name": "PREFECT_LOCAL_STORAGE", "value": "/var/lib/aims/prefect/storage"})  # _PATH
    assert unknown_variables(job_env(template)) == [
        f"{WHERE}: AIMS_STATE_DIRECTORY",
        f"{WHERE}: KAFKA_SASL_USER",
        f"{WHERE}: PREFECT_LOCAL_STORAGE",
    ]


def test_a_pod_holds_one_run_and_goes_after_a_while() -> None:
    job = render(pool_template())
    resources = job_container(job)["resources"]
    requests, limits = resources["requests"], resources["limits"]
    # Requested: a plain run; the limit: a data-quality check (estimates, never measured on a cluster).
    assert mebibytes(requests["memory"]) >= SUPERVISOR_MB + RUN_MB
    assert mebibytes(limits["memory"]) >= SUPERVISOR_MB + DATA_QUALITY_MB
    assert millicores(limits["cpu"]) >= millicores(requests["cpu"]) > 0
    # Prefect, not Kubernetes, retries a run (an evicted pod's run is rescheduled), and the finished
    # Job is deleted after a while (the run's logs and state are in Prefect).
    assert job["spec"]["backoffLimit"] == 0
    assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 7 * 24 * 3600
