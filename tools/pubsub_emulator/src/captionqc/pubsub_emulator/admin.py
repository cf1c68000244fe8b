"""A tiny HTTP/1.1 JSON endpoint on asyncio for people and tests to look inside the emulator.

`GET /healthz`, `GET /v1/state[?project=ID]`, and `POST /v1/close-streams[?subscription=NAME]` (ends open
StreamingPull calls with UNAVAILABLE, as a server restart or a load balancer would; clients reopen them).
Stdlib only, one request per connection: it serves a handful of requests, not traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc

from captionqc.pubsub_emulator.broker import Broker

_LOG = logging.getLogger(__name__)
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class AdminServer:
    def __init__(self, broker: Broker, host: str, port: int) -> None:
        self.broker = broker
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await asyncio.wait_for(self._respond(reader), timeout=10)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            status, body = 400, {"error": "bad request"}
        payload = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + payload)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, Any]:
        request_line = (await reader.readline()).decode("latin-1").strip()
        parts = request_line.split()
        if len(parts) != 3:
            return 400, {"error": "bad request line"}
        method, target, _ = parts
        length = 0
        while True:
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(min(length, 65536))
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/healthz":
            return 200, {"status": "ok"}
        if url.path == "/v1/state":
            if method != "GET":
                return 405, {"error": "use GET"}
            return 200, self.broker.state(query.get("project"))
        if url.path == "/v1/close-streams":
            if method != "POST":
                return 405, {"error": "use POST"}
            closed = self.broker.close_streams(
                query.get("subscription"),
                grpc.StatusCode.UNAVAILABLE,
                "Stream closed by the emulator's admin API.",
            )
            _LOG.info("admin closed %d streams", closed)
            return 200, {"closed": closed}
        return 404, {"error": f"no route for {url.path}"}
