"""Property-based run over the gateway's own OpenAPI: no 5xx, and every response matches what the document says."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from captionqc.gateway.app import create_app
from captionqc.gateway.settings import GatewaySettings

from .conftest import bearer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 30


def _with_valid_media(case: schemathesis.Case) -> schemathesis.Case:
    if isinstance(case.body, dict):
        case.body = {**case.body, "media_uri": "gs://broadcast-media/fuzz.mp4"}
        case.body.pop("callback_url", None)
    return case


@pytest.mark.slow
async def test_openapi_fuzzing_finds_no_5xx_and_no_schema_violation(
    make_settings: Callable[..., GatewaySettings], media_root: Path
) -> None:
    # No consumer: the Pub/Sub client's threads draw from `random` while Hypothesis generates cases, which it
    # reports as a strategy using `random` (a flaky HypothesisDeprecationWarning). The fuzz is about HTTP.
    app = create_app(make_settings(max_body_bytes=16 * 1024, consume=False))
    headers = bearer(scopes=("jobs:write",))
    ran: dict[str, int] = {}
    statuses: Counter[int] = Counter()

    def fuzz() -> None:
        # Schemathesis runs the app (and its lifespan, once) on its own event-loop thread.
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        try:
            for result in schema.get_all_operations():
                operation = result.ok()
                # Negative data needs something to break: GET /healthz has no inputs at all.
                modes = [GenerationMode.POSITIVE]
                if len(operation.body) or len(operation.headers) or len(operation.query):
                    modes.append(GenerationMode.NEGATIVE)
                for mode in modes:
                    fuzz_operation(
                        operation, operation.as_strategy(generation_mode=mode), f"{operation.label} {mode.value}"
                    )
                if operation.method.upper() == "POST":
                    # Random media URIs almost never pass the policy: also fuzz everything else around a valid one,
                    # so the accept path (202, idempotent replays, 409 on key reuse) is exercised too.
                    strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE).map(_with_valid_media)
                    fuzz_operation(operation, strategy, f"{operation.label} positive-valid-media")
        finally:
            asgi.shutdown_lifespans()

    def fuzz_operation(operation: Any, strategy: Any, label: str) -> None:
        ran[label] = 0

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=timedelta(seconds=5),
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            ran[label] += 1
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[response.status_code] += 1

        check()

    await asyncio.to_thread(fuzz)
    assert any(label.startswith("POST /v1/jobs") for label in ran)
    assert all(count > 0 for count in ran.values()), ran
    assert statuses[202] > 0, statuses
