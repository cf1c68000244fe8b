"""Claim-check storage for results too large for one message: JSON put under a key, fetched back by URI.

`LocalResultStore` writes under a folder (``file://`` URIs); `GcsResultStore` writes to a bucket (``gs://``).
`result_store_from_uri` picks one from a results URI setting: the same code path locally and in production.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

from captionqc.runtime.errors import PermanentError, TransientError
from captionqc.schemas import FailureReason

# Keys are built by our own code from job ids and engine names; anything else is a bug or an attack.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class StorageUnavailable(TransientError):
    """The store failed or timed out (5xx, 429): worth another try, so the consumer nacks."""


class ResultNotFound(PermanentError):
    """A claim-check URI that points at nothing (deleted, or never written): retrying cannot bring it back."""

    def __init__(self, message: str) -> None:
        super().__init__(FailureReason.RESULT_MISSING, message)


class ResultStore(Protocol):
    def put_json(self, key: str, data: bytes) -> str:
        """Store ``data`` (JSON bytes) under ``key`` and return its URI; the same key again replaces it."""
        ...

    def get_json(self, uri: str) -> bytes:
        """The bytes stored at ``uri`` (a URI this kind of store returned)."""
        ...


def _check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid result key {key!r}")
    return key


class LocalResultStore:
    """Results as files under ``root``; URIs are ``file://`` URIs of absolute paths."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def put_json(self, key: str, data: bytes) -> str:
        path = self.root / _check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a result (a redelivered job may write the same key).
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path.as_uri()

    def get_json(self, uri: str) -> bytes:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise ValueError(f"not a file:// result URI: {uri!r}")
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"result URI {uri!r} is outside the results folder")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ResultNotFound(f"no stored result at {uri}") from None


class GcsBlobIO(Protocol):
    def upload_from_string(self, data: bytes, *, content_type: str, timeout: float) -> Any: ...

    def download_as_bytes(self, *, timeout: float) -> bytes: ...


class GcsBucketIO(Protocol):
    def blob(self, blob_name: str) -> GcsBlobIO: ...


class GcsClientIO(Protocol):
    def bucket(self, bucket_name: str) -> GcsBucketIO: ...


class GcsResultStore:
    """Results as objects ``gs://<bucket>/<prefix>/<key>``.

    Cloud Storage cannot run locally and has no emulator here, so this class is unit-tested only against a
    fake of the `google.cloud.storage.Client` slice it uses (`GcsClientIO`); only production runs it for real.
    """

    def __init__(
        self, bucket: str, prefix: str = "", *, client: GcsClientIO | None = None, timeout_s: float = 60.0
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self.timeout_s = timeout_s

    def _bucket(self) -> GcsBucketIO:
        if self._client is None:
            from google.cloud import storage  # type: ignore[attr-defined]

            self._client = storage.Client()
        return self._client.bucket(self.bucket)

    def put_json(self, key: str, data: bytes) -> str:
        name = str(PurePosixPath(self.prefix) / _check_key(key)) if self.prefix else _check_key(key)
        with _classified(f"gs://{self.bucket}/{name}"):
            self._bucket().blob(name).upload_from_string(data, content_type="application/json", timeout=self.timeout_s)
        return f"gs://{self.bucket}/{name}"

    def get_json(self, uri: str) -> bytes:
        parts = urlsplit(uri)
        if parts.scheme != "gs" or parts.netloc != self.bucket:
            raise ValueError(f"result URI {uri!r} is not in gs://{self.bucket}")
        name = parts.path.lstrip("/")
        with _classified(uri):
            return self._bucket().blob(name).download_as_bytes(timeout=self.timeout_s)


class _classified:
    """Map Cloud Storage failures: missing → `ResultNotFound`; 5xx, 429, timeouts → `StorageUnavailable`."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is None:
            return False
        from google.api_core import exceptions as gexc
        from requests import exceptions as req_exc

        if isinstance(exc, gexc.NotFound):
            raise ResultNotFound(f"no stored result at {self.uri}") from None
        if isinstance(exc, gexc.ServerError | gexc.TooManyRequests | gexc.RetryError | req_exc.RequestException):
            raise StorageUnavailable(f"Cloud Storage failed on {self.uri}: {exc}") from exc
        if isinstance(exc, TimeoutError):
            raise StorageUnavailable(f"Cloud Storage timed out on {self.uri}") from exc
        return False


def result_store_from_uri(results_uri: str, *, gcs_client: GcsClientIO | None = None) -> ResultStore:
    """``gs://bucket/prefix`` → `GcsResultStore`; ``file:///abs/dir`` or a plain path → `LocalResultStore`."""
    parts = urlsplit(results_uri)
    if parts.scheme == "gs":
        if not parts.netloc:
            raise ValueError(f"results URI {results_uri!r} names no bucket")
        return GcsResultStore(parts.netloc, parts.path, client=gcs_client)
    if parts.scheme == "file":
        return LocalResultStore(Path(unquote(parts.path)))
    if parts.scheme:
        raise ValueError(f"unsupported results URI scheme {parts.scheme!r} (use gs://, file:// or a path)")
    return LocalResultStore(Path(results_uri))
