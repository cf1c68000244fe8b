from __future__ import annotations

import socket
from pathlib import Path

import pytest

from captionqc.runtime.media_uri import (
    MediaArea,
    MediaUriError,
    MediaUriPolicy,
    check_https_host,
    check_media_uri,
    pin_https_url,
)

ACME = MediaArea("acme", gs_prefixes=("gs://broadcast-media/acme/", "gs://acme-archive/"))
NO_AREA = MediaArea("acme")


@pytest.fixture
def policy(tmp_path: Path) -> MediaUriPolicy:
    """<root>/acme and <root>/beeb, each with a clip; links out of acme's folder; a secret beside the root."""
    root = tmp_path / "media"
    for tenant in ("acme", "beeb", "acme-evil"):
        (root / tenant).mkdir(parents=True)
        (root / tenant / "clip.mp4").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("s")
    (root / "acme" / "escape.mp4").symlink_to(tmp_path / "secret.txt")
    (root / "acme" / "to-beeb.mp4").symlink_to(root / "beeb" / "clip.mp4")
    (root / "acme" / "beeb-folder").symlink_to(root / "beeb")
    (root / "acme" / "loop").symlink_to(root / "acme" / "loop")
    (root / "beeb" / "loop").symlink_to(root / "beeb" / "loop")
    return MediaUriPolicy(media_root=root, allowed_https_hosts=frozenset({"media.example.com", "127.0.0.1"}))


def test_gs_uri_under_a_registered_prefix_is_allowed(policy: MediaUriPolicy) -> None:
    checked = check_media_uri("gs://broadcast-media/acme/news/0612.mp4", policy, area=ACME)
    assert (checked.bucket, checked.object_name) == ("broadcast-media", "acme/news/0612.mp4")
    assert check_media_uri("gs://acme-archive/any/thing.mp4", policy, area=ACME).bucket == "acme-archive"


def test_file_uri_in_the_tenants_folder_is_allowed(policy: MediaUriPolicy) -> None:
    assert policy.media_root is not None
    checked = check_media_uri(f"file://{policy.media_root}/acme/clip.mp4", policy, area=ACME)
    assert checked.local_path == (policy.media_root / "acme" / "clip.mp4").resolve()


def test_a_tenant_folder_that_is_a_symlink_is_followed(policy: MediaUriPolicy, tmp_path: Path) -> None:
    assert policy.media_root is not None
    (tmp_path / "volume").mkdir()
    (tmp_path / "volume" / "clip.mp4").write_bytes(b"x")
    (policy.media_root / "mounted").symlink_to(tmp_path / "volume")
    checked = check_media_uri(f"file://{policy.media_root}/mounted/clip.mp4", policy, area=MediaArea("mounted"))
    assert checked.local_path == tmp_path / "volume" / "clip.mp4"


@pytest.mark.parametrize(
    ("uri", "rule"),
    [
        # Another tenant's media, however it is spelled.
        ("file://{root}/beeb/clip.mp4", "outside_tenant_area"),
        ("file://{root}/beeb/missing.mp4", "outside_tenant_area"),  # the same answer whether it exists or not
        ("file://{root}/beeb/loop", "outside_tenant_area"),  # … and nothing there is resolved
        ("file://{root}/nobody/clip.mp4", "outside_tenant_area"),
        ("file://{root}/acme-evil/clip.mp4", "outside_tenant_area"),  # a prefix of the name is not the folder
        ("file://{root}/ACME/clip.mp4", "outside_tenant_area"),
        ("file://{root}/Acme/clip.mp4", "outside_tenant_area"),
        ("file://{root}/acme%2F..%2Fbeeb/clip.mp4", "path_escape"),
        ("file://{root}/acme/../beeb/clip.mp4", "path_escape"),
        ("file://{root}/acme/%2e%2e/beeb/clip.mp4", "path_escape"),
        ("file://{root}/acme/%2E%2E/beeb/clip.mp4", "path_escape"),
        ("file://{root}/acme/to-beeb.mp4", "outside_tenant_area"),  # a symlink into beeb's folder
        ("file://{root}/acme/beeb-folder/clip.mp4", "outside_tenant_area"),
        ("file://{root}/acme/escape.mp4", "outside_tenant_area"),  # a symlink out of the root
        ("file://{root}/acme/loop", "path_escape"),
        ("file://{root}/clip.mp4", "outside_tenant_area"),  # the root itself is nobody's
        ("file://{root}", "outside_tenant_area"),
        ("file://{root}/acme%00/clip.mp4", "uri_syntax"),
        ("file:///etc/passwd", "outside_tenant_area"),
        ("file:///{root}/acme/clip.mp4", "outside_tenant_area"),  # "//" may be another root to POSIX
        ("file:acme/clip.mp4", "outside_tenant_area"),  # relative: never resolved against the working folder
        ("file://otherhost{root}/acme/clip.mp4", "file_host"),
        # gs:// outside the tenant's prefixes.
        ("gs://broadcast-media/beeb/clip.mp4", "outside_tenant_area"),
        ("gs://broadcast-media/acme-evil/x.mp4", "outside_tenant_area"),
        ("gs://broadcast-media/acme", "outside_tenant_area"),
        ("gs://broadcast-media/ACME/x.mp4", "outside_tenant_area"),
        ("gs://broadcast-media/x/acme/x.mp4", "outside_tenant_area"),
        ("gs://other-bucket/acme/x.mp4", "outside_tenant_area"),
        ("gs://acme-archive-2/x.mp4", "outside_tenant_area"),
        ("gs://broadcast-media/acme%2F..%2Fbeeb/x.mp4", "outside_tenant_area"),
        ("gs://broadcast-media/acme/../beeb/x.mp4", "path_escape"),
        ("gs://broadcast-media/acme/./x.mp4", "path_escape"),
        # Rules that hold for every tenant.
        ("https://127.0.0.1/clip.mp4", "private_address"),
        ("https://10.1.2.3/clip.mp4", "private_address"),
        ("https://[::1]/clip.mp4", "private_address"),
        ("https://169.254.169.254/computeMetadata/v1/", "metadata_host"),
        ("https://metadata.google.internal/computeMetadata/v1/", "metadata_host"),
        ("https://user:pw@media.example.com/a.mp4", "userinfo"),
        ("https://not-allowed.example.org/a.mp4", "host_not_allowed"),
        ("http://media.example.com/a.mp4", "scheme_not_allowed"),
        ("ftp://media.example.com/a.mp4", "scheme_not_allowed"),
        ("/local/path.mp4", "scheme_not_allowed"),
        ("gs://Bad_Bucket/a.mp4", "gs_bucket"),
        ("gs://bucket-name/", "gs_object"),
        ("gs://bucket-name/a\nb", "uri_syntax"),
    ],
)
def test_rejected_uris_name_their_rule(policy: MediaUriPolicy, uri: str, rule: str) -> None:
    with pytest.raises(MediaUriError) as err:
        check_media_uri(uri.format(root=policy.media_root), policy, area=ACME, resolve_dns=False)
    assert err.value.rule == rule


def test_the_same_uri_is_allowed_to_its_owner_only(policy: MediaUriPolicy) -> None:
    uri = f"file://{policy.media_root}/beeb/clip.mp4"
    assert check_media_uri(uri, policy, area=MediaArea("beeb")).local_path is not None
    with pytest.raises(MediaUriError) as err:
        check_media_uri(uri, policy, area=ACME)
    assert err.value.rule == "outside_tenant_area"


@pytest.mark.parametrize("tenant", ["..", "", "acme/../beeb", "a/b", "ACME", "."])
def test_a_tenant_name_that_is_not_one_folder_has_no_file_area(policy: MediaUriPolicy, tenant: str) -> None:
    with pytest.raises(MediaUriError) as err:
        check_media_uri(f"file://{policy.media_root}/beeb/clip.mp4", policy, area=MediaArea(tenant))
    assert err.value.rule == "outside_tenant_area"


def test_a_tenant_without_gs_prefixes_has_no_gs_area(policy: MediaUriPolicy) -> None:
    with pytest.raises(MediaUriError) as err:
        check_media_uri("gs://broadcast-media/acme/x.mp4", policy, area=NO_AREA)
    assert err.value.rule == "outside_tenant_area"


def test_stages_without_the_registry_check_file_areas_but_not_gs_prefixes(policy: MediaUriPolicy) -> None:
    stage_area = MediaArea("acme", check_gs=False)
    assert check_media_uri("gs://broadcast-media/anything.mp4", policy, area=stage_area).bucket == "broadcast-media"
    with pytest.raises(MediaUriError) as err:
        check_media_uri(f"file://{policy.media_root}/beeb/clip.mp4", policy, area=stage_area)
    assert err.value.rule == "outside_tenant_area"


def test_file_uris_disabled_without_media_root() -> None:
    with pytest.raises(MediaUriError) as err:
        check_media_uri("file:///tmp/a.mp4", MediaUriPolicy(), area=ACME)
    assert err.value.rule == "file_disabled"


def test_allow_listed_name_resolving_inwards_is_refused() -> None:
    # "localhost" resolves to loopback: even allow-listed, it must be refused after resolution.
    with pytest.raises(MediaUriError) as err:
        check_https_host("https://localhost/hook", frozenset({"localhost"}))
    assert err.value.rule == "private_address"


def _resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    lookups: list[str] = []

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def test_pinned_url_connects_to_the_checked_address_and_keeps_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = _resolving(monkeypatch, {"media.example.com": ["93.184.215.14", "93.184.215.15"]})
    pinned = pin_https_url("https://media.example.com:8443/a/clip.mp4?sig=1", frozenset({"media.example.com"}))
    assert pinned.url == "https://93.184.215.14:8443/a/clip.mp4?sig=1"
    assert pinned.headers == {"Host": "media.example.com:8443"}
    assert pinned.extensions == {"sni_hostname": "media.example.com"}
    assert lookups == ["media.example.com"]
    checked = check_media_uri(
        "https://media.example.com/a.mp4",
        MediaUriPolicy(allowed_https_hosts=frozenset({"media.example.com"})),
        area=ACME,
    )
    assert checked.pinned is not None
    assert checked.pinned.url == "https://93.184.215.14/a.mp4"


def test_pinned_url_is_refused_if_any_address_is_inward(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"media.example.com": ["93.184.215.14", "10.0.0.8"]})
    with pytest.raises(MediaUriError) as err:
        pin_https_url("https://media.example.com/a.mp4", frozenset({"media.example.com"}))
    assert err.value.rule == "private_address"


def test_pinned_url_of_an_address_literal_is_the_url_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = _resolving(monkeypatch, {})
    pinned = pin_https_url("https://[2606:2800:220:1::1]/a.mp4", frozenset({"2606:2800:220:1::1"}))
    assert pinned.url == "https://[2606:2800:220:1::1]/a.mp4"
    assert pinned.headers == {"Host": "[2606:2800:220:1::1]"}
    assert lookups == []


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("100.64.0.1", "private_address"),  # shared address space (carrier-grade NAT): not is_private, not global
        ("[2002:a9fe:a9fe::]", "private_address"),  # 6to4 wrapping 169.254.169.254: Python 3.11 calls it global
        ("[2002:808:808::1]", "private_address"),  # 6to4 is deprecated whatever it wraps
        ("[::ffff:169.254.169.254]", "metadata_host"),
        ("[::ffff:a9fe:a9fe]", "metadata_host"),
        ("[64:ff9b::a9fe:a9fe]", "metadata_host"),  # NAT64 of the metadata server
        ("[64:ff9b::7f00:1]", "private_address"),  # NAT64 of loopback
        ("[64:ff9b:1::1]", "private_address"),  # local-use NAT64
        ("[::127.0.0.1]", "private_address"),  # IPv4-compatible: global to Python 3.11
        ("[::ffff:0:7f00:1]", "private_address"),  # IPv4-translated: global to Python 3.11
        ("[fd00:ec2::254]", "metadata_host"),
        ("[3fff::1]", "private_address"),  # documentation (RFC 9637)
        ("224.0.1.1", "private_address"),  # global multicast
        ("2852039166", "metadata_host"),  # 169.254.169.254 in decimal
        ("0xa9fea9fe", "metadata_host"),  # … in hex
        ("0251.0376.0251.0376", "metadata_host"),  # … in octal
        ("0xa9.0xfe.0xa9.0xfe", "metadata_host"),
        ("127.1", "private_address"),
        ("017700000001", "private_address"),
        ("134744072", "uri_syntax"),  # 8.8.8.8, public, but written to slip past an allow-list
        ("999999999999", "uri_syntax"),
        ("médiа.example.com", "uri_syntax"),  # not ASCII (and a Cyrillic 'а')
    ],
)
def test_addresses_that_are_not_public_in_any_spelling_are_refused(host: str, rule: str) -> None:
    allowed = frozenset({host.strip("[]")})
    with pytest.raises(MediaUriError) as err:
        check_media_uri(
            f"https://{host}/clip.mp4", MediaUriPolicy(allowed_https_hosts=allowed), area=ACME, resolve_dns=False
        )
    assert err.value.rule == rule


@pytest.mark.parametrize("host", ["[2606:4700::1111]", "93.184.215.14", "[64:ff9b::808:808]", "[::ffff:8.8.8.8]"])
def test_public_address_literals_are_accepted(host: str) -> None:
    policy = MediaUriPolicy(allowed_https_hosts=frozenset({host.strip("[]")}))
    assert check_media_uri(f"https://{host}/clip.mp4", policy, area=ACME).host == host.strip("[]")


@pytest.mark.parametrize("url", ["https://@media.example.com/a.mp4", "https://user@media.example.com/a.mp4"])
def test_any_userinfo_is_refused(url: str) -> None:
    with pytest.raises(MediaUriError) as err:
        check_https_host(url, frozenset({"media.example.com"}), resolve_dns=False)
    assert err.value.rule == "userinfo"


@pytest.mark.parametrize("answer", ["100.64.1.2", "2002:a9fe:a9fe::1", "::ffff:127.0.0.1", "64:ff9b::a00:1"])
def test_a_name_resolving_to_a_wrapped_inward_address_is_refused(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    _resolving(monkeypatch, {"media.example.com": ["93.184.215.14", answer]})
    with pytest.raises(MediaUriError) as err:
        pin_https_url("https://media.example.com/a.mp4", frozenset({"media.example.com"}))
    assert err.value.rule == "private_address"
