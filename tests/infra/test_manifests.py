"""The deployment files in infra/deploy/ agree with the application: every variable they set is a
setting it has, the Strimzi topics are `topic_specs`, the secrets come from Secrets, and the two ways
to run the worker (k8s/worker.yaml, Prefect's worker chart) say the same.

Nothing here runs the files (no container engine, no cluster). Kubernetes objects are validated
against the API schemas when `kubernetes_validate` is installed; Strimzi's CRD schemas are not
available offline, so its resources are checked structurally here.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from events.topics import topic_specs
from schemas.settings import FILE_SUFFIX, AimsSettings, env_names, environment_values

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "infra" / "deploy"
K8S = DEPLOY / "k8s"
HELM = DEPLOY / "helm"
STRIMZI = DEPLOY / "strimzi"

# Variables the application's containers may set that are not settings of schemas/settings.py: the
# Prefect SDK's own client settings, which `aims up` sets for every child it starts
# (infra/prefect_server.py `prefect_client_env`), so the cluster sets them as the local stack does.
PREFECT_CLIENT_VARIABLES = frozenset(
    {
        "PREFECT_HOME",  # the SDK's home: in the state folder, as locally
        "PREFECT_LOCAL_STORAGE_PATH",  # where flow results are kept, in the state folder
        "PREFECT_WORKER_QUERY_SECONDS",  # the worker's poll interval (AIMS_WORKER_POLL_SECONDS locally)
    }
)
ENTRYPOINT = ["/usr/bin/tini", "--", "aims"]
COMPONENTS = ("router", "worker", "gateway")


# -- reading -----------------------------------------------------------------------------------


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in documents(path)]


def strimzi_objects(kind: str) -> list[dict[str, Any]]:
    return [doc for path in sorted(STRIMZI.glob("*.yaml")) for doc in documents(path) if doc["kind"] == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in k8s_objects() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found in {K8S}"
    return found[0]


def config_map() -> dict[str, str]:
    return dict(one("ConfigMap", "aims-config")["data"])


def container(component: str) -> dict[str, Any]:
    containers = one("Deployment", f"aims-{component}")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def worker_chart() -> dict[str, Any]:
    return dict(yaml.safe_load((HELM / "prefect-worker.values.yaml").read_text(encoding="utf-8")))


def server_chart() -> dict[str, Any]:
    return dict(yaml.safe_load((HELM / "prefect-server.values.yaml").read_text(encoding="utf-8")))


# -- the settings the application has ------------------------------------------------------------


def setting_variables() -> dict[str, str]:
    """Every variable the settings are read from, to its field: AIMS_<FIELD> or the field's aliases
    (env_names), and `<variable>_FILE` for secrets (read from a mounted file)."""
    variables: dict[str, str] = {}
    for name, field in AimsSettings.model_fields.items():
        secret = field.annotation is SecretStr or SecretStr in getattr(field.annotation, "__args__", ())
        for variable in env_names(name, field):
            variables[variable] = name
            if secret:
                variables[variable + FILE_SUFFIX] = name
    return variables


def secret_fields() -> set[str]:
    return {
        name
        for name, field in AimsSettings.model_fields.items()
        if field.annotation is SecretStr or SecretStr in getattr(field.annotation, "__args__", ())
    }


def application_env(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, entry) of each variable a manifest sets for the application: a ConfigMap's keys, the
    env of a Deployment's containers, the worker chart's extraEnvVars."""
    kind = doc.get("kind")
    if kind == "ConfigMap":
        for key, value in (doc.get("data") or {}).items():
            yield key, {"name": key, "value": value}
    elif kind == "Deployment":
        pod = doc["spec"]["template"]["spec"]
        for item in pod.get("containers", []) + pod.get("initContainers", []):
            for entry in item.get("env", []):
                yield entry["name"], entry
    elif "worker" in doc:  # the worker chart's values
        for entry in doc["worker"].get("extraEnvVars", []):
            yield entry["name"], entry


def unknown_settings(docs: list[dict[str, Any]]) -> list[str]:
    """The variables `docs` set that the application does not read (and no allow-list explains)."""
    known = setting_variables().keys() | PREFECT_CLIENT_VARIABLES
    return sorted(
        f"{doc.get('kind', 'values')}/{doc.get('metadata', {}).get('name', '-')}: {name}"
        for doc in docs
        for name, _ in application_env(doc)
        if name not in known
    )


def all_application_docs() -> list[dict[str, Any]]:
    return [*k8s_objects(), worker_chart()]


# -- tests: shape -------------------------------------------------------------------------------


def test_every_manifest_parses_and_names_itself() -> None:
    paths = sorted([*K8S.glob("*.yaml"), *STRIMZI.glob("*.yaml")])
    assert {p.name for p in paths} >= {
        "configmap.yaml",
        "secret.template.yaml",
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
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), path.name
    for path in HELM.glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict), path.name


def test_the_deployments_run_the_commands_aims_up_runs() -> None:
    from aims.cli import build_parser

    parser = build_parser()[0]
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


def test_probes_resources_and_volumes_fit_the_configuration() -> None:
    data = config_map()
    state = data["AIMS_STATE_DIR"]
    ca_dir = str(Path(data["KAFKA_SSL_CAFILE"]).parent)
    for component in COMPONENTS:
        c = container(component)
        assert {"cpu", "memory"} <= c["resources"]["requests"].keys() & c["resources"]["limits"].keys()
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {state, ca_dir, "/tmp"} <= mounts, component  # the root filesystem is read-only
        assert c["envFrom"] == [{"configMapRef": {"name": "aims-config"}}]
    # The router's heartbeats and the worker's status file are in the state folder.
    router_probe = " ".join(container("router")["livenessProbe"]["exec"]["command"])
    assert f"{state}/routers" in router_probe and "router-*.json" in router_probe
    worker_probe = " ".join(container("worker")["readinessProbe"]["exec"]["command"])
    assert f"{state}/workers/" in worker_probe
    gateway = container("gateway")
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["ports"] == [{"name": "http", "containerPort": int(data["AIMS_GATEWAY_PORT"])}]
    assert data["AIMS_GATEWAY_HOST"] == "0.0.0.0"  # reachable from the Service, not loopback only


# -- tests: settings ----------------------------------------------------------------------------


def test_every_variable_a_manifest_sets_is_a_setting() -> None:
    assert unknown_settings(all_application_docs()) == []


def test_a_manifest_naming_a_setting_the_application_lacks_fails() -> None:
    deployment = copy.deepcopy(one("Deployment", "aims-router"))
    deployment["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "AIMS_NO_SUCH_SETTING", "value": "1"}
    )
    configmap = copy.deepcopy(one("ConfigMap", "aims-config"))
    configmap["data"]["AIMS_ROUTER_BATCH"] = "100"  # near AIMS_ROUTER_BATCH_SIZE, but not it
    chart = worker_chart()
    chart["worker"]["extraEnvVars"].append({"name": "KAFKA_SASL_PASSWD", "value": "x"})
    assert unknown_settings([deployment, configmap, chart]) == [
        "ConfigMap/aims-config: AIMS_ROUTER_BATCH",
        "Deployment/aims-router: AIMS_NO_SUCH_SETTING",
        "values/-: KAFKA_SASL_PASSWD",
    ]


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
    assert settings.prefect_api_url == worker_chart()["worker"]["selfHostedServerApiConfig"]["apiUrl"]
    assert settings.work_pool == worker_chart()["worker"]["config"]["workPool"]


def test_secrets_come_only_from_secrets() -> None:
    variables = setting_variables()
    secrets = secret_fields()
    for name in config_map():
        assert variables.get(name) not in secrets, f"{name} is a secret: not in a ConfigMap"
    template = {d["metadata"]["name"]: d["stringData"] for d in documents(K8S / "secret.template.yaml")}
    users = {u["metadata"]["name"] for u in strimzi_objects("KafkaUser")}
    for doc in all_application_docs():
        for name, entry in application_env(doc):
            if doc.get("kind") == "ConfigMap":
                continue
            if variables.get(name) in secrets:
                assert "value" not in entry, f"{name}: a secret as a literal value"
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                continue
            if ref["name"] in users:
                assert ref["key"] == "password"  # the Secret Strimzi's User Operator writes
            else:
                assert ref["key"] in template[ref["name"]], f"{name}: {ref} not in the template"
    # A template only: every value a placeholder.
    for name, data in template.items():
        for key, value in data.items():
            assert "REPLACE-ME" in value, f"{name}.{key} is not a placeholder"


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
ACL_OPERATIONS = frozenset(
    {"Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "AlterConfigs"}
    | {"DescribeConfigs", "IdempotentWrite", "All"}
)


def test_the_strimzi_topics_are_topic_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {s.name: s for s in topic_specs(cluster_settings(monkeypatch))}
    topics = strimzi_objects("KafkaTopic")
    assert {t["spec"]["topicName"] for t in topics} == expected.keys()
    for topic in topics:
        assert topic["apiVersion"] in ("kafka.strimzi.io/v1beta2", "kafka.strimzi.io/v1")
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "aims-kafka"
        spec = topic["spec"]
        assert spec.keys() <= {"topicName", "partitions", "replicas", "config"}
        want = expected[spec["topicName"]]
        assert (spec["partitions"], spec["replicas"]) == (want.partitions, want.replication)
        config = {key: str(value) for key, value in spec["config"].items()}
        assert config.keys() <= KNOWN_TOPIC_CONFIGS
        assert int(config.pop("min.insync.replicas")) == 2 < spec["replicas"]
        assert config == dict(want.config)


def test_the_strimzi_users_have_what_their_component_needs_and_no_more() -> None:
    data = config_map()
    topics = {t["spec"]["topicName"] for t in strimzi_objects("KafkaTopic")}
    grants: dict[str, set[tuple[str, str, str]]] = {}
    for user in strimzi_objects("KafkaUser"):
        assert user["apiVersion"] in ("kafka.strimzi.io/v1beta2", "kafka.strimzi.io/v1")
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "aims-kafka"
        spec = user["spec"]
        # SCRAM, as KAFKA_SASL_MECHANISM says (TLS client certificates would be KAFKA_SSL_CERTFILE).
        assert spec["authentication"] == {"type": "scram-sha-512"}
        assert data["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert spec["authorization"]["type"] == "simple"
        granted = set()
        for acl in spec["authorization"]["acls"]:
            resource = acl["resource"]
            assert resource["type"] in ("topic", "group") and resource["patternType"] == "literal"
            assert set(acl["operations"]) <= ACL_OPERATIONS
            # Topics belong to topics.yaml: nobody creates, deletes or reconfigures them.
            assert not set(acl["operations"]) & {"Create", "Delete", "Alter", "AlterConfigs", "All"}
            if resource["type"] == "topic":
                assert resource["name"] in topics
            granted |= {(resource["type"], resource["name"], op) for op in acl["operations"]}
        grants[user["metadata"]["name"]] = granted
    events, group = data["AIMS_EVENTS_TOPIC"], data["AIMS_CONSUMER_GROUP"]
    assert {
        ("topic", events, "Read"),
        ("group", group, "Read"),
        ("topic", data["AIMS_DEAD_LETTER_TOPIC"], "Write"),
        ("topic", data["AIMS_AUDIT_ANCHORS_TOPIC"], "Write"),
        ("topic", events, "Write"),  # the outbox relay
    } <= grants["aims-router"]
    for producer in ("aims-worker", "aims-gateway"):  # they only send their outbox to the events topic
        assert grants[producer] == {("topic", events, "Write"), ("topic", events, "Describe")}


# -- tests: the image -------------------------------------------------------------------------------


def test_the_dockerfile_builds_the_locked_runtime_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert "-r /tmp/requirements.lock" in text and "--no-deps ." in text
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("0", "root")
    entrypoints = [
        json.loads(line.removeprefix("ENTRYPOINT ")) for line in lines if line.startswith("ENTRYPOINT ")
    ]
    assert entrypoints == [ENTRYPOINT]
    # No secret baked in: no ARG or ENV names any setting (the manifests give them all).
    for line in lines:
        if line.startswith(("ARG ", "ENV ")):
            assert not re.search(r"AIMS_|KAFKA_|PREFECT_API", line), line
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".aims" in ignored and ".git" in ignored  # the state folder holds keys and logins


# -- tests: Kubernetes' schemas ------------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("kubernetes_validate") is None,
    reason="kubernetes-validate is not installed (add kubernetes-validate>=1.37 to the dev extra)",
)
def test_the_kubernetes_objects_validate_against_the_api_schemas() -> None:
    import kubernetes_validate

    version = str(kubernetes_validate.latest_version())
    for doc in k8s_objects():
        kubernetes_validate.validate(doc, version, strict=True)
