"""``python -m captionqc.status``: migrate, then serve the query API and consume the status subscriptions."""

from __future__ import annotations

import os

import uvicorn

from captionqc.runtime.logs import configure_logging
from captionqc.runtime.tracing import configure_tracing, shutdown_tracing
from captionqc.status.app import create_app
from captionqc.status.migrate import migrate
from captionqc.status.settings import StatusSettings


def main() -> None:
    settings = StatusSettings()
    configure_logging(settings.service_name, settings.gcp_project, settings.log_level)
    configure_tracing(settings)
    migrate(settings.database_dsn())
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.http_host,
            # Cloud Run says which port to listen on.
            port=int(os.environ.get("PORT", settings.http_port)),
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        )
    finally:
        shutdown_tracing()


if __name__ == "__main__":
    main()
