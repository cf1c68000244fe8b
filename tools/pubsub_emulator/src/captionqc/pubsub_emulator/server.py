"""Wiring: the gRPC server, the admin endpoint, the ticker, signals and an orderly shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

import grpc

from captionqc.pubsub_emulator.admin import AdminServer
from captionqc.pubsub_emulator.broker import Broker
from captionqc.pubsub_emulator.service import PubSubService
from captionqc.pubsub_emulator.store import Store

_LOG = logging.getLogger(__name__)

TICK_S = 0.02
FLUSH_S = 0.1
# Pub/Sub accepts 10 MB publishes; gRPC's default 4 MiB receive limit would refuse them.
MAX_MESSAGE_BYTES = 20 * 1024 * 1024


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _tick(broker: Broker) -> None:
    last_flush = time.monotonic()
    while True:
        await asyncio.sleep(TICK_S)
        try:
            broker.tick()
            now = time.monotonic()
            if now - last_flush >= FLUSH_S:
                last_flush = now
                broker.flush()
        except Exception:  # a bug here must not stop lease expiry for good
            _LOG.exception("ticker failed")


async def serve(host: str, port: int, admin_port: int, data_dir: Path | None) -> None:
    """Run until SIGTERM/SIGINT, then close streams with UNAVAILABLE and flush the data dir."""
    store = Store(data_dir) if data_dir is not None else None
    broker = Broker(store)
    service = PubSubService(broker)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # gRPC sets SO_REUSEPORT by default: a second emulator on a taken port would silently share it.
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers(service.handlers())
    bound = server.add_insecure_port(_hostport(host, port))
    if bound == 0:
        raise SystemExit(f"pubsub-emulator: cannot listen on {_hostport(host, port)}")
    await server.start()
    admin = AdminServer(broker, host, admin_port)
    admin_bound = await admin.start()
    ticker = asyncio.create_task(_tick(broker))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    grpc_address, admin_address = _hostport(host, bound), _hostport(host, admin_bound)
    print(f"pubsub-emulator listening grpc={grpc_address} admin=http://{admin_address}", flush=True)
    _LOG.info("data dir: %s", store.path if store is not None else "none (memory only)")
    await stop.wait()

    _LOG.info("shutting down")
    service.shutting_down = True
    # UNAVAILABLE, never OK: the client treats an OK end of a stream as fatal, and UNAVAILABLE as "reconnect".
    broker.close_streams(None, grpc.StatusCode.UNAVAILABLE, "The emulator is shutting down.")
    # Give the handlers a moment to send their UNAVAILABLE before the server cancels what is left.
    for _ in range(200):
        if not any(sub.streams for sub in broker.subscriptions.values()):
            break
        await asyncio.sleep(0.01)
    await server.stop(grace=1.0)
    await admin.stop()
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    if store is not None:
        store.close()
    _LOG.info("stopped")
    sys.stdout.flush()
