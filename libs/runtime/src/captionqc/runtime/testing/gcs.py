"""A fake of the slice of `google.cloud.storage.Client` captionqc calls: Cloud Storage has no local stand-in.

Objects live in memory. The fake raises the real `google.api_core` exceptions the real client raises: ``NotFound``
for a missing object, and whatever ``fail`` holds (a 503, a 429, a timeout) on every read and write. It serves the
media source (``download_to_filename``) and the claim-check result store (``upload_from_string``,
``download_as_bytes``).
"""

from __future__ import annotations

from pathlib import Path

from google.api_core import exceptions as gexc


class FakeGcs:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.content_types: dict[tuple[str, str], str] = {}
        self.fail: Exception | None = None

    def bucket(self, bucket_name: str) -> FakeBucket:
        return FakeBucket(self, bucket_name)


class FakeBucket:
    def __init__(self, gcs: FakeGcs, name: str) -> None:
        self.gcs, self.name = gcs, name

    def blob(self, blob_name: str) -> FakeBlob:
        return FakeBlob(self.gcs, self.name, blob_name)


class FakeBlob:
    def __init__(self, gcs: FakeGcs, bucket: str, name: str) -> None:
        self.gcs, self.bucket, self.name = gcs, bucket, name

    def upload_from_string(self, data: bytes, *, content_type: str, timeout: float) -> None:
        self._maybe_fail()
        self.gcs.objects[(self.bucket, self.name)] = data
        self.gcs.content_types[(self.bucket, self.name)] = content_type

    def download_as_bytes(self, *, timeout: float) -> bytes:
        self._maybe_fail()
        try:
            return self.gcs.objects[(self.bucket, self.name)]
        except KeyError:
            raise gexc.NotFound(f"GET gs://{self.bucket}/{self.name}: No such object") from None  # type: ignore[no-untyped-call]

    def download_to_filename(self, filename: str, *, timeout: float) -> None:
        Path(filename).write_bytes(self.download_as_bytes(timeout=timeout))

    def _maybe_fail(self) -> None:
        if self.gcs.fail is not None:
            raise self.gcs.fail
