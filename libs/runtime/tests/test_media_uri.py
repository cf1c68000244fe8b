from __future__ import annotations

import socket
from pathlib import Path

import pytest

from captionqc.runtime.media_uri import (
    MediaUriError,
    MediaUriPolicy,
    check_https_host,
    check_media_uri,
    pin_https_url,
)


@pytest.fixture
def policy(tmp_path: Path) -> MediaUriPolicy:
    root = tmp_path / "media"
    root.mkdir()
    (root / "clip.mp4").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("s")
    (root / "escape.mp4").symlink_to(tmp_path / "secret.txt")
    return MediaUriPolicy(media_root=root, allowed_https_hosts=frozenset({"media.example.com", "127.0.0.1"}))


def test_gs_uri_is_allowed(policy: MediaUriPolicy) -> None:
    checked = check_media_uri("gs://broadcast-media/news/0612.mp4", policy)
    assert (checked.bucket, checked.object_name) == ("broadcast-media", "news/0612.mp4")


def test_file_uri_under_root_is_allowed(policy: MediaUriPolicy) -> None:
    assert policy.media_root is not None
    checked = check_media_uri(f"file://{policy.media_root}/clip.mp4", policy)
    assert checked.local_path == (policy.media_root / "clip.mp4").resolve()


@pytest.mark.parametrize(
    ("uri", "rule"),
    [
        ("file://{root}/../secret.txt", "path_escape"),
        ("file://{root}/%2e%2e/secret.txt", "path_escape"),
        ("file:///etc/passwd", "path_escape"),
        ("file://{root}/escape.mp4", "path_escape"),
        ("file://otherhost{root}/clip.mp4", "file_host"),
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
        ("gs://bucket-name/a/../b.mp4", "path_escape"),
        ("gs://bucket-name/a\nb", "uri_syntax"),
    ],
)
def test_rejected_uris_name_their_rule(policy: MediaUriPolicy, uri: str, rule: str) -> None:
    with pytest.raises(MediaUriError) as err:
        check_media_uri(uri.format(root=policy.media_root), policy, resolve_dns=False)
    assert err.value.rule == rule


def test_file_uris_disabled_without_media_root() -> None:
    with pytest.raises(MediaUriError) as err:
        check_media_uri("file:///tmp/a.mp4", MediaUriPolicy())
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
        "https://media.example.com/a.mp4", MediaUriPolicy(allowed_https_hosts=frozenset({"media.example.com"}))
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
        check_media_uri(f"https://{host}/clip.mp4", MediaUriPolicy(allowed_https_hosts=allowed), resolve_dns=False)
    assert err.value.rule == rule


@pytest.mark.parametrize("host", ["[2606:4700::1111]", "93.184.215.14", "[64:ff9b::808:808]", "[::ffff:8.8.8.8]"])
def test_public_address_literals_are_accepted(host: str) -> None:
    policy = MediaUriPolicy(allowed_https_hosts=frozenset({host.strip("[]")}))
    assert check_media_uri(f"https://{host}/clip.mp4", policy).host == host.strip("[]")


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
