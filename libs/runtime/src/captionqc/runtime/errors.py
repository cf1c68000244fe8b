"""Error classes a consumer handler raises to say how a failure must be treated."""

from __future__ import annotations

from captionqc.schemas import FailureReason


class PermanentError(Exception):
    """Retrying cannot help: the consumer publishes ``captionqc.<stage>.failed`` with ``reason`` and acks."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class TransientError(Exception):
    """Worth another try: the consumer nacks, and the subscription's retry policy backs off."""
