"""Error classes a consumer handler raises to say how a failure must be treated."""

from __future__ import annotations

from captionqc.schemas import FailureReason, Refusal


class PermanentError(Exception):
    """Retrying cannot help: the consumer publishes ``captionqc.<stage>.failed`` with ``reason`` and acks."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class MessageTooLarge(PermanentError):
    """A message over ``max_message_bytes`` was about to be published; sending it again cannot help."""

    def __init__(self, topic: str, size: int, limit: int) -> None:
        super().__init__(
            FailureReason.INTERNAL,
            f"a {size}-byte message for {topic} exceeds the {limit}-byte message limit (max_message_bytes)",
        )
        self.size = size
        self.limit = limit


class TransientError(Exception):
    """Worth another try: the consumer nacks, and the subscription's retry policy backs off."""


class MessageRefused(Exception):
    """The message must not be acted on at all (a bad token, another tenant's job, …): the consumer forwards it to
    the dead-letter topic with ``reason`` and acks. Never a ``*.failed`` event: a refused message is not a job's
    failure, and may not even name a job of its sender's. ``message`` is recorded with it, so it names no secret
    and no other tenant."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
