"""The one callback-URL policy the gateway (at submit) and the status service (at delivery) both apply."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from captionqc.runtime.callback_url import CallbackPolicy, CallbackSettings, check_callback_url
from captionqc.runtime.media_uri import MediaUriError
from captionqc.runtime.settings import Environment, ServiceSettings

STRICT = CallbackPolicy(frozenset({"hooks.example.com", "10.1.2.3", "100.64.0.1", "2002:a9fe:a9fe::"}))
LOCAL = CallbackPolicy(frozenset({"hooks.example.com"}), allow_loopback=True)


def _resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    lookups: list[str] = []

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        lookups.append(host)
        family = socket.AF_INET6 if any(":" in a for a in answers[host]) else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        # The three the gateway accepted (issue #13), refused in both modes.
        ("http://2852039166/x", "metadata_host"),
        ("https://user:pass@127.0.0.1/x", "userinfo"),
        ("https://user:pass@hooks.example.com/x", "userinfo"),
        ("http://127.0.0.1:5432/", "private_address"),
        ("http://hooks.example.com/x", "scheme_not_allowed"),
        ("ftp://hooks.example.com/x", "scheme_not_allowed"),
        ("hooks.example.com/x", "scheme_not_allowed"),
        ("https://evil.example.net/x", "host_not_allowed"),
        ("https://10.1.2.3/x", "private_address"),
        ("https://100.64.0.1/x", "private_address"),
        ("https://[2002:a9fe:a9fe::]/x", "private_address"),
        ("https://169.254.169.254/latest", "metadata_host"),
        ("https://[::ffff:169.254.169.254]/latest", "metadata_host"),
        ("https://metadata.google.internal/x", "metadata_host"),
        ("https://localhost/x", "host_not_allowed"),
        ("https://hooks.example.com:99999/x", "uri_syntax"),
        ("https://hooks.example.com/a b", "uri_syntax"),
    ],
)
def test_strict_policy_refusals_name_their_rule(url: str, rule: str) -> None:
    with pytest.raises(MediaUriError) as err:
        check_callback_url(url, STRICT)
    assert err.value.rule == rule, url


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://2852039166/x", "metadata_host"),
        ("http://2130706433/x", "private_address"),  # 127.0.0.1 in decimal: not how a local receiver is written
        ("https://user:pass@127.0.0.1/x", "userinfo"),
        ("http://10.0.0.1/x", "private_address"),
        ("http://[fe80::1]/x", "private_address"),
        ("http://169.254.169.254/x", "metadata_host"),
        ("http://localhost.evil.example/x", "scheme_not_allowed"),
        ("ftp://127.0.0.1/x", "scheme_not_allowed"),
        ("http://hooks.example.com/x", "scheme_not_allowed"),
    ],
)
def test_loopback_opt_in_opens_loopback_and_nothing_else(url: str, rule: str) -> None:
    with pytest.raises(MediaUriError) as err:
        check_callback_url(url, LOCAL)
    assert err.value.rule == rule, url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "https://127.0.0.1/hook", "http://[::1]:9/h", "http://127.8.9.10/h"]
)
def test_loopback_literals_are_reached_as_written_with_the_opt_in(url: str) -> None:
    assert check_callback_url(url, LOCAL).url == url
    with pytest.raises(MediaUriError) as err:
        check_callback_url(url, STRICT)
    assert err.value.rule == "private_address"


def test_localhost_with_the_opt_in_is_pinned_to_its_loopback_address(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"localhost": ["127.0.0.1"]})
    pinned = check_callback_url("http://localhost:8080/hook?x=1", LOCAL)
    assert pinned.url == "http://127.0.0.1:8080/hook?x=1"
    assert pinned.headers == {"Host": "localhost:8080"}


def test_localhost_resolving_outwards_is_refused_even_with_the_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"localhost": ["127.0.0.1", "10.9.8.7"]})
    with pytest.raises(MediaUriError) as err:
        check_callback_url("http://localhost/hook", LOCAL)
    assert err.value.rule == "private_address"


def test_allow_listed_name_is_pinned_to_a_checked_public_address(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = _resolving(monkeypatch, {"hooks.example.com": ["93.184.215.14"]})
    pinned = check_callback_url("https://hooks.example.com/hook", STRICT)
    assert pinned.url == "https://93.184.215.14/hook"
    assert pinned.extensions == {"sni_hostname": "hooks.example.com"}
    assert lookups == ["hooks.example.com"]


@pytest.mark.parametrize("answer", ["10.0.0.8", "100.64.1.1", "127.0.0.1", "2002:a9fe:a9fe::1", "::ffff:10.0.0.1"])
def test_allow_listed_name_resolving_inwards_is_refused(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    _resolving(monkeypatch, {"hooks.example.com": ["93.184.215.14", answer]})
    for policy in (STRICT, LOCAL):
        with pytest.raises(MediaUriError) as err:
            check_callback_url("https://hooks.example.com/hook", policy)
        assert err.value.rule == "private_address"


def test_star_allows_any_name_whose_addresses_are_public(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"a.example.org": ["93.184.215.14"], "b.example.org": ["192.168.1.1"]})
    anywhere = CallbackPolicy(frozenset({"*"}))
    assert check_callback_url("https://a.example.org/h", anywhere).host == "a.example.org"
    with pytest.raises(MediaUriError) as err:
        check_callback_url("https://b.example.org/h", anywhere)
    assert err.value.rule == "private_address"


class _Settings(ServiceSettings, CallbackSettings):
    model_config = SettingsConfigDict(env_prefix="CAPTIONQC_TESTSVC_", extra="ignore", frozen=True)


def test_settings_read_a_comma_separated_host_list_from_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONQC_TESTSVC_CALLBACK_ALLOWED_HOSTS", " Hooks.Example.com., b.example.org ,")
    monkeypatch.setenv("CAPTIONQC_TESTSVC_CALLBACK_ALLOW_LOOPBACK", "true")
    policy = _Settings().callback_policy()
    assert policy == CallbackPolicy(frozenset({"hooks.example.com", "b.example.org"}), allow_loopback=True)


def test_loopback_receivers_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="callback_allow_loopback"):
        _Settings(environment=Environment.PRODUCTION, callback_allow_loopback=True)
    assert not _Settings(environment=Environment.PRODUCTION).callback_policy().allow_loopback
