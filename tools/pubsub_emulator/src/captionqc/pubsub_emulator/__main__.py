"""`pubsub-emulator`: run the local Pub/Sub emulator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pubsub-emulator",
        description="A local Google Cloud Pub/Sub emulator (gRPC google.pubsub.v1). "
        "Point clients at it with PUBSUB_EMULATOR_HOST=host:port.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8085, help="gRPC port (default 8085; 0 picks a free one)")
    parser.add_argument("--admin-port", type=int, default=0, help="admin HTTP port (default 0: a free one)")
    parser.add_argument("--data-dir", type=Path, default=None, help="persist state in DIR (SQLite); memory if unset")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from captionqc.pubsub_emulator.server import serve

    asyncio.run(serve(args.host, args.port, args.admin_port, args.data_dir))


if __name__ == "__main__":
    main()
