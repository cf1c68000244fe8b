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
from .helpers import change_tenant

GS = {"media_uri": "gs://broadcast-media/acme/news/0612.mp4"}


# ---------------------------------------------------------------------------------------------- media URIs
ACME_GS = ["gs://broadcast-media/acme/", "gs://acme-archive/"]


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    """<root>/acme and <root>/beeb with a clip each (the conftest registers both tenants)."""
    root = tmp_path / "media"
    for tenant in ("acme", "beeb"):
        (root / tenant).mkdir(parents=True)
        (root / tenant / "clip.mp4").write_bytes(b"\x00" * 16)
    return root


@pytest.fixture
async def acme_area(database_url: str) -> None:
    """acme's gs:// media may come only from its own prefixes (the conftest gave every tenant the whole bucket)."""
    await change_tenant(database_url, "acme", gs_prefixes=ACME_GS)


def _links(media_root: Path) -> None:
    outside = media_root.parent / "secret.mp4"
    outside.write_bytes(b"x")
    (media_root / "acme" / "out.mp4").symlink_to(outside)
    (media_root / "acme" / "to-beeb.mp4").symlink_to(media_root / "beeb" / "clip.mp4")


@pytest.mark.parametrize(
    ("uri", "rule"),
    [
        ("file:///etc/passwd", "outside_tenant_area"),
        ("file://{root}/clip.mp4", "outside_tenant_area"),
        ("file://{root}/beeb/clip.mp4", "outside_tenant_area"),
        ("file://{root}/ACME/clip.mp4", "outside_tenant_area"),
        ("file://{root}/acme/../beeb/clip.mp4", "path_escape"),
        ("file://{root}/acme/%2e%2e/beeb/clip.mp4", "path_escape"),
        ("file://{root}/acme%2f..%2fbeeb/clip.mp4", "path_escape"),
        ("file://{root}/acme/out.mp4", "outside_tenant_area"),
        ("file://{root}/acme/to-beeb.mp4", "outside_tenant_area"),
        ("file://otherhost/{root}/acme/clip.mp4", "file_host"),
        ("gs://broadcast-media/beeb/clip.mp4", "outside_tenant_area"),
        ("gs://broadcast-media/acme-evil/clip.mp4", "outside_tenant_area"),
        ("gs://broadcast-media/ACME/clip.mp4", "outside_tenant_area"),
        ("gs://other-bucket/acme/clip.mp4", "outside_tenant_area"),
        ("https://10.1.2.3/clip.mp4", "private_address"),
        ("https://127.0.0.1/clip.mp4", "private_address"),
        ("https://[::1]/clip.mp4", "private_address"),
        ("https://192.168.0.10/clip.mp4", "private_address"),
        ("https://100.64.0.1/clip.mp4", "private_address"),
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
    acme_area: None, client: httpx.AsyncClient, media_root: Path, uri: str, rule: str
) -> None:
    _links(media_root)
    r = await client.post("/v1/jobs", json={"media_uri": uri.replace("{root}", str(media_root))}, headers=bearer())
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "validation_error"
    assert body["details"][0]["loc"] == ["body", "media_uri"]
    assert body["details"][0]["type"] == rule
    assert "media_uri" in body["message"]


async def test_another_tenants_file_gets_one_answer_whether_it_exists_or_not(
    client: httpx.AsyncClient, media_root: Path
) -> None:
    answers = []
    for name in ("clip.mp4", "no-such-file.mp4"):
        r = await client.post("/v1/jobs", json={"media_uri": f"file://{media_root}/beeb/{name}"}, headers=bearer())
        answers.append((r.status_code, r.json()["message"], r.json()["details"]))
    assert answers[0] == answers[1]
    assert answers[0][2][0]["type"] == "outside_tenant_area"
    assert str(media_root) not in answers[0][1]  # the server's folders are not shown either


@pytest.mark.parametrize(
    ("tenant", "uri"),
    [
        ("acme", "gs://broadcast-media/acme/news/b.mp4"),
        ("acme", "gs://acme-archive/2024/b.mp4"),
        ("acme", "file://{root}/acme/clip.mp4"),
        ("acme", "file://{root}/acme/not-there-yet.mp4"),  # existence is the stages' business
        ("beeb", "file://{root}/beeb/clip.mp4"),
        ("beeb", "gs://broadcast-media/beeb/clip.mp4"),
        ("acme", "https://93.184.216.34/c.mp4"),
    ],
)
async def test_each_tenants_own_media_is_accepted(
    acme_area: None, client: httpx.AsyncClient, media_root: Path, tenant: str, uri: str
) -> None:
    body = {"media_uri": uri.replace("{root}", str(media_root))}
    r = await client.post("/v1/jobs", json=body, headers=bearer(tenant=tenant))
    assert r.status_code == 202, r.text


async def test_a_tenant_without_gs_prefixes_has_no_gs_media(database_url: str, client: httpx.AsyncClient) -> None:
    await change_tenant(database_url, "acme", gs_prefixes=[])
    r = await client.post("/v1/jobs", json=GS, headers=bearer())
    assert (r.status_code, r.json()["details"][0]["type"]) == (422, "outside_tenant_area")


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
