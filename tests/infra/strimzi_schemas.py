"""JSON Schemas of the Strimzi resources infra/deploy/strimzi/ uses (KafkaTopic, KafkaUser, API
kafka.strimzi.io/v1), written here from Strimzi's CRDs (packaging/install/cluster-operator/
043-Crd-kafkatopic.yaml and 044-Crd-kafkauser.yaml of strimzi-kafka-operator, version v1: the only
one Strimzi's Java model io.strimzi:api 1.2.0 knows for either kind, with the same fields).

Why written by hand: kubernetes-validate carries only Kubernetes' own kinds; Strimzi publishes its
CRDs with its releases and Helm chart, neither reachable from this project's registries (its Maven
artifact io.strimzi:api holds the model classes, no CRD), and files of another project are not
copied into this one.

Stricter than the CRDs in one way: no property outside the CRD is allowed (`additionalProperties:
false`). The API server prunes unknown fields of a custom resource silently, so a misspelt field
would be dropped, not refused; here it fails. Only the topic `config` stays open, as in the CRD (the
test checks its keys against Kafka's topic configs).
"""

from __future__ import annotations

from typing import Any

API_VERSION = "kafka.strimzi.io/v1"

_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}

_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "labels"],
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "namespace": {"type": "string"},
        # The Kafka cluster the operators reconcile it for.
        "labels": {
            "type": "object",
            "required": ["strimzi.io/cluster"],
            "additionalProperties": {"type": "string"},
        },
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _resource(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


KAFKA_TOPIC = _resource(
    "KafkaTopic",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "topicName": {"type": "string"},
            "partitions": {"type": "integer", "minimum": 1},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
            "config": {"type": "object"},  # x-kubernetes-preserve-unknown-fields in the CRD
        },
    },
)

_SECRET_KEY_REF = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "optional": {"type": "boolean"}},
}

ACL_OPERATIONS = [
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
]

KAFKA_USER = _resource(
    "KafkaUser",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "authentication": {
                "type": "object",
                "required": ["type"],
                "additionalProperties": False,
                "properties": {
                    "type": {"enum": ["tls", "tls-external", "scram-sha-512"]},
                    "password": {
                        "type": "object",
                        "required": ["valueFrom"],
                        "additionalProperties": False,
                        "properties": {
                            "valueFrom": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"secretKeyRef": _SECRET_KEY_REF},
                            }
                        },
                    },
                },
            },
            "authorization": {
                "type": "object",
                "required": ["acls", "type"],
                "additionalProperties": False,
                "properties": {
                    "type": {"enum": ["simple"]},
                    "acls": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["resource", "operations"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"enum": ["allow", "deny"]},
                                "resource": {
                                    "type": "object",
                                    "required": ["type"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "name": {"type": "string"},
                                        "patternType": {"enum": ["literal", "prefix"]},
                                        "type": {"enum": ["topic", "group", "cluster", "transactionalId"]},
                                    },
                                },
                                "host": {"type": "string"},
                                "operations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {"enum": ACL_OPERATIONS},
                                },
                            },
                        },
                    },
                },
            },
            "quotas": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "producerByteRate": {"type": "integer", "minimum": 0},
                    "consumerByteRate": {"type": "integer", "minimum": 0},
                    "requestPercentage": {"type": "integer", "minimum": 0},
                    "controllerMutationRate": {"type": "number", "minimum": 0},
                },
            },
            "template": {"type": "object"},
        },
    },
)

SCHEMAS = {"KafkaTopic": KAFKA_TOPIC, "KafkaUser": KAFKA_USER}
