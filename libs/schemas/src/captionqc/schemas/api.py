"""HTTP API contracts shared by the gateway, the status service and the CLI."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from captionqc.schemas.base import Contract
from captionqc.schemas.events import JobOptions, LanguageTag, Uri


class JobCreate(Contract):
    """A request to check one media file."""

    media_uri: Annotated[Uri, Field(examples=["gs://broadcast-media/news/0612.mp4"])]
    language: LanguageTag = "en-US"
    options: JobOptions = Field(default_factory=JobOptions)
    callback_url: Uri | None = Field(
        default=None, description="HTTPS URL that gets one signed POST when the job completes or fails."
    )


class JobLinks(Contract):
    status: str


class JobAccepted(Contract):
    job_id: str
    status: str = "accepted"
    links: JobLinks


class ErrorDetail(Contract):
    """One problem with the request: where (`loc`) and what."""

    loc: list[str | int] = Field(default_factory=list)
    msg: str
    type: str


class ErrorBody(Contract):
    """The one shape of every error response."""

    error: str = Field(description="Machine-readable code, e.g. `validation_error`, `not_found`.")
    message: str = Field(description="What went wrong, for a person.")
    request_id: str | None = None
    details: list[ErrorDetail] = Field(default_factory=list)


def error_body(
    error: str, message: str, *, request_id: str | None = None, details: list[Any] | None = None
) -> dict[str, Any]:
    return ErrorBody(
        error=error,
        message=message,
        request_id=request_id,
        details=[ErrorDetail.model_validate(d) if isinstance(d, dict) else d for d in details or []],
    ).model_dump(mode="json")
