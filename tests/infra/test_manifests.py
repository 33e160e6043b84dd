"""The deployment files in infra/deploy/ validate, and agree with the application: every variable they
set is a setting it has, their commands and probes are commands it has, the Strimzi topics are
`topic_specs`, the secrets come from Secrets, and the two ways to run the worker (k8s/worker.yaml,
Prefect's worker chart) say the same.

Nothing here runs the files (no container engine, no cluster). What validates against what:
- every Kubernetes object of k8s/, and the Kubernetes parts of the Helm values (env, volumes,
  resources, probes: what the charts' templates copy into their Deployments), against Kubernetes'
  own OpenAPI schemas, offline and strict (no unknown field), with kubernetes-validate at the
  versions KUBERNETES_VERSIONS pins;
- the Strimzi resources against JSON Schemas of their CRDs written in tests/infra/strimzi_schemas.py
  (kubernetes-validate has no custom resources, and Strimzi's CRD files are not reachable offline);
- the Helm values' keys and types against the list of the charts' keys kept here (CHART_KEYS), read
  from the charts' values.yaml and values.schema.json by hand: the charts themselves are not
  reachable offline, so a new key must be checked against the chart and added there.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel, SecretStr

from events.topics import topic_specs
from infra.prefect_server import prefect_client_env
from schemas.settings import FILE_SUFFIX, AimsSettings, env_names, environment_values
from tests.infra.strimzi_schemas import ACL_OPERATIONS, SCHEMAS

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "infra" / "deploy"
K8S = DEPLOY / "k8s"
HELM = DEPLOY / "helm"
STRIMZI = DEPLOY / "strimzi"

# The oldest Kubernetes the manifests are for, and the newest kubernetes-validate (>=1.37, the dev
# extra) carries: both must accept every object (an API removed in between would fail the newer).
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
ENTRYPOINT = ["/usr/bin/tini", "--", "aims"]
COMPONENTS = ("router", "worker", "gateway")
# Prefect's worker health server (`aims worker --with-healthcheck`): PREFECT_WORKER_WEBSERVER_PORT's
# default, and the port the worker chart's liveness probe asks.
WORKER_HEALTH_PORT = 8080


# -- reading -----------------------------------------------------------------------------------


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in documents(path)]


def strimzi_objects(kind: str | None = None) -> list[dict[str, Any]]:
    docs = [doc for path in sorted(STRIMZI.glob("*.yaml")) for doc in documents(path)]
    return [doc for doc in docs if kind is None or doc["kind"] == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in k8s_objects() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found in {K8S}"
    return found[0]


def config_map() -> dict[str, str]:
    return dict(one("ConfigMap", "aims-config")["data"])


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["spec"]["template"]["spec"])


def container(component: str) -> dict[str, Any]:
    containers = pod_spec(one("Deployment", f"aims-{component}"))["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def migration_job() -> dict[str, Any]:
    return one("Job", "aims-register-upgrade")


def worker_chart() -> dict[str, Any]:
    return dict(yaml.safe_load((HELM / "prefect-worker.values.yaml").read_text(encoding="utf-8")))


def server_chart() -> dict[str, Any]:
    return dict(yaml.safe_load((HELM / "prefect-server.values.yaml").read_text(encoding="utf-8")))


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, without comments and blank lines."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def image_user() -> str:
    """The user the image runs as: its last USER."""
    users = [line.split()[1] for line in dockerfile_lines() if line.startswith("USER ")]
    assert users, "the Dockerfile sets no USER"
    return users[-1]


def aims_parser() -> Any:
    from aims.cli import build_parser

    return build_parser()[0]


# -- the settings the application has ------------------------------------------------------------


def _is_secret(field: Any) -> bool:
    return field.annotation is SecretStr or SecretStr in getattr(field.annotation, "__args__", ())


def setting_variables() -> dict[str, str]:
    """Every variable the settings are read from, to its field: AIMS_<FIELD> or the field's aliases
    (env_names), and `<variable>_FILE` for secrets (read from a mounted file)."""
    variables: dict[str, str] = {}
    for name, field in AimsSettings.model_fields.items():
        for variable in env_names(name, field):
            variables[variable] = name
            if _is_secret(field):
                variables[variable + FILE_SUFFIX] = name
    return variables


def secret_fields() -> set[str]:
    return {name for name, field in AimsSettings.model_fields.items() if _is_secret(field)}


@functools.cache
def prefect_variables() -> frozenset[str]:
    """Every PREFECT_* variable Prefect's settings read: each nested settings model's env_prefix and
    field name, and the fields' aliases (the installed Prefect's own model, not a list kept here)."""
    from prefect.settings import Settings

    names: set[str] = set()

    def walk(model: type[BaseModel]) -> None:
        prefix = str(model.model_config.get("env_prefix", ""))
        for name, field in model.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                walk(kind)
                continue
            names.add((prefix + name).upper())
            alias = field.validation_alias
            for choice in getattr(alias, "choices", [alias]):
                if isinstance(choice, str):
                    names.add(choice.upper())

    walk(Settings)
    return frozenset(names)


def pod_env(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, entry) of each variable a Deployment's or a Job's containers set."""
    pod = pod_spec(doc)
    for item in pod.get("containers", []) + pod.get("initContainers", []):
        for entry in item.get("env", []):
            yield entry["name"], entry


def env_sources() -> list[tuple[str, list[dict[str, Any]]]]:
    """Every place the files set variables for a process of the application or Prefect's server:
    (where, entries as {"name", "value"|"valueFrom"})."""
    sources: list[tuple[str, list[dict[str, Any]]]] = []
    for doc in k8s_objects():
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "ConfigMap":
            sources.append((where, [{"name": k, "value": v} for k, v in doc["data"].items()]))
        elif doc["kind"] in ("Deployment", "Job"):
            sources.append((where, [entry for _, entry in pod_env(doc)]))
    sources.append(("helm/prefect-worker", list(worker_chart()["worker"].get("extraEnvVars", []))))
    sources.append(("helm/prefect-server", list(server_chart()["server"].get("env", []))))
    return sources


def unknown_variables(sources: list[tuple[str, list[dict[str, Any]]]]) -> list[str]:
    """The variables `sources` set that nothing reads: AIMS_* and KAFKA_* must be settings of
    AimsSettings, PREFECT_* a setting of AimsSettings (PREFECT_API_URL…) or of Prefect itself; any
    other name is unknown."""
    ours = setting_variables().keys()
    return sorted(
        f"{where}: {entry['name']}"
        for where, entries in sources
        for entry in entries
        if entry["name"] not in ours
        and not (entry["name"].startswith("PREFECT_") and entry["name"] in prefect_variables())
    )


# -- tests: every file parses and validates --------------------------------------------------------


def test_every_manifest_parses_and_names_itself() -> None:
    paths = sorted([*K8S.glob("*.yaml"), *STRIMZI.glob("*.yaml")])
    assert {p.name for p in paths} >= {
        "configmap.yaml",
        "secret.template.yaml",
        "register-upgrade.yaml",
        "router.yaml",
        "worker.yaml",
        "gateway.yaml",
        "topics.yaml",
        "users.yaml",
    }
    for path in paths:
        docs = documents(path)
        assert docs, f"{path.name}: no document"
        for doc in docs:
            assert doc.get("apiVersion") and doc.get("kind"), f"{path.name}: apiVersion and kind"
    for path in HELM.glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict), path.name


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_kubernetes_objects_validate_against_the_api_schemas(version: str) -> None:
    objects = k8s_objects()
    assert {d["kind"] for d in objects} == {"ConfigMap", "Secret", "Deployment", "Service", "Job"}
    for doc in objects:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_refuses_a_misspelt_field() -> None:
    deployment = copy.deepcopy(one("Deployment", "aims-router"))
    probe = pod_spec(deployment)["containers"][0].pop("livenessProbe")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = probe
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def chart_worker_deployment(values: dict[str, Any]) -> dict[str, Any]:
    """The worker chart's Deployment as far as these values reach it: the parts its
    templates/deployment.yaml copies verbatim (command, args, env, envFrom, resources, the liveness
    probe's config beside its httpGet on 8080, volumes and mounts beside its own scratch volume)."""
    worker = values["worker"]
    probe = {"httpGet": {"path": "/health", "port": WORKER_HEALTH_PORT}, **worker["livenessProbe"]["config"]}
    scratch = [
        {"mountPath": "/home/prefect", "name": "scratch", "subPathExpr": "home"},
        {"mountPath": "/tmp", "name": "scratch", "subPathExpr": "tmp"},
    ]
    main = {
        "name": "prefect-worker",
        "image": f"{worker['image']['repository']}:{worker['image']['prefectTag']}",
        "command": worker["command"],
        "args": worker["args"],
        "env": worker["extraEnvVars"],
        "envFrom": [{"configMapRef": {"name": worker["extraEnvVarsCM"]}}],
        "resources": worker["resources"],
        "livenessProbe": probe if worker["livenessProbe"]["enabled"] else None,
        "volumeMounts": scratch + worker["extraVolumeMounts"],
    }
    labels = {"app.kubernetes.io/component": "worker"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "prefect-worker"},
        "spec": {
            "replicas": worker["replicaCount"],
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{k: v for k, v in main.items() if v is not None}],
                    "volumes": [{"name": "scratch", "emptyDir": {}}, *worker["extraVolumes"]],
                },
            },
        },
    }


def chart_server_deployment(values: dict[str, Any]) -> dict[str, Any]:
    """The server chart's Deployment as far as `server.env` and `server.resources` reach it."""
    server, image = values["server"], values["global"]["prefect"]["image"]
    labels = {"app.kubernetes.io/component": "server"}
    main = {
        "name": "prefect-server",
        "image": f"{image['repository']}:{image['prefectTag']}",
        "env": server["env"],
        "resources": server["resources"],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "prefect-server"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [main]}},
        },
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_kubernetes_parts_of_the_chart_values_validate(version: str) -> None:
    kubernetes_validate.validate(chart_worker_deployment(worker_chart()), version, strict=True)
    kubernetes_validate.validate(chart_server_deployment(server_chart()), version, strict=True)
    broken = worker_chart()
    broken["worker"]["extraVolumes"][0]["emptydir"] = broken["worker"]["extraVolumes"][0].pop("emptyDir")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(chart_worker_deployment(broken), version, strict=True)


def test_the_strimzi_resources_validate_against_their_crd_schemas() -> None:
    resources = strimzi_objects()
    assert {r["kind"] for r in resources} == {"KafkaTopic", "KafkaUser"}
    for resource in resources:
        jsonschema.validate(resource, SCHEMAS[resource["kind"]])


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("KafkaTopic", lambda r: r["spec"].update(partitons=4)),  # misspelt: the API server would drop it
        ("KafkaTopic", lambda r: r.update(apiVersion="kafka.strimzi.io/v1beta2")),  # not served by 1.x
        ("KafkaTopic", lambda r: r["spec"].update(replicas=0)),
        ("KafkaUser", lambda r: r["spec"]["authorization"]["acls"][0].update(operations=["Writes"])),
        ("KafkaUser", lambda r: r["spec"]["authentication"].update(type="scram-sha-256")),
        ("KafkaUser", lambda r: r["metadata"]["labels"].pop("strimzi.io/cluster")),
    ],
)
def test_the_strimzi_schemas_refuse_what_strimzi_would_not_take(kind: str, change: Any) -> None:
    resource = copy.deepcopy(strimzi_objects(kind)[0])
    change(resource)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(resource, SCHEMAS[kind])


# The charts' keys these values may set, with the type each chart's values.schema.json gives it,
# read by hand from PrefectHQ/prefect-helm (charts/prefect-worker and charts/prefect-server, main of
# 2026-08-18). Every key these files set must be here: a new one is checked against the chart first.
CHART_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "prefect-worker": {
        "worker.image.repository": str,
        "worker.image.prefectTag": str,
        "worker.command": list,
        "worker.args": list,
        "worker.config.workPool": str,
        "worker.config.type": str,
        "worker.config.queryInterval": int,
        "worker.apiConfig": str,
        "worker.selfHostedServerApiConfig.apiUrl": str,
        "worker.selfHostedServerApiConfig.basicAuth.enabled": bool,
        "worker.selfHostedServerApiConfig.basicAuth.existingSecret": str,
        "worker.replicaCount": int,
        "worker.resources": dict,
        "worker.livenessProbe.enabled": bool,
        "worker.livenessProbe.config.initialDelaySeconds": int,
        "worker.livenessProbe.config.periodSeconds": int,
        "worker.livenessProbe.config.timeoutSeconds": int,
        "worker.livenessProbe.config.failureThreshold": int,
        "worker.extraEnvVarsCM": str,
        "worker.extraEnvVars": list,
        "worker.extraVolumes": list,
        "worker.extraVolumeMounts": list,
    },
    "prefect-server": {
        "global.prefect.image.repository": str,
        "global.prefect.image.prefectTag": str,
        "server.basicAuth.enabled": bool,
        "server.basicAuth.existingSecret": str,
        "server.uiConfig.prefectUiApiUrl": str,
        "server.loggingLevel": str,
        "server.env": list,
        "server.resources": dict,
        "postgresql.enabled": bool,
        "sqlite.enabled": bool,
        "externalDatabase.existingSecret": str,
        "externalDatabase.connectionStringSecretKey": str,
        "service.type": str,
        "service.port": (int, str),
    },
}
# values.schema.json's enums for the keys set here.
CHART_ENUMS = {
    "worker.apiConfig": {"cloud", "customerManagedCloud", "selfHostedServer"},
    "server.loggingLevel": {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"},
}


def chart_problems(chart: str, values: dict[str, Any]) -> list[str]:
    """Keys of `values` the chart lacks, or of another type than its schema says."""
    keys = CHART_KEYS[chart]
    problems: list[str] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = prefix + key
            if path in keys:
                if (isinstance(value, bool) and keys[path] is int) or not isinstance(value, keys[path]):
                    problems.append(f"{path}: {type(value).__name__}, the chart wants {keys[path]}")
                elif path in CHART_ENUMS and value not in CHART_ENUMS[path]:
                    problems.append(f"{path}: {value!r} is none of {sorted(CHART_ENUMS[path])}")
            elif isinstance(value, dict) and any(k.startswith(path + ".") for k in keys):
                walk(value, path + ".")
            else:
                problems.append(f"{path}: not a key of the chart")

    walk(values, "")
    return problems


def test_the_chart_values_set_only_the_charts_keys() -> None:
    assert chart_problems("prefect-worker", worker_chart()) == []
    assert chart_problems("prefect-server", server_chart()) == []
    worker = worker_chart()
    worker["worker"]["config"]["queryIntervall"] = 1
    worker["worker"]["config"]["queryInterval"] = 0.5
    worker["worker"]["livenessProbe"]["enabled"] = "yes"
    server = server_chart()
    server["server"]["loggingLevel"] = "warn"
    assert chart_problems("prefect-worker", worker) + chart_problems("prefect-server", server) == [
        "worker.config.queryInterval: float, the chart wants <class 'int'>",
        "worker.config.queryIntervall: not a key of the chart",
        "worker.livenessProbe.enabled: str, the chart wants <class 'bool'>",
        "server.loggingLevel: 'warn' is none of ['CRITICAL', 'DEBUG', 'ERROR', 'INFO', 'WARNING']",
    ]


# -- tests: settings ----------------------------------------------------------------------------


def test_every_variable_a_manifest_sets_is_a_setting() -> None:
    sources = env_sources()
    assert {where for where, _ in sources} >= {
        "ConfigMap/aims-config",
        "Deployment/aims-router",
        "Deployment/aims-worker",
        "Deployment/aims-gateway",
        "Job/aims-register-upgrade",
        "helm/prefect-worker",
        "helm/prefect-server",
    }
    assert unknown_variables(sources) == []


def test_a_manifest_naming_a_setting_the_application_lacks_fails() -> None:
    sources = dict(env_sources())
    sources["Deployment/aims-router"].append({"name": "AIMS_NO_SUCH_SETTING", "value": "1"})
    sources["ConfigMap/aims-config"].append({"name": "AIMS_ROUTER_BATCH", "value": "100"})  # _SIZE
    sources["Job/aims-register-upgrade"].append({"name": "AIMS_DATABASE_URI", "value": "x"})
    sources["helm/prefect-worker"].append({"name": "KAFKA_SASL_PASSWD", "value": "x"})
    sources["helm/prefect-server"].append({"name": "PREFECT_SERVER_NO_SUCH_SETTING", "value": "x"})
    sources["Deployment/aims-worker"].append({"name": "PREFECT_WORKER_QUERY_SECS", "value": "1"})
    sources["Deployment/aims-gateway"].append({"name": "HTTP_PROXY", "value": "x"})  # read by nothing here
    assert unknown_variables(list(sources.items())) == [
        "ConfigMap/aims-config: AIMS_ROUTER_BATCH",
        "Deployment/aims-gateway: HTTP_PROXY",
        "Deployment/aims-router: AIMS_NO_SUCH_SETTING",
        "Deployment/aims-worker: PREFECT_WORKER_QUERY_SECS",
        "Job/aims-register-upgrade: AIMS_DATABASE_URI",
        "helm/prefect-server: PREFECT_SERVER_NO_SUCH_SETTING",
        "helm/prefect-worker: KAFKA_SASL_PASSWD",
    ]


def test_prefects_own_settings_are_known_by_prefects_model() -> None:
    known = prefect_variables()
    assert {"PREFECT_WORKER_QUERY_SECONDS", "PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED"} <= known
    assert {"PREFECT_WORKER_WEBSERVER_PORT", "PREFECT_API_AUTH_STRING"} <= known
    assert "PREFECT_NO_SUCH_SETTING" not in known


def cluster_settings(monkeypatch: pytest.MonkeyPatch) -> AimsSettings:
    """The settings the ConfigMap gives, whatever this machine's environment holds."""
    for variable in setting_variables():
        monkeypatch.delenv(variable, raising=False)
    values = environment_values(AimsSettings, config_map())
    # The user and password come per Deployment (from Strimzi's Secret); any will do to validate.
    return AimsSettings(**values, kafka_sasl_username="aims-router", kafka_sasl_password="x")


def test_the_config_map_holds_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = cluster_settings(monkeypatch)
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_create_topics is False  # strimzi/topics.yaml makes them; the router checks
    assert settings.prefect_api_url == worker_chart()["worker"]["selfHostedServerApiConfig"]["apiUrl"]
    assert settings.work_pool == worker_chart()["worker"]["config"]["workPool"]


def test_the_prefect_client_variables_come_from_the_settings_as_with_aims_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `aims router` and `aims worker` set them (use_prefect) from the same settings `aims up` gives
    # its children (child_env): the ConfigMap must not set them beside, or they would drift apart.
    settings = cluster_settings(monkeypatch)
    assert settings.prefect_api_url is not None
    derived = prefect_client_env(settings.state_path, settings.prefect_api_url, settings.worker_poll_seconds)
    assert derived["PREFECT_HOME"] == "/var/lib/aims/prefect"
    assert derived["PREFECT_WORKER_QUERY_SECONDS"] == "0.5"
    assert not (config_map().keys() & derived.keys()) - {"PREFECT_API_URL", "AIMS_STATE_DIR"}


def secret_template() -> dict[str, dict[str, str]]:
    """Each Secret of k8s/secret.template.yaml, to its keys and placeholders."""
    return {d["metadata"]["name"]: d["stringData"] for d in documents(K8S / "secret.template.yaml")}


def secret_problems(sources: list[tuple[str, list[dict[str, Any]]]]) -> list[str]:
    """Where `sources` (env entries of pods, not a ConfigMap's data) break "secrets come from Secrets":
    a secret setting given as a literal value, a ConfigMap key the ConfigMap lacks, a Secret key that
    neither the template nor Strimzi's User Operator (one Secret per KafkaUser, key `password`) has."""
    variables = setting_variables()
    secrets = secret_fields()
    template = secret_template()
    users = {u["metadata"]["name"] for u in strimzi_objects("KafkaUser")}
    problems: list[str] = []
    for where, entries in sources:
        for entry in entries:
            if variables.get(entry["name"]) in secrets and "value" in entry:
                problems.append(f"{where}: {entry['name']} as a literal value")
            source = entry.get("valueFrom", {})
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                if not (ref["name"] == "aims-config" and ref["key"] in config_map()):
                    problems.append(f"{where}: {entry['name']} from {ref}, not in the ConfigMap")
            ref = source.get("secretKeyRef")
            if ref is None:
                continue
            if ref["name"] in users:
                known = ref["key"] == "password"
            else:
                known = ref["key"] in template.get(ref["name"], {})
            if not known:
                problems.append(f"{where}: {entry['name']} from {ref}, not in the template")
    return problems


def test_secrets_come_only_from_secrets() -> None:
    variables = setting_variables()
    secrets = secret_fields()
    for name in config_map():
        assert variables.get(name) not in secrets, f"{name} is a secret: not in a ConfigMap"
    template = secret_template()
    assert secret_problems([s for s in env_sources() if not s[0].startswith("ConfigMap/")]) == []
    # The charts' own Secrets are in the template too.
    server = server_chart()
    database = server["externalDatabase"]
    assert database["connectionStringSecretKey"] in template[database["existingSecret"]]
    assert "auth-string" in template[server["server"]["basicAuth"]["existingSecret"]]
    # A template only: every value a placeholder.
    for name, data in template.items():
        for key, value in data.items():
            assert "REPLACE-ME" in value, f"{name}.{key} is not a placeholder"


# -- tests: what runs -------------------------------------------------------------------------------


def test_the_deployments_run_the_commands_aims_up_runs() -> None:
    parser = aims_parser()
    for component in COMPONENTS:
        args = container(component)["args"]
        assert args[0] == component  # infra/stack.py spawns `aims <component>`
        assert parser.parse_args(args).command == component
    # Strimzi's SCRAM users on its TLS listener: the process must log in as its own user.
    users = {u["metadata"]["name"] for u in strimzi_objects("KafkaUser")}
    for component in COMPONENTS:
        env = {e["name"]: e for e in container(component)["env"]}
        assert env["KAFKA_SASL_USERNAME"]["value"] == f"aims-{component}" in users
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": f"aims-{component}",
            "key": "password",
        }
    # The gateway never calls Prefect: no Prefect login for it.
    assert "PREFECT_API_AUTH_STRING" not in {e["name"] for e in container("gateway")["env"]}


def test_the_register_is_migrated_once_by_a_job_before_the_deployments() -> None:
    job = migration_job()
    pod = pod_spec(job)
    assert pod["restartPolicy"] == "Never" and len(pod["containers"]) == 1
    migrate = pod["containers"][0]
    args = aims_parser().parse_args(migrate["args"])
    assert (args.command, args.register_command) == ("register", "upgrade")
    assert migrate["image"] == container("router")["image"]
    # Only the register's URL and a state folder: no Kafka settings (their SASL_SSL would ask for a user).
    assert "envFrom" not in migrate
    assert {e["name"] for e in migrate["env"]} == {"AIMS_STATE_DIR", "AIMS_DATABASE_URL"}


def test_each_pod_has_its_own_state_folder_and_a_writable_tmp() -> None:
    state = config_map()["AIMS_STATE_DIR"]
    pods = [one("Deployment", f"aims-{c}") for c in COMPONENTS] + [migration_job()]
    for doc in pods:
        pod = pod_spec(doc)
        volumes = {v["name"]: v for v in pod["volumes"]}
        for item in pod["containers"]:
            assert item["securityContext"]["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"]: m["name"] for m in item["volumeMounts"]}
            # An emptyDir, never a shared volume: `aims probe` reads this pod's files only.
            assert volumes[mounts[state]] == {"name": mounts[state], "emptyDir": {}}, doc["metadata"]["name"]
            assert volumes[mounts["/tmp"]]["emptyDir"] == {}
    chart = worker_chart()["worker"]
    mounts = {m["mountPath"]: m["name"] for m in chart["extraVolumeMounts"]}
    assert {v["name"]: v for v in chart["extraVolumes"]}[mounts[state]]["emptyDir"] == {}


def probe_command(probe: dict[str, Any]) -> list[str]:
    command = list(probe["exec"]["command"])
    assert command[0] == "aims", command  # on the image's PATH (infra/deploy/Dockerfile)
    return command[1:]


def test_probes_resources_and_volumes_fit_the_configuration() -> None:
    data = config_map()
    ca_dir = str(Path(data["KAFKA_SSL_CAFILE"]).parent)
    parser = aims_parser()
    for component in COMPONENTS:
        c = container(component)
        assert {"cpu", "memory"} <= c["resources"]["requests"].keys() & c["resources"]["limits"].keys()
        assert ca_dir in {m["mountPath"] for m in c["volumeMounts"]}, component
        assert c["envFrom"] == [{"configMapRef": {"name": "aims-config"}}]
    # The router: `aims probe router`, a real command, for starting, ready and alive.
    router = container("router")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        args = parser.parse_args(probe_command(router[kind]))
        assert (args.command, args.component) == ("probe", "router"), kind
    # The worker: ready with `aims probe worker`; alive by Prefect's health check, which it serves.
    worker = container("worker")
    args = parser.parse_args(probe_command(worker["readinessProbe"]))
    assert (args.command, args.component) == ("probe", "worker")
    assert parser.parse_args(worker["args"]).with_healthcheck
    assert worker["ports"] == [{"name": "health", "containerPort": WORKER_HEALTH_PORT}]
    for kind in ("startupProbe", "livenessProbe"):
        assert worker[kind]["httpGet"] == {"path": "/health", "port": "health"}, kind
    from prefect.settings import Settings

    assert Settings().worker.webserver.port == WORKER_HEALTH_PORT  # none of the files changes it
    # The gateway: ready when /healthz reads the register.
    gateway = container("gateway")
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["ports"] == [{"name": "http", "containerPort": int(data["AIMS_GATEWAY_PORT"])}]
    assert data["AIMS_GATEWAY_HOST"] == "0.0.0.0"  # reachable from the Service, not loopback only


# -- tests: Prefect's charts ----------------------------------------------------------------------


def test_the_worker_chart_runs_the_same_worker_as_the_deployment() -> None:
    chart = worker_chart()["worker"]
    deployment = container("worker")
    assert chart["command"] + chart["args"] == ENTRYPOINT + deployment["args"]
    assert chart["extraEnvVarsCM"] == deployment["envFrom"][0]["configMapRef"]["name"]
    # The chart sets PREFECT_API_AUTH_STRING itself from basicAuth.existingSecret (key auth-string).
    deployment_env = [e for e in deployment["env"] if e["name"] != "PREFECT_API_AUTH_STRING"]
    assert chart["extraEnvVars"] == deployment_env
    auth = next(e for e in deployment["env"] if e["name"] == "PREFECT_API_AUTH_STRING")
    assert auth["valueFrom"]["secretKeyRef"] == {
        "name": chart["selfHostedServerApiConfig"]["basicAuth"]["existingSecret"],
        "key": "auth-string",
    }
    assert chart["apiConfig"] == "selfHostedServer"
    assert chart["resources"] == deployment["resources"]
    # Its liveness probe is Prefect's health check, which `--with-healthcheck` serves.
    assert chart["livenessProbe"]["enabled"] is True and "--with-healthcheck" in chart["args"]
    # The chart always sets PREFECT_WORKER_QUERY_SECONDS from queryInterval (an integer), and that
    # wins over AIMS_WORKER_POLL_SECONDS (tests/infra/test_worker_health.py): 1 s, not the 0.5 s of
    # k8s/worker.yaml and the local stack, the one difference between the two ways.
    assert chart["config"]["queryInterval"] == 1
    assert float(config_map()["AIMS_WORKER_POLL_SECONDS"]) == 0.5


def test_the_server_chart_matches_the_clients() -> None:
    values = server_chart()
    lock = (REPO / "requirements.lock").read_text(encoding="utf-8")
    version = re.search(r"^prefect==(\S+)$", lock, re.MULTILINE)
    assert version is not None
    assert values["global"]["prefect"]["image"]["prefectTag"].startswith(version.group(1) + "-")
    assert values["server"]["basicAuth"] == {"enabled": True, "existingSecret": "aims-prefect-auth"}
    # PostgreSQL, not SQLite (DESIGN.md: SQLite answers 503 under concurrent run creation).
    assert values["sqlite"]["enabled"] is False and values["postgresql"]["enabled"] is False
    assert values["externalDatabase"]["existingSecret"]
    assert config_map()["PREFECT_API_URL"].startswith("http://prefect-server:4200/")


# -- tests: Strimzi ---------------------------------------------------------------------------------

# Kafka topic configs (a subset: those a deployment here might set); an unknown key is a typo.
KNOWN_TOPIC_CONFIGS = frozenset(
    {
        "cleanup.policy",
        "compression.type",
        "max.message.bytes",
        "min.insync.replicas",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.ms",
        "unclean.leader.election.enable",
    }
)


def test_the_strimzi_topics_are_topic_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {s.name: s for s in topic_specs(cluster_settings(monkeypatch))}
    topics = strimzi_objects("KafkaTopic")
    assert {t["spec"]["topicName"] for t in topics} == expected.keys()
    for topic in topics:
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "aims-kafka"
        spec = topic["spec"]
        want = expected[spec["topicName"]]
        assert (spec["partitions"], spec["replicas"]) == (want.partitions, want.replication)
        config = {key: str(value) for key, value in spec["config"].items()}
        assert config.keys() <= KNOWN_TOPIC_CONFIGS
        # The copies a write must reach, as the router would create the topic (events/topics.py).
        assert int(config["min.insync.replicas"]) == 2 < spec["replicas"]
        assert config == dict(want.config)


def test_the_strimzi_users_have_what_their_component_needs_and_no_more() -> None:
    data = config_map()
    topics = {t["spec"]["topicName"] for t in strimzi_objects("KafkaTopic")}
    grants: dict[str, set[tuple[str, str, str]]] = {}
    for user in strimzi_objects("KafkaUser"):
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "aims-kafka"
        spec = user["spec"]
        # SCRAM, as KAFKA_SASL_MECHANISM says (TLS client certificates would be KAFKA_SSL_CERTFILE).
        assert spec["authentication"] == {"type": "scram-sha-512"}
        assert data["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        granted = set()
        for acl in spec["authorization"]["acls"]:
            resource = acl["resource"]
            assert resource["type"] in ("topic", "group") and resource["patternType"] == "literal"
            assert set(acl["operations"]) <= set(ACL_OPERATIONS)
            # Topics belong to topics.yaml: nobody creates, deletes or reconfigures them.
            assert not set(acl["operations"]) & {"Create", "Delete", "Alter", "AlterConfigs", "All"}
            if resource["type"] == "topic":
                assert resource["name"] in topics
            granted |= {(resource["type"], resource["name"], op) for op in acl["operations"]}
        grants[user["metadata"]["name"]] = granted
    events, dlq, anchors = (
        data["AIMS_EVENTS_TOPIC"],
        data["AIMS_DEAD_LETTER_TOPIC"],
        data["AIMS_AUDIT_ANCHORS_TOPIC"],
    )
    group = data["AIMS_CONSUMER_GROUP"]
    assert grants["aims-router"] == {
        ("topic", events, "Describe"),  # the topics check at start lists them
        ("topic", events, "Read"),
        ("topic", events, "Write"),  # the outbox relay
        ("group", group, "Describe"),
        ("group", group, "Read"),
        ("topic", dlq, "Describe"),
        ("topic", dlq, "Write"),
        ("topic", anchors, "Describe"),
        ("topic", anchors, "Write"),
    }
    for producer in ("aims-worker", "aims-gateway"):  # they only send their outbox to the events topic
        assert grants[producer] == {("topic", events, "Write"), ("topic", events, "Describe")}
    # The CLI: emit and replay write; dlq and audit verify read without a group; status describes the
    # routers' group, never joins it (Read on it would let the CLI commit the routers' offsets).
    assert grants["aims-operator"] == {
        ("topic", events, "Describe"),
        ("topic", events, "Write"),
        ("topic", dlq, "Describe"),
        ("topic", dlq, "Read"),
        ("topic", anchors, "Describe"),
        ("topic", anchors, "Read"),
        ("group", group, "Describe"),
    }


# -- tests: the image -------------------------------------------------------------------------------


def test_the_dockerfile_builds_the_locked_runtime_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = dockerfile_lines()
    assert lines[0] == "FROM python:3.11-slim"
    assert "-r /tmp/requirements.lock" in text and "--no-deps ." in text
    assert image_user() not in ("0", "root")
    for component in COMPONENTS:  # the pods run as the image's user
        pod = pod_spec(one("Deployment", f"aims-{component}"))
        assert str(pod["securityContext"]["runAsUser"]) == image_user()
    entrypoints = [
        json.loads(line.removeprefix("ENTRYPOINT ")) for line in lines if line.startswith("ENTRYPOINT ")
    ]
    assert entrypoints == [ENTRYPOINT]
    # The probes run `aims` by name: the venv's bin is on the image's PATH.
    assert "ENV PATH=/opt/aims/bin:$PATH" in lines
    # No secret baked in: no ARG or ENV names any setting (the manifests give them all).
    for line in lines:
        if line.startswith(("ARG ", "ENV ")):
            assert not re.search(r"AIMS_|KAFKA_|PREFECT_API", line), line
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".aims" in ignored and ".git" in ignored  # the state folder holds keys and logins
