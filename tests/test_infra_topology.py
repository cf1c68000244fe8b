"""The Terraform declares the Pub/Sub topology that `libs/schemas` declares, and wires it through unchanged.

`captionqc.schemas.topology.TOPOLOGY` is what the code (and the emulator) uses; `infra/terraform` is what
production gets. These tests parse the Terraform with python-hcl2 and fail on any difference: a topic, a
subscription, a consumer, an ack deadline, a retention, a retry backoff or a dead-letter policy. They also hold
the publish grants to producers only: who may write a topic is who the consumers believe.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from captionqc.schemas.topology import EVENT_TOPICS, TOPOLOGY, TopicName

TERRAFORM = Path(__file__).resolve().parents[1] / "infra" / "terraform"
STACK = TERRAFORM / "modules" / "stack"
PUBSUB = TERRAFORM / "modules" / "pubsub"

_HCL = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def _parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        parsed: dict[str, Any] = hcl2.load(f, serialization_options=_HCL)
    return parsed


def _locals(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in _parse(path).get("locals", []):
        merged.update(block)
    return merged


def _blocks(path: Path, kind: str) -> dict[str, Any]:
    """Resources or modules of one file, keyed "type.name" (resources) or "name" (modules)."""
    found: dict[str, Any] = {}
    for block in _parse(path).get(kind, []):
        for label, body in block.items():
            if kind == "resource":
                for name, inner in body.items():
                    found[f"{label}.{name}"] = inner
            else:
                found[label] = body
    return found


def _declared_topics() -> dict[str, dict[str, Any]]:
    return {t.name: {"message_retention_s": t.message_retention_s} for t in TOPOLOGY.topics}


def _declared_subscriptions() -> dict[str, dict[str, Any]]:
    return {
        s.name: {
            "topic": s.topic,
            "consumer": s.consumer,
            "ack_deadline_s": s.ack_deadline_s,
            "message_retention_s": s.message_retention_s,
            "retry": {
                "minimum_backoff_s": s.retry.minimum_backoff_s,
                "maximum_backoff_s": s.retry.maximum_backoff_s,
            },
            "dead_letter": None
            if s.dead_letter is None
            else {"topic": s.dead_letter.topic, "max_delivery_attempts": s.dead_letter.max_delivery_attempts},
        }
        for s in TOPOLOGY.subscriptions
    }


def _terraform_topology() -> dict[str, Any]:
    return _locals(STACK / "topology.tf")


def test_topics_match_the_schemas_topology() -> None:
    assert _terraform_topology()["topics"] == _declared_topics()


def test_subscriptions_match_the_schemas_topology() -> None:
    declared = _declared_subscriptions()
    terraform = _terraform_topology()["subscriptions"]
    assert sorted(terraform) == sorted(declared), "subscription names differ"
    for name, spec in declared.items():
        assert terraform[name] == spec, f"subscription {name!r} differs"


def test_every_consumer_and_dead_letter_topic_exists() -> None:
    topology = _terraform_topology()
    services = set(_locals(STACK / "main.tf")["service_names"])
    for name, sub in topology["subscriptions"].items():
        assert sub["topic"] in topology["topics"], name
        assert sub["consumer"] in services, name
        if sub["dead_letter"] is not None:
            assert sub["dead_letter"]["topic"] in topology["topics"], name


def test_publishers_follow_the_event_topics() -> None:
    """Publisher grants come from `publishers`: each stage may publish exactly where its events go, and every
    consuming service on the dead-letter topic (where the runner forwards what it refuses)."""
    expected: dict[str, set[str]] = {}
    for event_type, topic in EVENT_TOPICS.items():
        stage = event_type.value.split(".")[1]
        # job.requested on `jobs` is the gateway's event; upstream publishers write intake (var.intake_publishers).
        service = "gateway" if stage == "job" else stage
        expected.setdefault(service, set()).add(topic)
    for sub in TOPOLOGY.subscriptions:
        expected.setdefault(sub.consumer, set()).add(TopicName.DEAD_LETTER)
    terraform = {s: set(t) for s, t in _terraform_topology()["publishers"].items() if t}
    assert terraform == expected


def _writers() -> dict[str, set[str]]:
    writers: dict[str, set[str]] = {}
    for service, topics in _terraform_topology()["publishers"].items():
        for topic in topics:
            writers.setdefault(topic, set()).add(service)
    return writers


def test_each_internal_topic_is_written_by_its_producer_only() -> None:
    assert _writers() == {
        "jobs": {"gateway"},
        "ocr-results": {"ocr"},
        "asr-results": {"asr"},
        "progress": {"ocr", "asr"},
        "findings": {"crosscheck"},
        "dead-letter": {"gateway", "ocr", "asr", "crosscheck", "status"},
    }
    assert TopicName.INTAKE not in _writers()  # no service of ours writes intake


def test_the_gateway_reads_intake_and_findings() -> None:
    subscriptions = _terraform_topology()["subscriptions"]
    assert (subscriptions["gateway-intake"]["topic"], subscriptions["gateway-intake"]["consumer"]) == (
        "intake",
        "gateway",
    )
    assert (subscriptions["gateway-findings"]["topic"], subscriptions["gateway-findings"]["consumer"]) == (
        "findings",
        "gateway",
    )
    assert subscriptions["gateway-intake"]["dead_letter"] == {"topic": "dead-letter", "max_delivery_attempts": 5}


def _all_resources() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for module in (STACK, PUBSUB):
        for path in sorted(module.glob("*.tf")):
            for key, body in _blocks(path, "resource").items():
                found[f"{module.name}:{key}"] = body
    return found


def test_publish_is_granted_only_to_producers_intake_publishers_and_the_pubsub_agent() -> None:
    """Every grant that could let someone publish: topic IAM of any kind, and project-level Pub/Sub roles."""
    topic_iam = {
        key: body
        for key, body in _all_resources().items()
        if key.split(":")[1].split(".")[0]
        in {"google_pubsub_topic_iam_member", "google_pubsub_topic_iam_binding", "google_pubsub_topic_iam_policy"}
    }
    assert sorted(topic_iam) == [
        "pubsub:google_pubsub_topic_iam_member.dead_letter_publisher",
        "stack:google_pubsub_topic_iam_member.intake_publisher",
        "stack:google_pubsub_topic_iam_member.publisher",
    ]
    producers = topic_iam["stack:google_pubsub_topic_iam_member.publisher"]
    assert (producers["for_each"], producers["topic"], producers["member"]) == (
        "${local.publisher_grants}",
        "${module.pubsub.topic_names[each.value.topic]}",
        "${local.sa_member[each.value.service]}",
    )
    grants = _locals(STACK / "iam.tf")["publisher_grants"]
    assert "local.publishers" in grants, grants
    intake = topic_iam["stack:google_pubsub_topic_iam_member.intake_publisher"]
    assert (intake["for_each"], intake["topic"], intake["member"], intake["role"]) == (
        "${toset(var.intake_publishers)}",
        '${module.pubsub.topic_names["intake"]}',
        "${each.key}",
        "roles/pubsub.publisher",
    )
    agent = topic_iam["pubsub:google_pubsub_topic_iam_member.dead_letter_publisher"]
    assert (agent["for_each"], agent["member"]) == ("${local.dead_letter_topics}", "${local.pubsub_agent}")
    assert _locals(PUBSUB / "main.tf")["dead_letter_topics"].count("dead_letter.topic") == 1
    # Nobody gets Pub/Sub rights on the whole project (that would cover every topic).
    for key, body in _all_resources().items():
        if ".google_project_iam" in key:
            roles = [str(body.get("role", ""))] + [str(r) for r in _locals(STACK / "iam.tf")["telemetry_roles"]]
            assert not any("pubsub" in role for role in roles), key


def test_intake_publishers_are_a_variable_that_refuses_the_public() -> None:
    variables = {name: body for block in _parse(STACK / "variables.tf")["variable"] for name, body in block.items()}
    intake = variables["intake_publishers"]
    assert (intake["type"], intake["default"]) == ("${list(string)}", [])
    condition = intake["validation"][0]["condition"]
    pattern = re.search(r'regex\("([^"]+)"', condition)
    assert pattern is not None, condition
    allowed = re.compile(pattern.group(1))
    assert allowed.match("serviceAccount:broadcast@upstream.iam.gserviceaccount.com")
    assert not allowed.match("allUsers")
    assert not allowed.match("allAuthenticatedUsers")
    for env in ("prod", "dev"):
        stack = _blocks(TERRAFORM / "envs" / env / "main.tf", "module")["stack"]
        assert stack["intake_publishers"] == "${var.intake_publishers}", env


def test_stack_passes_the_topology_to_the_pubsub_module_unchanged() -> None:
    stack_locals = _locals(STACK / "main.tf")
    pubsub = _blocks(STACK / "main.tf", "module")["pubsub"]
    assert pubsub["source"] == "../pubsub"
    assert pubsub["topics"] == "${local.topics}"
    assert pubsub["subscriptions"] == "${local.pubsub_subscriptions}"
    # Only `push` is added to each subscription of the topology; every other field is passed as is.
    wiring = stack_locals["pubsub_subscriptions"]
    assert wiring.startswith("${{for name, s in local.subscriptions : name => merge(s, {push = "), wiring
    assert wiring.count("merge(") == 1


@pytest.mark.parametrize(
    ("resource", "attribute", "expression"),
    [
        ("google_pubsub_topic.this", "for_each", "${var.topics}"),
        ("google_pubsub_topic.this", "name", "${each.key}"),
        ("google_pubsub_topic.this", "message_retention_duration", "${each.value.message_retention_s}s"),
        ("google_pubsub_subscription.this", "for_each", "${var.subscriptions}"),
        ("google_pubsub_subscription.this", "name", "${each.key}"),
        ("google_pubsub_subscription.this", "topic", "${google_pubsub_topic.this[each.value.topic].id}"),
        ("google_pubsub_subscription.this", "ack_deadline_seconds", "${each.value.ack_deadline_s}"),
        ("google_pubsub_subscription.this", "message_retention_duration", "${each.value.message_retention_s}s"),
    ],
)
def test_pubsub_module_uses_the_values_it_is_given(resource: str, attribute: str, expression: str) -> None:
    assert _blocks(PUBSUB / "main.tf", "resource")[resource][attribute] == expression


def test_pubsub_module_applies_retry_and_dead_letter_policies() -> None:
    subscription = _blocks(PUBSUB / "main.tf", "resource")["google_pubsub_subscription.this"]
    assert subscription["retry_policy"] == [
        {
            "minimum_backoff": "${each.value.retry.minimum_backoff_s}s",
            "maximum_backoff": "${each.value.retry.maximum_backoff_s}s",
        }
    ]
    dynamic = {name: body for block in subscription["dynamic"] for name, body in block.items()}
    dead_letter = dynamic["dead_letter_policy"]
    assert dead_letter["for_each"] == "${each.value.dead_letter == null ? [] : [each.value.dead_letter]}"
    assert dead_letter["content"] == [
        {
            "dead_letter_topic": "${google_pubsub_topic.this[dead_letter_policy.value.topic].id}",
            "max_delivery_attempts": "${dead_letter_policy.value.max_delivery_attempts}",
        }
    ]


def test_pubsub_service_agent_can_dead_letter() -> None:
    """Without these grants Pub/Sub silently keeps redelivering instead of dead-lettering."""
    resources = _blocks(PUBSUB / "main.tf", "resource")
    publisher = resources["google_pubsub_topic_iam_member.dead_letter_publisher"]
    source = resources["google_pubsub_subscription_iam_member.dead_letter_source"]
    assert (publisher["role"], publisher["member"]) == ("roles/pubsub.publisher", "${local.pubsub_agent}")
    assert (source["role"], source["member"]) == ("roles/pubsub.subscriber", "${local.pubsub_agent}")
    assert source["for_each"] == "${local.dead_lettered}"


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_every_environment_deploys_the_stack(env: str) -> None:
    modules = _blocks(TERRAFORM / "envs" / env / "main.tf", "module")
    assert modules["stack"]["source"] == "../../modules/stack"
