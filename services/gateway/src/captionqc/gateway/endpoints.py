"""``POST /v1/jobs``: parse, call the service layer in one unit of work, map the outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from captionqc.gateway import service
from captionqc.gateway.runtime import GatewayRuntime, gateway_runtime
from captionqc.runtime.db import unit_of_work
from captionqc.runtime.http.auth import Principal, require_scopes
from captionqc.runtime.http.errors import ApiError, error_responses
from captionqc.schemas.api import JobAccepted, JobCreate

router = APIRouter(prefix="/v1", tags=["jobs"])


class UnsupportedMediaType(ApiError):
    status_code = 415
    error = "unsupported_media_type"


async def job_create_body(request: Request) -> JobCreate:
    """The body as a strict ``JobCreate``, parsed from JSON by pydantic itself.

    Not a plain ``body: JobCreate`` parameter: FastAPI validates the already-decoded dict, and the strict contract
    models refuse JSON strings for enums (``"misspelling"``) outside JSON mode.
    """
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType("The request body must be application/json.")
    raw = await request.body()
    try:
        return JobCreate.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_input=False)]
        raise RequestValidationError(errors) from None


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe key, per tenant: the same key with the same body gets the same answer.",
    ),
]


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobAccepted,
    responses={
        202: {
            "description": "Accepted: the job is recorded and announced; follow `links.status`.",
            "headers": {"Location": {"description": "The job's status URL.", "schema": {"type": "string"}}},
        },
        **error_responses(401, 403, 409, 413, 415, 422, 500),
        429: {
            **error_responses(429)[429],
            "description": "A quota of the tenant's is reached (`details[0].loc` names it); retry after `Retry-After`.",
            "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}}},
        }
    },
)
async def create_job(
    request: Request,
    principal: Annotated[Principal, Depends(require_scopes("jobs:write"))],
    job: Annotated[JobCreate, Depends(job_create_body)],
    runtime: Annotated[GatewayRuntime, Depends(gateway_runtime)],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Accept a job to check one media file; answers at once, the work happens downstream."""
    async with unit_of_work(runtime.sessions) as session:
        outcome = await service.accept_job(
            session,
            principal=principal,
            job=job,
            settings=runtime.settings,
            idempotency_key=idempotency_key,
            request_id=getattr(request.state, "request_id", None),
        )
    if outcome.created:
        runtime.relay.wake()
    headers = {"Location": str(outcome.body["links"]["status"])}
    if not outcome.created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)
