"""Fixtures: one emulator subprocess per session, a fresh GCP project id per test, official clients."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.cloud import pubsub_v1

from captionqc.pubsub_emulator.testing import EmulatorProcess, start_emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    with start_emulator() as process:
        yield process


@pytest.fixture
def pubsub_env(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> EmulatorProcess:
    # Clients read PUBSUB_EMULATOR_HOST when they are constructed, so set it before building any.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    return emulator


@pytest.fixture
def project() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def publisher(pubsub_env: EmulatorProcess) -> Iterator[pubsub_v1.PublisherClient]:
    client = pubsub_v1.PublisherClient()
    yield client
    client.stop()


@pytest.fixture
def ordered_publisher(pubsub_env: EmulatorProcess) -> Iterator[pubsub_v1.PublisherClient]:
    client = pubsub_v1.PublisherClient(publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    yield client
    client.stop()


@pytest.fixture
def subscriber(pubsub_env: EmulatorProcess) -> Iterator[pubsub_v1.SubscriberClient]:
    client = pubsub_v1.SubscriberClient()
    yield client
    client.close()


def _stop_streaming(future: Any) -> None:
    future.cancel()
    with contextlib.suppress(Exception):
        future.result(timeout=10)


@pytest.fixture
def stop_streaming() -> Callable[[Any], None]:
    """Cancel a `subscribe()` future and wait for its threads to finish."""
    return _stop_streaming


@pytest.fixture
def make_topic(publisher: pubsub_v1.PublisherClient, project: str) -> Callable[..., str]:
    def make(name: str = "events") -> str:
        return str(publisher.create_topic(name=f"projects/{project}/topics/{name}").name)

    return make


@pytest.fixture
def make_subscription(subscriber: pubsub_v1.SubscriberClient, project: str) -> Callable[..., str]:
    def make(topic: str, name: str = "worker", **config: Any) -> str:
        request = {"name": f"projects/{project}/subscriptions/{name}", "topic": topic, **config}
        return str(subscriber.create_subscription(request=request).name)

    return make
