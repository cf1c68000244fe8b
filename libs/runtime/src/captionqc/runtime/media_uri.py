"""The media URI policy shared by the gateway (at the door) and the OCR/ASR stages (before they open anything).

- ``gs://bucket/object``: always allowed (the bucket's IAM decides the rest).
- ``file://`` only under the configured media root, after normalisation: no ``..`` and no symlink leading out.
- ``https://`` only to allow-listed hosts, and never to loopback, private, link-local or metadata addresses —
  checked on every address the name resolves to, so an allow-listed name pointing inwards is refused too.
  The connection then goes to an address that was checked (``PinnedUrl``): the name is resolved once, so a DNS
  answer that changes between the check and the connection (DNS rebinding) cannot lead it inwards.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.goog"})


class MediaUriError(ValueError):
    """A URI the policy refuses; ``rule`` names the rule for the error response."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class MediaUriPolicy:
    media_root: Path | None = None
    allowed_https_hosts: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class CheckedMediaUri:
    uri: str
    scheme: Literal["gs", "file", "https"]
    local_path: Path | None = None
    bucket: str | None = None
    object_name: str | None = None
    host: str | None = None
    pinned: PinnedUrl | None = None  # https, once the name was resolved: connect through this


@dataclass(frozen=True)
class PinnedUrl:
    """An https URL whose host is replaced by an address the policy checked; TLS still verifies the name.

    Send ``url`` with ``headers`` and httpx's ``extensions``: the ``Host`` header and the TLS server name (SNI and
    the certificate check) stay the original host, while the TCP connection goes to the checked address.
    """

    url: str
    host: str
    authority: str  # host[:port] as the original URL had it

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": self.authority}

    @property
    def extensions(self) -> dict[str, str]:
        return {"sni_hostname": self.host}


def request_target(url: str, pinned: PinnedUrl | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """URL, extra headers and httpx extensions for a request to ``url``: through ``pinned`` when it was pinned."""
    if pinned is None:
        return url, {}, {}
    return pinned.url, pinned.headers, pinned.extensions


def check_media_uri(uri: str, policy: MediaUriPolicy, *, resolve_dns: bool = True) -> CheckedMediaUri:
    """Check ``uri`` against ``policy``; raise `MediaUriError` naming the broken rule."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in uri):
        raise MediaUriError("uri_syntax", "the media URI contains control characters")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "gs":
        return _check_gs(uri, parts.netloc, parts.path)
    if scheme == "file":
        return _check_file(uri, parts.netloc, parts.path, policy)
    if scheme == "https":
        if not resolve_dns:
            host = check_https_host(uri, policy.allowed_https_hosts, resolve_dns=False)
            return CheckedMediaUri(uri=uri, scheme="https", host=host)
        pinned = pin_https_url(uri, policy.allowed_https_hosts)
        return CheckedMediaUri(uri=uri, scheme="https", host=pinned.host, pinned=pinned)
    shown = scheme or "(none)"
    raise MediaUriError("scheme_not_allowed", f"scheme {shown!r} is not allowed: use gs://, file:// or https://")


def _check_gs(uri: str, bucket: str, path: str) -> CheckedMediaUri:
    if not _BUCKET.match(bucket):
        raise MediaUriError("gs_bucket", f"{bucket!r} is not a valid Cloud Storage bucket name")
    object_name = path.lstrip("/")
    if not object_name or object_name.endswith("/"):
        raise MediaUriError("gs_object", "a gs:// URI must name an object, not a bucket or folder")
    if any(seg in {".", ".."} for seg in object_name.split("/")):
        raise MediaUriError("path_escape", "'.' and '..' segments are not allowed in object names")
    return CheckedMediaUri(uri=uri, scheme="gs", bucket=bucket, object_name=object_name)


def _check_file(uri: str, netloc: str, path: str, policy: MediaUriPolicy) -> CheckedMediaUri:
    if policy.media_root is None:
        raise MediaUriError("file_disabled", "file:// URIs are disabled: no media root is configured")
    if netloc not in {"", "localhost"}:
        raise MediaUriError("file_host", "file:// URIs must not name a host")
    raw = unquote(path)
    if "\x00" in raw:
        raise MediaUriError("uri_syntax", "the media path contains a NUL byte")
    if any(seg == ".." for seg in raw.split("/")):
        raise MediaUriError("path_escape", "'..' is not allowed in media paths")
    root = policy.media_root.resolve()
    # resolve() follows symlinks, so a link inside the root pointing outside it is caught here.
    resolved = Path(raw).resolve()
    if not resolved.is_relative_to(root):
        raise MediaUriError("path_escape", "the media path is outside the configured media root")
    return CheckedMediaUri(uri=uri, scheme="file", local_path=resolved)


def check_https_host(url: str, allowed_hosts: frozenset[str], *, resolve_dns: bool = True) -> str:
    """Check an https URL for outbound use (media fetch, webhooks): allow-listed host, public addresses only."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        raise MediaUriError("scheme_not_allowed", "only https:// URLs are allowed")
    if parts.username or parts.password:
        raise MediaUriError("userinfo", "credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise MediaUriError("uri_syntax", "the URL has no host")
    if host in _METADATA_HOSTS or host.endswith(".internal"):
        raise MediaUriError("metadata_host", f"{host!r} is a metadata or internal host")
    literal = _ip_or_none(host)
    if literal is not None:
        _check_public(literal, host)
    if host not in {h.lower() for h in allowed_hosts}:
        raise MediaUriError("host_not_allowed", f"host {host!r} is not in the allow-list")
    if literal is None and resolve_dns:
        _public_addresses(host, parts.port or 443)
    return host


def pin_https_url(url: str, allowed_hosts: frozenset[str]) -> PinnedUrl:
    """`check_https_host`, then the URL to connect through: the name resolved once, to a checked address."""
    host = check_https_host(url, allowed_hosts, resolve_dns=False)
    parts = urlsplit(url)
    authority = parts.netloc.rpartition("@")[2]
    if _ip_or_none(host) is not None:
        return PinnedUrl(url=url, host=host, authority=authority)
    address = _public_addresses(host, parts.port or 443)[0]
    shown = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return PinnedUrl(url=urlunsplit(parts._replace(netloc=netloc)), host=host, authority=authority)


def _public_addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address ``host`` resolves to, each checked; refuses the name if any one is not public."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaUriError("unresolvable_host", f"host {host!r} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        _check_public(address, host)
    if not addresses:
        raise MediaUriError("unresolvable_host", f"host {host!r} has no address")
    return addresses


def _ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _check_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip == ipaddress.ip_address("169.254.169.254"):
        raise MediaUriError("metadata_host", f"{host!r} is the metadata server address")
    if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        raise MediaUriError("private_address", f"{host!r} resolves to a non-public address ({ip})")
