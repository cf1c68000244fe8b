"""Open media by URI under the media URI policy, as a local file the decoders can read.

The policy is checked again here, for the tenant the job belongs to, before anything is opened: the gateway
checked it at the door, and a stage must not read another tenant's file whatever the event says (``file://``
under ``<media_root>/<tenant>/`` only; the registry's ``gs://`` prefixes are out of a stage's reach and were
checked at the gateway). ``file://`` media is read in place; ``gs://`` and ``https://`` media are streamed to a
temporary file that is removed when the context ends. Storage failures are classified: a missing object is a
permanent `MediaNotFound`; a 5xx, a 429 or a timeout is a `TransientMediaError`, so the message is retried.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

from captionqc.media.errors import MediaNotFound, MediaUriRejected, TransientMediaError
from captionqc.runtime.media_uri import (
    CheckedMediaUri,
    MediaArea,
    MediaUriError,
    MediaUriPolicy,
    check_media_uri,
    request_target,
)

DEFAULT_DOWNLOAD_TIMEOUT_S = 300.0


class GcsBlob(Protocol):
    def download_to_filename(self, filename: str, *, timeout: float) -> Any: ...


class GcsBucket(Protocol):
    def blob(self, blob_name: str) -> GcsBlob: ...


class GcsClient(Protocol):
    """The slice of `google.cloud.storage.Client` used here; tests pass a fake (GCS cannot run locally)."""

    def bucket(self, bucket_name: str) -> GcsBucket: ...


def default_gcs_client() -> GcsClient:
    from google.cloud import storage  # type: ignore[attr-defined]

    client: GcsClient = storage.Client()
    return client


@contextlib.contextmanager
def open_media(
    uri: str,
    policy: MediaUriPolicy,
    *,
    tenant: str,
    gcs_client_factory: Callable[[], GcsClient] = default_gcs_client,
    temp_dir: Path | None = None,
    timeout_s: float = DEFAULT_DOWNLOAD_TIMEOUT_S,
    resolve_dns: bool = True,
) -> Iterator[Path]:
    """Yield a local path holding ``tenant``'s media at ``uri``; temporary copies are deleted on exit."""
    try:
        checked = check_media_uri(uri, policy, area=MediaArea(tenant, check_gs=False), resolve_dns=resolve_dns)
    except MediaUriError as exc:
        raise MediaUriRejected(f"the media URI was refused: {exc.message}") from None

    if checked.scheme == "file":
        assert checked.local_path is not None
        if not checked.local_path.is_file():
            raise MediaNotFound(f"no media file at {uri}")
        yield checked.local_path
        return

    workdir = Path(tempfile.mkdtemp(prefix="captionqc-media-", dir=temp_dir))
    try:
        # Keep the object's suffix: FFmpeg probes by content, but a suffix helps it pick the demuxer faster.
        name = PurePosixPath(urlsplit(uri).path).name or "media"
        local = workdir / name
        if checked.scheme == "gs":
            _download_gcs(checked, local, gcs_client_factory(), timeout_s)
        else:
            _download_https(checked, local, timeout_s)
        yield local
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _download_gcs(checked: CheckedMediaUri, local: Path, client: GcsClient, timeout_s: float) -> None:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from requests import exceptions as req_exc

    assert checked.bucket is not None
    assert checked.object_name is not None
    blob = client.bucket(checked.bucket).blob(checked.object_name)
    try:
        blob.download_to_filename(str(local), timeout=timeout_s)
    except gexc.NotFound:
        raise MediaNotFound(f"no object at {checked.uri} (the bucket or the object does not exist)") from None
    except gexc.Forbidden:
        # A permission problem does not heal by retrying the same message; a person must grant access.
        raise MediaNotFound(
            f"the service account may not read {checked.uri} (grant it storage.objects.get on the bucket)"
        ) from None
    except (gexc.ServerError, gexc.TooManyRequests, gexc.RetryError) as exc:
        raise TransientMediaError(f"Cloud Storage failed to serve {checked.uri}: {exc}") from exc
    except (req_exc.ConnectionError, req_exc.Timeout, auth_exc.TransportError, TimeoutError) as exc:
        raise TransientMediaError(f"Cloud Storage did not answer for {checked.uri}: {exc}") from exc


def _download_https(checked: CheckedMediaUri, local: Path, timeout_s: float) -> None:
    import httpx

    # Through the address the policy checked (no second DNS answer), and no redirects: the policy checked this
    # host, not wherever a redirect might lead.
    url, headers, extensions = request_target(checked.uri, checked.pinned)
    try:
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=False) as client,
            client.stream("GET", url, headers=headers, extensions=extensions) as response,
            local.open("wb") as out,
        ):
            if response.status_code in {404, 410}:
                raise MediaNotFound(f"no media at {checked.uri} (HTTP {response.status_code})")
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientMediaError(f"{checked.host} answered HTTP {response.status_code}")
            if response.status_code != 200:
                raise MediaNotFound(f"{checked.uri} could not be fetched (HTTP {response.status_code})")
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)
    except httpx.TransportError as exc:
        raise TransientMediaError(f"fetching {checked.uri} failed: {exc}") from exc
