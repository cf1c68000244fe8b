"""Which media and callback URLs the gateway lets through at submit: 422 naming the field and the rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from captionqc.gateway.app import create_app
from captionqc.gateway.settings import GatewaySettings

from .conftest import bearer, running

GS = {"media_uri": "gs://broadcast-media/news/0612.mp4"}


# ---------------------------------------------------------------------------------------------- media URIs


def _outside_link(media_root: Path) -> str:
    outside = media_root.parent / "secret.mp4"
    outside.write_bytes(b"x")
    (media_root / "link.mp4").symlink_to(outside)
    return f"file://{media_root}/link.mp4"


@pytest.mark.parametrize(
    ("uri", "rule"),
    [
        ("file:///etc/passwd", "path_escape"),
        ("file://{root}/../secret.mp4", "path_escape"),
        ("file://{root}/%2e%2e/secret.mp4", "path_escape"),
        ("symlink", "path_escape"),
        ("file://otherhost/{root}/clip.mp4", "file_host"),
        ("https://10.1.2.3/clip.mp4", "private_address"),
        ("https://127.0.0.1/clip.mp4", "private_address"),
        ("https://[::1]/clip.mp4", "private_address"),
        ("https://192.168.0.10/clip.mp4", "private_address"),
        ("https://169.254.169.254/computeMetadata/v1/", "metadata_host"),
        ("https://metadata.google.internal/computeMetadata/v1/", "metadata_host"),
        ("https://cdn.elsewhere.example/clip.mp4", "host_not_allowed"),
        ("https://user:pw@93.184.216.34/clip.mp4", "userinfo"),
        ("http://93.184.216.34/clip.mp4", "scheme_not_allowed"),
        ("ftp://media.example/clip.mp4", "scheme_not_allowed"),
        ("s3://bucket/clip.mp4", "scheme_not_allowed"),
        ("clip.mp4", "scheme_not_allowed"),
        ("gs://UPPER/clip.mp4", "gs_bucket"),
        ("gs://bucket-ok/", "gs_object"),
    ],
)
async def test_every_media_uri_rule_is_422_naming_field_and_rule(
    client: httpx.AsyncClient, media_root: Path, uri: str, rule: str
) -> None:
    uri = _outside_link(media_root) if uri == "symlink" else uri.replace("{root}", str(media_root))
    r = await client.post("/v1/jobs", json={"media_uri": uri}, headers=bearer())
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "validation_error"
    assert body["details"][0]["loc"] == ["body", "media_uri"]
    assert body["details"][0]["type"] == rule
    assert "media_uri" in body["message"]


@pytest.mark.parametrize(
    "uri", ["gs://broadcast-media/a/b.mp4", "file://{root}/clip.mp4", "https://93.184.216.34/c.mp4"]
)
async def test_allowed_media_uris_are_accepted(client: httpx.AsyncClient, media_root: Path, uri: str) -> None:
    r = await client.post("/v1/jobs", json={"media_uri": uri.replace("{root}", str(media_root))}, headers=bearer())
    assert r.status_code == 202, r.text


# ---------------------------------------------------------------------------------------------- callback URLs


def _refused_as(r: httpx.Response, rule: str) -> None:
    assert r.status_code == 422, r.text
    detail = r.json()["details"][0]
    assert (detail["loc"], detail["type"]) == (["body", "callback_url"], rule)


@pytest.mark.parametrize(
    ("callback", "rule"),
    [
        # Accepted before (issue #13): the gateway and the status service disagreed.
        ("http://127.0.0.1:5432/", "private_address"),
        ("http://2852039166/x", "metadata_host"),
        ("https://user:pass@127.0.0.1/x", "userinfo"),
        ("https://127.0.0.1/hook", "private_address"),
        ("https://100.64.0.1/hook", "private_address"),
        ("https://[2002:a9fe:a9fe::]/hook", "private_address"),
        ("http://93.184.216.34/hook", "scheme_not_allowed"),
        ("https://169.254.169.254/hook", "metadata_host"),
        ("https://not-listed.example/hook", "host_not_allowed"),
    ],
)
async def test_callback_url_follows_the_one_callback_policy(
    client: httpx.AsyncClient, callback: str, rule: str
) -> None:
    _refused_as(await client.post("/v1/jobs", json={**GS, "callback_url": callback}, headers=bearer()), rule)


async def test_an_allow_listed_public_callback_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/jobs", json={**GS, "callback_url": "https://93.184.216.34/hook"}, headers=bearer())
    assert r.status_code == 202, r.text


async def test_loopback_receivers_only_with_the_opt_in(make_settings: Callable[..., GatewaySettings]) -> None:
    async with running(create_app(make_settings(callback_allow_loopback=True))) as c:
        ok = await c.post("/v1/jobs", json={**GS, "callback_url": "http://127.0.0.1:9099/hook"}, headers=bearer())
        assert ok.status_code == 202, ok.text
        for callback, rule in [
            ("http://169.254.169.254/", "metadata_host"),
            ("http://2852039166/x", "metadata_host"),
            ("https://user:pass@127.0.0.1/x", "userinfo"),
            ("http://10.1.2.3/hook", "private_address"),
        ]:
            _refused_as(await c.post("/v1/jobs", json={**GS, "callback_url": callback}, headers=bearer()), rule)


def test_loopback_callbacks_are_refused_in_production() -> None:
    jwks = {"jwt_mode": "jwks", "jwks_url": "https://idp/jwks", "jwt_issuer": "https://idp/", "jwt_audience": "q"}
    with pytest.raises(ValidationError, match="callback_allow_loopback"):
        GatewaySettings(environment="production", callback_allow_loopback=True, **jwks)  # type: ignore[arg-type]


def test_callback_settings_read_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONQC_GATEWAY_JWT_SECRET", "gateway-test-secret-0123456789abcdef")
    monkeypatch.setenv("CAPTIONQC_GATEWAY_CALLBACK_ALLOWED_HOSTS", "hooks.example.com, B.example.org")
    monkeypatch.setenv("CAPTIONQC_GATEWAY_CALLBACK_ALLOW_LOOPBACK", "true")
    policy = GatewaySettings().callback_policy()
    assert policy.allowed_hosts == frozenset({"hooks.example.com", "b.example.org"})
    assert policy.allow_loopback
