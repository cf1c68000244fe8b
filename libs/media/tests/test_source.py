"""Opening media by URI: the policy, local files, and Cloud Storage against a fake of its client.

Cloud Storage has no local stand-in, so the gs:// path runs against a fake `google.cloud.storage.Client` slice that
raises the real `google.api_core` exceptions the real client raises.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from requests import exceptions as req_exc

from captionqc.media.errors import MediaNotFound, MediaUriRejected, TransientMediaError
from captionqc.media.source import open_media
from captionqc.runtime.media_uri import MediaUriPolicy
from captionqc.runtime.testing.gcs import FakeGcs
from captionqc.runtime.testing.tls import rebinding_dns, tls_server
from captionqc.schemas import FailureReason

from .media_files import sample_clips

NO_FILES = MediaUriPolicy()


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    for tenant in ("acme", "beeb"):
        (root / tenant).mkdir(parents=True)
        shutil.copy(sample_clips()[0], root / tenant / "clip.mp4")
    return root


def test_file_uri_in_the_tenants_folder_is_read_in_place(media_root: Path) -> None:
    policy = MediaUriPolicy(media_root=media_root)
    with open_media((media_root / "acme" / "clip.mp4").as_uri(), policy, tenant="acme") as path:
        assert path == (media_root / "acme" / "clip.mp4").resolve()
    assert path.exists()


def test_missing_file_is_not_found(media_root: Path) -> None:
    with (
        pytest.raises(MediaNotFound) as err,
        open_media((media_root / "acme" / "nope.mp4").as_uri(), MediaUriPolicy(media_root=media_root), tenant="acme"),
    ):
        pass
    assert err.value.reason is FailureReason.MEDIA_NOT_FOUND
    assert "no media file" in err.value.message


@pytest.mark.parametrize("name", ["clip.mp4", "nope.mp4"])
def test_another_tenants_file_is_refused_before_anything_looks_for_it(media_root: Path, name: str) -> None:
    # The same refusal whether beeb's file exists or not: a job event naming it learns nothing.
    uri = (media_root / "beeb" / name).as_uri()
    with pytest.raises(MediaUriRejected) as err, open_media(uri, MediaUriPolicy(media_root), tenant="acme"):
        pass
    assert err.value.reason is FailureReason.MEDIA_URI_REJECTED
    assert "outside this tenant's media folder" in err.value.message


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("file:///etc/passwd", "outside this tenant's media folder"),
        ("ftp://example.com/a.mp4", "scheme 'ftp' is not allowed"),
        ("https://example.com/a.mp4", "not in the allow-list"),
        ("gs://bucket-name/", "must name an object"),
    ],
)
def test_rejected_uris_say_why(media_root: Path, uri: str, why: str) -> None:
    with pytest.raises(MediaUriRejected) as err, open_media(uri, MediaUriPolicy(media_root), tenant="acme"):
        pass
    assert err.value.reason is FailureReason.MEDIA_URI_REJECTED
    assert why in err.value.message


@pytest.mark.parametrize("target", ["outside", "beeb"])
def test_symlink_out_of_the_tenants_folder_is_rejected(media_root: Path, tmp_path: Path, target: str) -> None:
    (tmp_path / "secret.mp4").write_bytes(b"x")
    link = media_root / "acme" / "link.mp4"
    link.symlink_to(tmp_path / "secret.mp4" if target == "outside" else media_root / "beeb" / "clip.mp4")
    with pytest.raises(MediaUriRejected), open_media(link.as_uri(), MediaUriPolicy(media_root), tenant="acme"):
        pass


def test_gs_object_is_streamed_to_a_temp_file_and_removed(tmp_path: Path) -> None:
    gcs = FakeGcs()
    gcs.objects[("captionqc-media", "in/clip.mp4")] = b"media bytes"
    with open_media(
        "gs://captionqc-media/in/clip.mp4",
        MediaUriPolicy(),
        tenant="acme",
        gcs_client_factory=lambda: gcs,
        temp_dir=tmp_path,
    ) as path:
        assert path.name == "clip.mp4"
        assert path.read_bytes() == b"media bytes"
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_gs_missing_object_is_not_found(tmp_path: Path) -> None:
    gcs = FakeGcs()
    with (
        pytest.raises(MediaNotFound) as err,
        open_media(
            "gs://captionqc-media/nope.mp4",
            MediaUriPolicy(),
            tenant="acme",
            gcs_client_factory=lambda: gcs,
            temp_dir=tmp_path,
        ),
    ):
        pass
    assert "gs://captionqc-media/nope.mp4" in err.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "failure",
    [
        gexc.ServiceUnavailable("backend unavailable"),
        gexc.InternalServerError("oops"),
        gexc.TooManyRequests("slow down"),
        req_exc.ReadTimeout("read timed out"),
        req_exc.ConnectionError("connection reset"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_gs_transient_failures_are_retried(tmp_path: Path, failure: Exception) -> None:
    gcs = FakeGcs()
    gcs.objects[("captionqc-media", "clip.mp4")] = b"x"
    gcs.fail = failure
    with (
        pytest.raises(TransientMediaError),
        open_media(
            "gs://captionqc-media/clip.mp4",
            MediaUriPolicy(),
            tenant="acme",
            gcs_client_factory=lambda: gcs,
            temp_dir=tmp_path,
        ),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_https_media_comes_from_the_checked_address_with_tls_for_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
    with tls_server("media.example.test", tmp_path, payload) as server:
        lookups = rebinding_dns(monkeypatch, "media.example.test", server.ca_file)
        policy = MediaUriPolicy(allowed_https_hosts=frozenset({"media.example.test"}))
        uri = f"https://media.example.test:{server.port}/news/clip.mp4"
        with open_media(uri, policy, tenant="acme", temp_dir=tmp_path) as local:
            assert local.read_bytes() == payload
            assert local.name == "clip.mp4"
    # Resolved once, by the policy: a second, inward answer was never asked for or used.
    assert lookups == ["media.example.test"]
    assert [(s.method, s.path, s.host) for s in server.seen] == [
        ("GET", "/news/clip.mp4", f"media.example.test:{server.port}")
    ]


def test_https_certificate_must_match_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tls_server("other.example.test", tmp_path) as server:
        rebinding_dns(monkeypatch, "media.example.test", server.ca_file)
        policy = MediaUriPolicy(allowed_https_hosts=frozenset({"media.example.test"}))
        with (
            pytest.raises(TransientMediaError, match="CERTIFICATE_VERIFY_FAILED"),
            open_media(f"https://media.example.test:{server.port}/a.mp4", policy, tenant="acme", temp_dir=tmp_path),
        ):
            pass
    assert server.seen == []
