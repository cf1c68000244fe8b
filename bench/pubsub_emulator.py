"""Benchmark the in-repo Pub/Sub emulator through the official client (prints a table; never fails on timing).

.venv/bin/python bench/pubsub_emulator.py [--messages 10000] [--size 1024]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from typing import Any

from captionqc.pubsub_emulator.testing import EmulatorProcess, start_emulator, wait_until


def _cpu_seconds(pid: int | None) -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    if pid is None:
        return None
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _receive(subscriber: Any, subscription: str, count: int, on_first: threading.Event | None = None) -> Any:
    received = {"n": 0}
    lock = threading.Lock()
    done = threading.Event()

    def callback(message: Any) -> None:
        message.ack()
        with lock:
            received["n"] += 1
            if received["n"] >= count:
                done.set()

    future = subscriber.subscribe(subscription, callback)
    return future, done, received


def run(messages: int, size: int) -> list[tuple[str, int, float]]:
    from google.cloud import pubsub_v1

    results: list[tuple[str, int, float]] = []
    payload = os.urandom(size // 2).hex().encode()[:size]
    project = f"bench-{uuid.uuid4().hex[:8]}"
    with start_emulator() as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        try:
            backlog_topic = publisher.create_topic(name=f"projects/{project}/topics/backlog").name
            backlog_sub = subscriber.create_subscription(
                name=f"projects/{project}/subscriptions/backlog", topic=backlog_topic
            ).name
            live_topic = publisher.create_topic(name=f"projects/{project}/topics/live").name
            live_sub = subscriber.create_subscription(
                name=f"projects/{project}/subscriptions/live", topic=live_topic
            ).name

            # 1. publish with the client's default batch settings.
            started = time.perf_counter()
            futures = [publisher.publish(backlog_topic, payload, seq=str(i)) for i in range(messages)]
            for f in futures:
                f.result(timeout=120)
            results.append(("publish", messages, time.perf_counter() - started))

            # 2. receive + ack the backlog just published.
            started = time.perf_counter()
            future, done, _ = _receive(subscriber, backlog_sub, messages)
            done.wait(timeout=300)
            elapsed = time.perf_counter() - started
            _wait_acked(emulator, backlog_sub, messages)
            future.cancel()
            results.append(("receive + ack a backlog", messages, elapsed))

            # 3. publish -> receive -> ack, all at once.
            future, done, _ = _receive(subscriber, live_sub, messages)
            time.sleep(0.5)  # let the stream open before the clock starts
            started = time.perf_counter()
            futures = [publisher.publish(live_topic, payload, seq=str(i)) for i in range(messages)]
            for f in futures:
                f.result(timeout=120)
            done.wait(timeout=300)
            elapsed = time.perf_counter() - started
            _wait_acked(emulator, live_sub, messages)
            future.cancel()
            results.append(("publish -> receive -> ack concurrently", messages, elapsed))
            cpu = _cpu_seconds(emulator.pid)
        finally:
            subscriber.close()
            publisher.stop()
    if cpu is not None:
        print(f"emulator CPU time for the whole run ({3 * messages} message transfers): {cpu:.2f} s")
    return results


def _wait_acked(emulator: EmulatorProcess, subscription: str, count: int) -> None:
    try:
        wait_until(lambda: emulator.subscription_state(subscription)["acked"] >= count, timeout=30)
    except AssertionError:
        state = emulator.subscription_state(subscription)
        print(f"warning: {subscription} acked only {state['acked']} of {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    results = run(args.messages, args.size)
    print(f"\nPub/Sub emulator, {args.messages} x {args.size} B messages, official client, one machine\n")
    print(f"| {'scenario':<40} | {'messages':>8} | {'seconds':>7} | {'msg/s':>8} |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 9}|{'-' * 10}|")
    for name, count, seconds in results:
        print(f"| {name:<40} | {count:>8} | {seconds:>7.2f} | {count / seconds:>8.0f} |")


if __name__ == "__main__":
    main()
