"""The Terraform declares the Pub/Sub topology that `libs/schemas` declares, and wires it through unchanged.

`captionqc.schemas.topology.TOPOLOGY` is what the code (and the emulator) uses; `infra/terraform` is what
production gets. These tests parse the Terraform with python-hcl2 and fail on any difference: a topic, a
subscription, a consumer, an ack deadline, a retention, a retry backoff or a dead-letter policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest

from captionqc.schemas.topology import EVENT_TOPICS, TOPOLOGY

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
    """Publisher grants come from `publishers`; each stage may publish exactly where its events go."""
    expected: dict[str, set[str]] = {}
    for event_type, topic in EVENT_TOPICS.items():
        stage = event_type.value.split(".")[1]
        # job.requested is the gateway's event (upstream publishers have their own grants, outside this stack).
        service = "gateway" if stage == "job" else stage
        expected.setdefault(service, set()).add(topic)
    terraform = {s: set(t) for s, t in _terraform_topology()["publishers"].items() if t}
    assert terraform == expected


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
