"""Media errors, classified: a permanent one fails the stage with a reason; a transient one is retried."""

from __future__ import annotations

from typing import Literal

from captionqc.runtime.errors import PermanentError, TransientError
from captionqc.schemas import FailureReason


class MediaError(Exception):
    """Base of every media error."""


class PermanentMediaError(MediaError, PermanentError):
    """The media can never be processed as it is: the stage publishes ``*.failed`` with ``reason``."""


class MediaNotFound(PermanentMediaError):
    def __init__(self, message: str) -> None:
        super().__init__(FailureReason.MEDIA_NOT_FOUND, message)


class MediaUnreadable(PermanentMediaError):
    def __init__(self, message: str) -> None:
        super().__init__(FailureReason.MEDIA_UNREADABLE, message)


class NoVideoStream(PermanentMediaError):
    def __init__(self, message: str = "the media has no video stream, so there are no captions to read") -> None:
        super().__init__(FailureReason.NO_VIDEO_STREAM, message)


class NoAudioStream(PermanentMediaError):
    def __init__(self, message: str = "the media has no audio stream, so there is no speech to transcribe") -> None:
        super().__init__(FailureReason.NO_AUDIO_STREAM, message)


class MediaTooLong(PermanentMediaError):
    def __init__(self, duration_s: float, max_s: float) -> None:
        super().__init__(
            FailureReason.MEDIA_TOO_LONG,
            f"the media lasts {duration_s:.0f} s, longer than the configured maximum of {max_s:.0f} s",
        )


class UnsupportedCodec(PermanentMediaError):
    """FFmpeg has no decoder for the ``kind`` stream a stage needs."""

    def __init__(self, kind: Literal["audio", "video"]) -> None:
        super().__init__(FailureReason.UNSUPPORTED_CODEC, f"the {kind} stream uses a codec this service cannot decode")


class MediaUriRejected(PermanentMediaError):
    def __init__(self, message: str) -> None:
        super().__init__(FailureReason.MEDIA_URI_REJECTED, message)


class TransientMediaError(MediaError, TransientError):
    """Storage hiccup or timeout: nack, and the subscription's retry policy backs off."""
