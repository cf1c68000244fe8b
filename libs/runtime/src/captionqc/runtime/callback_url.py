"""The one callback-URL policy: the gateway applies it when a job is submitted, the status service again before
every delivery (the settings may have changed since, and the name may resolve elsewhere now).

- ``https://`` only; no userinfo; no metadata host; the host in ``callback_allowed_hosts`` (``*``: any host);
- every address the host resolves to is public (`media_uri.check_public_address`: ``is_global``, plus the IPv6
  forms that wrap an IPv4 address, and every numeric spelling of an IPv4 address);
- ``callback_allow_loopback`` (local stacks and tests; refused in production) also lets ``http://`` or
  ``https://`` reach a loopback receiver: ``localhost`` or a literal loopback address whose every resolved
  address is loopback. Nothing else private becomes reachable with it.
- No port rule: a public host's ports are its own business, and every inward address is already refused whatever
  the port (``http://127.0.0.1:5432/`` is refused unless loopback receivers were opted into).

The answer is a `PinnedUrl`: deliveries connect to the address that was checked, so a DNS answer that changes
between the check and the connection (rebinding) cannot lead them inwards.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

from captionqc.runtime import media_uri
from captionqc.runtime.media_uri import IpAddress, MediaUriError, PinnedUrl, embedded_ipv4, outbound_host, pin_url
from captionqc.schemas.reasons import Refusal

ANY_HOST = "*"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def parse_host_list(value: Any) -> Any:
    """``"a.example.com, B.example.com"`` → ``frozenset({"a.example.com", "b.example.com"})``; other values as is."""
    if isinstance(value, str):
        return frozenset(h.strip().rstrip(".").lower() for h in value.split(",") if h.strip())
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(h).strip().rstrip(".").lower() for h in value if str(h).strip())
    return value


@dataclass(frozen=True)
class CallbackPolicy:
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    allow_loopback: bool = False

    def allows_host(self, host: str) -> bool:
        return ANY_HOST in self.allowed_hosts or host in self.allowed_hosts


def check_callback_url(url: str, policy: CallbackPolicy) -> PinnedUrl:
    """Check ``url`` against ``policy`` and pin it to a checked address; `MediaUriError` naming the broken rule.

    Resolves the host (blocking DNS): call it off the event loop.
    """
    if url.partition(":")[0].lower() not in {"https", "http"}:
        raise MediaUriError(Refusal.SCHEME_NOT_ALLOWED, "a callback URL must be https://")
    try:
        parts, host, _literal = outbound_host(url)  # userinfo, metadata names, inward address literals
    except MediaUriError as exc:
        # An inward address literal is acceptable only as the loopback receiver the policy opted into.
        if exc.rule is Refusal.PRIVATE_ADDRESS and policy.allow_loopback and _loopback_literal(url):
            return pin_url(url, check=_loopback_only)
        raise
    if policy.allow_loopback and host in _LOOPBACK_NAMES:
        return pin_url(url, check=_loopback_only)
    if parts.scheme.lower() != "https":
        raise MediaUriError(Refusal.SCHEME_NOT_ALLOWED, "a callback URL must be https://")
    if not policy.allows_host(host):
        raise MediaUriError(Refusal.HOST_NOT_ALLOWED, f"host {host!r} is not in callback_allowed_hosts")
    # Looked up through the module at call time, so a test can stand in a public address for a local receiver.
    return pin_url(url, check=media_uri.check_public_address)


def _loopback_literal(url: str) -> bool:
    try:
        literal = ipaddress.ip_address((urlsplit(url).hostname or "").strip("[]"))
    except ValueError:
        return False  # numeric spellings such as 2130706433 are not written by anyone running a local receiver
    return embedded_ipv4(literal).is_loopback


def _loopback_only(ip: IpAddress, host: str) -> None:
    if not embedded_ipv4(ip).is_loopback:
        raise MediaUriError(Refusal.PRIVATE_ADDRESS, f"{host!r} resolves to a non-loopback address ({ip})")


class CallbackSettings(BaseSettings):
    """Callback fields a service's settings class inherits (``class S(ServiceSettings, CallbackSettings)``), so the
    gateway and the status service read them in one format under their own prefixes."""

    callback_allowed_hosts: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        description="Hosts a callback_url may name, comma-separated; '*' allows any host whose every address is "
        "public.",
    )
    callback_allow_loopback: bool = Field(
        default=False,
        description="Also allow http(s) callbacks to loopback receivers (localhost, 127.0.0.0/8, ::1): for "
        "`make run` and tests. Refused in production.",
    )

    @field_validator("callback_allowed_hosts", mode="before")
    @classmethod
    def _callback_hosts_comma_separated(cls, value: Any) -> Any:
        return parse_host_list(value)

    @model_validator(mode="after")
    def _no_loopback_callbacks_in_production(self) -> CallbackSettings:
        environment = getattr(self, "environment", None)
        if environment is not None and str(environment) == "production" and self.callback_allow_loopback:
            raise ValueError("callback_allow_loopback must not be set in production")
        return self

    def callback_policy(self) -> CallbackPolicy:
        return CallbackPolicy(frozenset(self.callback_allowed_hosts), self.callback_allow_loopback)


__all__ = [
    "ANY_HOST",
    "CallbackPolicy",
    "CallbackSettings",
    "check_callback_url",
    "parse_host_list",
]
