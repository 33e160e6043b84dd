"""Real Apache Kafka in KRaft mode on 127.0.0.1: one node, or a replicated cluster of several.

Where the broker comes from, in this order:
1. an existing cluster (`KAFKA_BOOTSTRAP_SERVERS`): nothing is started;
2. a Kafka installation (`KAFKA_HOME`): its `libs/` jars;
3. otherwise the broker jars resolved from Maven Central by Maven, using `infra/kafka/pom.xml`,
   copied once into the state folder.

It listens in plaintext, or with `security="sasl_ssl"` (AIMS_KAFKA_LOCAL_SECURITY) on a SASL_SSL
listener: TLS with a certificate of a CA made in the state folder, SCRAM-SHA-512 users created when
its storage is formatted (infra/kafka_tls.py). The controller's listener stays plaintext on 127.0.0.1:
no client connects there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from events.kafka_clients import KafkaConnection, KafkaSecurity, make_admin
from infra.kafka_tls import LocalTls, ensure_local_tls, forget_client_security
from infra.processes import ManagedProcess, free_port, port_is_free, wait_until

log = logging.getLogger("aims.kafka")

POM = Path(__file__).parent / "kafka" / "pom.xml"
_LOG4J = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


# Local clusters are for tests and trying things out: three nodes is the production shape in small.
MAX_NODES = 5


class BrokerUnavailable(RuntimeError):
    pass


def maven_classpath(libs: Path) -> str:
    """Resolve the broker jars with Maven into `libs` once; later starts reuse them."""
    marker = libs / ".complete"
    pom_digest = POM.read_bytes()
    if marker.exists() and marker.read_bytes() == pom_digest:
        return f"{libs}/*"
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerUnavailable(
            "no Kafka: install Java 17+ and Maven, or set KAFKA_HOME to a Kafka installation, "
            "or KAFKA_BOOTSTRAP_SERVERS to an existing cluster"
        )
    if libs.exists():
        shutil.rmtree(libs)
    log.info("resolving the Kafka broker jars from Maven Central (once) into %s", libs)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerUnavailable(
            f"Maven could not resolve the broker jars:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
        )
    marker.write_bytes(pom_digest)
    return f"{libs}/*"


@dataclass
class KafkaNode:
    """One KRaft node (broker and controller in one process) of the local cluster."""

    node_id: int
    home: Path
    port: int = 0
    controller_port: int = 0
    process: ManagedProcess | None = None

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.home / "broker.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def replication_properties(nodes: int) -> list[str]:
    """The internal topics' replication: three copies, two in sync, once there are three nodes.

    The project's own topics get theirs from the settings (events.topics); these are Kafka's: the
    consumer groups' committed offsets above all, which must survive a node as the events do.
    """
    copies = min(nodes, 3)
    in_sync = max(1, copies - 1)
    return [
        f"default.replication.factor={copies}",
        f"offsets.topic.replication.factor={copies}",
        f"transaction.state.log.replication.factor={copies}",
        f"transaction.state.log.min.isr={in_sync}",
        f"share.coordinator.state.topic.replication.factor={copies}",
        f"share.coordinator.state.topic.min.isr={in_sync}",
    ]


def node_properties(node: KafkaNode, voters: str, listener: str, security: list[str], nodes: int) -> str:
    """server.properties of one node; `voters` is the quorum, `id@127.0.0.1:port` for every node."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners={listener}://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            f"advertised.listeners={listener}://127.0.0.1:{node.port}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={listener}",
            f"listener.security.protocol.map={listener}:{listener},CONTROLLER:PLAINTEXT",
            *security,
            f"log.dirs={node.data_dir}",
            "num.partitions=1",
            *replication_properties(nodes),
            "offsets.topic.num.partitions=4",
            # Local nodes: no reason to delay the first rebalance.
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "message.max.bytes=2097152",
            "",
        ]
    )


class KafkaBroker:
    """Start, wait for and stop local Kafka: one node, or a cluster of `nodes` on loopback.

    Data survives restarts in the state folder. One node keeps its files in `<state>/kafka/`, as it
    always has; each node of a cluster in `<state>/kafka/node-<id>/`. A state folder holds one or the
    other: its storage is formatted for one quorum, which cannot grow or shrink here.
    """

    def __init__(
        self,
        state_dir: Path,
        kafka_home: Path | None = None,
        heap: str = "512m",
        libs_dir: Path | None = None,
        security: Literal["plaintext", "sasl_ssl"] = "plaintext",
        nodes: int = 1,
    ) -> None:
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"a local Kafka runs 1 to {MAX_NODES} nodes, not {nodes}")
        self.state_dir = state_dir
        self.kafka_home = kafka_home
        # Several state folders (tests, benchmarks) can share one copy of the jars.
        self.libs_dir = libs_dir or state_dir / "kafka" / "libs"
        self.heap = heap
        self.home = state_dir / "kafka"
        self.nodes = [
            KafkaNode(i, self.home if nodes == 1 else self.home / f"node-{i}") for i in range(1, nodes + 1)
        ]
        self.security = security
        self.tls: LocalTls | None = None

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def listener(self) -> str:
        return "SASL_SSL" if self.security == "sasl_ssl" else "PLAINTEXT"

    @property
    def connection(self) -> KafkaConnection:
        """How a client reaches these brokers: their addresses and, for SASL_SSL, the local user and CA."""
        return KafkaConnection(self.bootstrap, self.tls.client_security() if self.tls else KafkaSecurity())

    def client_env(self) -> dict[str, str]:
        """The KAFKA_* variables a process needs to reach this broker (the password by file)."""
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, **(self.tls.client_env() if self.tls else {})}

    def processes(self) -> list[ManagedProcess]:
        return [node.process for node in self.nodes if node.process is not None]

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def _classpath(self) -> str:
        if self.kafka_home is not None:
            libs = self.kafka_home / "libs"
            if not libs.is_dir():
                raise BrokerUnavailable(f"KAFKA_HOME={self.kafka_home} has no libs/ folder")
            return f"{libs}/*"
        return maven_classpath(self.libs_dir)

    def _check_layout(self) -> None:
        """Refuse a state folder formatted for another number of nodes, before anything starts."""
        single = (self.home / "data" / "meta.properties").exists()
        cluster = sorted(p.parent.parent.name for p in self.home.glob("node-*/data/meta.properties"))
        size = len(self.nodes)
        if (size == 1 and cluster) or (size > 1 and single):
            found = f"a cluster of {len(cluster)} nodes" if cluster else "one node"
            raise BrokerUnavailable(
                f"{self.home} holds the storage of {found}, and {size} node(s) were asked for: a KRaft "
                "quorum cannot change its size here. Use another AIMS_STATE_DIR, or delete that folder "
                "(its events and committed offsets go with it)"
            )

    def _choose_ports(self) -> None:
        # Reuse the last ports when free: every client (stack.json, the supervised processes, routers
        # started by hand) has the brokers' addresses, and the controllers' are the quorum's config.
        # `port_is_free` ignores the TIME_WAIT connections a stopped broker leaves behind.
        ports_file = self.home / "ports.json"
        if ports_file.exists():
            saved = json.loads(ports_file.read_text())
            nodes = saved.get("nodes") or [{"broker": saved["broker"], "controller": saved["controller"]}]
            wanted = [port for node in nodes for port in (node["broker"], node["controller"])]
            if len(nodes) == len(self.nodes) and all(port_is_free(port) for port in wanted):
                for node, ports in zip(self.nodes, nodes, strict=True):
                    node.port, node.controller_port = ports["broker"], ports["controller"]
                return
            log.warning("the brokers' ports %s are taken by another process; moving to new ones", wanted)
        taken: set[int] = set()
        for node in self.nodes:
            node.port, node.controller_port = _fresh_port(taken), _fresh_port(taken)
        self._save_ports()

    def _save_ports(self) -> None:
        ports = [{"broker": node.port, "controller": node.controller_port} for node in self.nodes]
        # One node keeps the file's first shape, which earlier state folders have.
        shape = ports[0] if len(ports) == 1 else {"nodes": ports}
        (self.home / "ports.json").write_text(json.dumps(shape))

    @property
    def voters(self) -> str:
        return ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)

    def _write_config(self, node: KafkaNode) -> Path:
        security = self.tls.broker_properties() if self.tls else []
        node.home.mkdir(parents=True, exist_ok=True)
        # It holds the broker's SCRAM password and keystore password when there is TLS: owner only.
        node.config.touch(mode=0o600)
        node.config.chmod(0o600)
        node.config.write_text(node_properties(node, self.voters, self.listener, security, len(self.nodes)))
        return node.config

    def _java(self, classpath: str, *args: str, logs: Path | None = None) -> list[str]:
        java = shutil.which("java", path=os.environ.get("JAVA_HOME", "") + "/bin") or shutil.which("java")
        if java is None:
            raise BrokerUnavailable("no java on PATH: the local broker needs Java 17 or newer")
        return [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={logs or self.home / 'logs'}",
            "-cp",
            classpath,
            *args,
        ]

    def start(self, timeout: float = 120, cancel: threading.Event | None = None) -> str:
        """Start every node and wait until the cluster serves; `cancel` ends the wait early (stack
        stopping). Returns the bootstrap addresses."""
        self.home.mkdir(parents=True, exist_ok=True)
        self._check_layout()
        classpath = self._classpath()
        self._choose_ports()
        if self.security == "sasl_ssl":
            self.tls = ensure_local_tls(self.home)
        else:
            forget_client_security(self.home)
        (self.home / "log4j2.yaml").write_text(_LOG4J)
        for node in self.nodes:
            self._write_config(node)
        self._format(classpath)
        for node in self.nodes:
            self._launch(node, classpath)
        # A node alone is not the cluster: ready once every node is a broker of it.
        waited = wait_until(self._ready, timeout, "Kafka", self.processes(), cancel)
        log.info("Kafka ready at %s after %.1fs", self.bootstrap, waited)
        return self.bootstrap

    def _format(self, classpath: str) -> None:
        """Format the storage of every node not formatted yet, all with one cluster id."""
        formatted_for = self.home / "storage-security"
        unformatted = [n for n in self.nodes if not (n.data_dir / "meta.properties").exists()]
        if len(unformatted) < len(self.nodes):
            if self.tls and not (formatted_for.exists() and formatted_for.read_text() == "sasl_ssl"):
                raise BrokerUnavailable(
                    f"the broker storage in {self.home} was formatted without SCRAM users, which KRaft "
                    "adds only when formatting: for AIMS_KAFKA_LOCAL_SECURITY=sasl_ssl use a new "
                    "AIMS_STATE_DIR, or delete that folder (its events and offsets go with it)"
                )
            if unformatted:
                # A node whose storage was lost cannot simply be formatted again: it would join the
                # quorum with an empty log under a fresh identity.
                raise BrokerUnavailable(
                    f"node(s) {', '.join(str(n.node_id) for n in unformatted)} of the cluster in "
                    f"{self.home} have no storage: delete that folder to start a new cluster"
                )
            return
        cluster_id = self._random_cluster_id()
        # The SCRAM users can only be written into a storage as it is formatted (KRaft). The
        # arguments hold their passwords for the second the tool runs; only this user can see them.
        users = self.tls.scram_users() if self.tls else []
        scram = [arg for user in users for arg in ("--add-scram", user)]
        for node in self.nodes:
            command = ["format", "-t", cluster_id, "-c", str(node.config), "--ignore-formatted", *scram]
            result = subprocess.run(
                self._java(classpath, "kafka.tools.StorageTool", *command),
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise BrokerUnavailable(
                    f"formatting the storage of node {node.node_id} failed:\n{result.stdout}{result.stderr}"
                )
        formatted_for.write_text(self.security)

    def _launch(self, node: KafkaNode, classpath: str) -> None:
        node.process = ManagedProcess(
            "kafka" if len(self.nodes) == 1 else f"kafka-{node.node_id}",
            self._java(classpath, "kafka.Kafka", str(node.config), logs=node.home / "logs"),
            node.log_path,
            dict(os.environ),
        )
        node.process.start()

    @staticmethod
    def _random_cluster_id() -> str:
        # Kafka cluster ids are 16 random bytes, base64url without padding (22 characters). Like Kafka's
        # own Uuid.randomUuid, skip ids starting with "-": the storage tool would read one as an option.
        import base64

        while True:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not cluster_id.startswith("-"):
                return cluster_id

    def _ready(self, nodes: list[KafkaNode] | None = None) -> bool:
        """Every node in `nodes` (all by default) answers and the cluster counts all its brokers."""
        import socket

        for node in nodes or self.nodes:
            # A plain TCP check first: the admin client logs every refused connection loudly.
            with socket.create_connection(("127.0.0.1", node.port), timeout=1):
                pass
        admin = make_admin(self.connection, request_timeout_ms=3000)
        try:
            brokers = admin.describe_cluster().get("brokers") or []
        finally:
            admin.close()
        return len(brokers) == len(self.nodes)

    def restart(self, timeout: float = 120, cancel: threading.Event | None = None) -> str:
        """Stop the brokers if they run, start them again; the same addresses unless someone took
        their ports. Their data (topics, committed offsets) is in the state folder and survives."""
        self.stop()
        return self.start(timeout, cancel)

    def restart_node(self, node_id: int, timeout: float = 120, cancel: threading.Event | None = None) -> str:
        """Stop node `node_id` if it runs and start it again on its own ports, the others serving on.

        Its ports are the quorum's configuration and every client's bootstrap: if someone took one
        meanwhile, this fails and says so rather than move a single node.
        """
        node = self.node(node_id)
        if node.process is not None:
            node.process.stop()
        for port in (node.port, node.controller_port):
            if not port_is_free(port):
                raise BrokerUnavailable(
                    f"node {node_id}'s port {port} is taken by another process: free it, or restart "
                    "the whole cluster (`aims restart kafka`) to move every node"
                )
        self._launch(node, self._classpath())
        assert node.process is not None
        wait_until(lambda: self._ready([node]), timeout, f"Kafka node {node_id}", node.process, cancel)
        return node.address

    def stop(self, timeout: float = 30) -> None:
        """Stop every node at once: one after another, the last ones would wait out their timeout
        for a quorum that the first ones took away."""
        running = [node.process for node in self.nodes if node.process is not None]
        if len(running) <= 1:
            for process in running:
                process.stop(timeout)
            return
        with ThreadPoolExecutor(len(running)) as pool:
            list(pool.map(lambda process: process.stop(timeout), running))

    def kill(self, node_id: int | None = None) -> None:
        """SIGKILL every node, or only `node_id`."""
        for node in self.nodes if node_id is None else [self.node(node_id)]:
            if node.process is not None:
                node.process.kill()


def _fresh_port(taken: set[int]) -> int:
    """A free port no other node of this cluster was handed (two probes may return the same port)."""
    port = free_port()
    while port in taken:
        port = free_port()
    taken.add(port)
    return port
