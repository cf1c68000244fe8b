"""Local files handed to the local stack: each tenant's in its own folder, under names no other upload can take."""

from __future__ import annotations

from pathlib import Path

import pytest

from captionqc.cli.main import _media_uri, _tenant_of
from captionqc.devstack.media import SAMPLES, copy_samples, upload
from captionqc.runtime.http.auth import mint_local_token
from captionqc.runtime.media_uri import MediaArea, MediaUriError, MediaUriPolicy, check_media_uri
from captionqc.runtime.tenants import TenantError


def _clip(folder: Path, content: bytes, name: str = "news_council.mp4") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return folder / name


def test_two_tenants_uploading_one_name_never_share_or_overwrite(tmp_path: Path) -> None:
    root = tmp_path / "media"
    acme = upload(root, "acme", _clip(tmp_path / "a", b"acme's programme"))
    beeb = upload(root, "beeb", _clip(tmp_path / "b", b"beeb's programme"))
    assert acme.parent == (root / "acme" / "uploads").resolve()
    assert beeb.parent == (root / "beeb" / "uploads").resolve()
    assert (acme.read_bytes(), beeb.read_bytes()) == (b"acme's programme", b"beeb's programme")
    # Each is readable by its own tenant only, as the services check it.
    policy = MediaUriPolicy(media_root=root)
    assert check_media_uri(acme.as_uri(), policy, area=MediaArea("acme")).local_path == acme
    with pytest.raises(MediaUriError) as err:
        check_media_uri(beeb.as_uri(), policy, area=MediaArea("acme"))
    assert err.value.rule == "outside_tenant_area"


def test_one_tenant_uploading_two_files_of_one_name_keeps_both_and_reuses_a_repeat(tmp_path: Path) -> None:
    root = tmp_path / "media"
    first = upload(root, "acme", _clip(tmp_path / "monday", b"monday"))
    second = upload(root, "acme", _clip(tmp_path / "tuesday", b"tuesday"))
    again = upload(root, "acme", _clip(tmp_path / "monday-again", b"monday"))
    assert first != second
    assert again == first
    assert first.name.endswith("-news_council.mp4")
    assert (first.read_bytes(), second.read_bytes()) == (b"monday", b"tuesday")
    assert sorted(p.name for p in (root / "acme" / "uploads").iterdir()) == sorted([first.name, second.name])


def test_a_file_already_in_the_tenants_folder_is_used_in_place(tmp_path: Path) -> None:
    root = tmp_path / "media"
    inside = _clip(root / "acme" / "incoming", b"x")
    assert upload(root, "acme", inside) == inside.resolve()
    assert not (root / "acme" / "uploads").exists()
    # Another tenant's folder is not "in place" for acme: it gets its own copy.
    theirs = _clip(root / "beeb", b"y", "clip.mp4")
    assert upload(root, "acme", theirs).parent == (root / "acme" / "uploads").resolve()


@pytest.mark.parametrize("tenant", ["..", "../beeb", "a/b", "", "ACME"])
def test_a_name_that_is_no_tenant_gets_no_folder(tmp_path: Path, tenant: str) -> None:
    with pytest.raises(TenantError):
        upload(tmp_path / "media", tenant, _clip(tmp_path, b"x"))


def test_samples_are_copied_per_tenant(tmp_path: Path) -> None:
    root = tmp_path / "media"
    folder = copy_samples(root, "demo")
    assert folder == root / "demo" / "samples"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(p.name for p in SAMPLES.glob("*.mp4"))
    assert copy_samples(root, "demo") == folder  # a second start copies nothing new
    assert sorted(p.name for p in copy_samples(root, "e2e").iterdir()) == names


def test_cli_submit_of_a_local_file_uploads_into_the_tokens_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPTIONQC_VAR_DIR", str(tmp_path / "var"))
    token = mint_local_token("s" * 40, tenant="beeb", scopes=("jobs:write",))
    assert _tenant_of(token) == "beeb"
    assert _tenant_of("not-a-token") is None
    uri = _media_uri(str(_clip(tmp_path / "here", b"beeb's programme")), _tenant_of(token))
    assert uri.startswith((tmp_path / "var" / "media" / "beeb" / "uploads").resolve().as_uri() + "/")
    assert uri.endswith("-news_council.mp4")
    assert _media_uri("gs://bucket/beeb/x.mp4", None) == "gs://bucket/beeb/x.mp4"
