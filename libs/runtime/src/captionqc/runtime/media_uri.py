"""The media URI policy shared by the gateway (at the door) and the OCR/ASR stages (before they open anything).

Each tenant has its own media area (`MediaArea`), and a URI outside the caller's area is refused
(``outside_tenant_area``) before anything looks at whether it exists, so one tenant can neither read another's
media nor learn which files exist:

- ``gs://bucket/object`` only under one of the tenant's registered prefixes (``gs://bucket/acme/``; always ending
  in ``/``, so ``gs://bucket/acme-evil/x`` is not under it), compared on the object actually fetched;
- ``file://`` only under ``<media_root>/<tenant>/``: no ``..``, the path under the tenant's folder as written and
  again after resolving symlinks, so a link leading out (into another tenant's folder too) is refused;
- ``https://`` only to allow-listed hosts whose every address is public (`check_public_address`: ``is_global``,
  plus the IPv6 forms that wrap an IPv4 address, which Python 3.11 calls global) — checked on every address the
  name resolves to, so an allow-listed name pointing inwards is refused too. The connection then goes to an
  address that was checked (``PinnedUrl``): the name is resolved once, so a DNS answer that changes between the
  check and the connection (DNS rebinding) cannot lead it inwards.

Callback URLs follow the same address rule (`captionqc.runtime.callback_url`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from captionqc.schemas.reasons import Refusal

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_TENANT_FOLDER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # the tenant registry's names: never "..", never "/"
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.goog"})
# GCE/GKE/Cloud Run and AWS (IPv4 and IPv6) metadata servers: named as such in the refusal.
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))
# IPv6 ranges Python 3.11's ``is_global`` calls global although they reach an IPv4 address chosen by whoever
# wrote the URL (6to4 2002:a9fe:a9fe:: is 169.254.169.254), or are not routable on the internet at all.
_NOT_GLOBAL_V6 = tuple(
    ipaddress.ip_network(n)
    for n in (
        "2002::/16",  # 6to4 (deprecated, RFC 7526): wraps any IPv4 address
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "::/96",  # IPv4-compatible (deprecated): ::127.0.0.1
        "::ffff:0:0:0/96",  # IPv4-translated (RFC 2765): ::ffff:0:7f00:1
        "3fff::/20",  # documentation (RFC 9637), newer than Python's tables
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: judged by the IPv4 address it carries
# How browsers and libc read a host made only of numbers: 2852039166, 0xa9fea9fe, 0251.0376.0251.0376, 127.1.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")


class MediaUriError(ValueError):
    """A URI the policy refuses; ``rule`` (a `Refusal` code) names the rule for the error response."""

    def __init__(self, rule: Refusal, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class MediaUriPolicy:
    media_root: Path | None = None
    allowed_https_hosts: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class MediaArea:
    """Where one tenant's media may come from: ``<media_root>/<tenant>/`` and its registered ``gs://`` prefixes."""

    tenant: str
    gs_prefixes: tuple[str, ...] = ()
    # False where the tenant registry is out of reach (the OCR and ASR stages): gs:// was checked against it at the
    # gateway, and the bucket's IAM holds the rest. file:// is checked everywhere.
    check_gs: bool = True

    def folder(self, media_root: Path) -> Path:
        """``<media_root>/<tenant>``; `MediaUriError` if the tenant's name could not be one folder."""
        if not _TENANT_FOLDER.match(self.tenant):
            raise MediaUriError(Refusal.OUTSIDE_TENANT_AREA, "this tenant has no media folder")
        return media_root.absolute() / self.tenant


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


def check_media_uri(uri: str, policy: MediaUriPolicy, *, area: MediaArea, resolve_dns: bool = True) -> CheckedMediaUri:
    """Check ``uri`` against ``policy`` for the tenant whose media ``area`` is given; raise `MediaUriError` naming
    the broken rule. Nothing here tells whether a file or object exists."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in uri):
        raise MediaUriError(Refusal.URI_SYNTAX, "the media URI contains control characters")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "gs":
        return _check_gs(uri, parts.netloc, parts.path, area)
    if scheme == "file":
        return _check_file(uri, parts.netloc, parts.path, policy, area)
    if scheme == "https":
        if not resolve_dns:
            host = check_https_host(uri, policy.allowed_https_hosts, resolve_dns=False)
            return CheckedMediaUri(uri=uri, scheme="https", host=host)
        pinned = pin_https_url(uri, policy.allowed_https_hosts)
        return CheckedMediaUri(uri=uri, scheme="https", host=pinned.host, pinned=pinned)
    shown = scheme or "(none)"
    raise MediaUriError(Refusal.SCHEME_NOT_ALLOWED, f"scheme {shown!r} is not allowed: use gs://, file:// or https://")


def _check_gs(uri: str, bucket: str, path: str, area: MediaArea) -> CheckedMediaUri:
    if not _BUCKET.match(bucket):
        raise MediaUriError(Refusal.GS_BUCKET, f"{bucket!r} is not a valid Cloud Storage bucket name")
    object_name = path.lstrip("/")
    if not object_name or object_name.endswith("/"):
        raise MediaUriError(Refusal.GS_OBJECT, "a gs:// URI must name an object, not a bucket or folder")
    if any(seg in {".", ".."} for seg in object_name.split("/")):
        raise MediaUriError(Refusal.PATH_ESCAPE, "'.' and '..' segments are not allowed in object names")
    # The object that would be fetched, not the URI as written ("gs://b//acme/x" fetches "acme/x").
    fetched = f"gs://{bucket}/{object_name}"
    if area.check_gs and not any(fetched.startswith(prefix) for prefix in area.gs_prefixes if prefix.endswith("/")):
        raise MediaUriError(
            Refusal.OUTSIDE_TENANT_AREA, "the object is outside this tenant's registered gs:// prefixes"
        )
    return CheckedMediaUri(uri=uri, scheme="gs", bucket=bucket, object_name=object_name)


def _check_file(uri: str, netloc: str, path: str, policy: MediaUriPolicy, area: MediaArea) -> CheckedMediaUri:
    if policy.media_root is None:
        raise MediaUriError(Refusal.FILE_DISABLED, "file:// URIs are disabled: no media root is configured")
    if netloc not in {"", "localhost"}:
        raise MediaUriError(Refusal.FILE_HOST, "file:// URIs must not name a host")
    raw = unquote(path)
    if "\x00" in raw:
        raise MediaUriError(Refusal.URI_SYNTAX, "the media path contains a NUL byte")
    if any(seg == ".." for seg in raw.split("/")):
        raise MediaUriError(Refusal.PATH_ESCAPE, "'..' is not allowed in media paths")
    outside = MediaUriError(Refusal.OUTSIDE_TENANT_AREA, "the media path is outside this tenant's media folder")
    folder = area.folder(policy.media_root)
    # As written first, touching nothing: resolving a path in another tenant's folder could tell (a symlink loop
    # fails, a missing folder does not) what is there. The root may be named through a symlink or not.
    written = Path(os.path.normpath(raw))
    if not (written.is_relative_to(folder) or written.is_relative_to(folder.parent.resolve() / area.tenant)):
        raise outside
    # Then resolved: a symlink in the tenant's folder may not lead out of it (the folder itself may be a link).
    try:
        resolved = written.resolve()
        inside = resolved.is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop, in the tenant's own folder
        raise MediaUriError(Refusal.PATH_ESCAPE, "the media path cannot be resolved") from None
    if not inside:
        raise outside
    return CheckedMediaUri(uri=uri, scheme="file", local_path=resolved)


def outbound_host(url: str) -> tuple[SplitResult, str, IpAddress | None]:
    """The parts, the lowercased host and its address if it is a literal, of a URL the services will connect to.

    Refuses what no outbound URL may have whatever the scheme: credentials, no host, a non-ASCII host, a metadata
    name, and an address literal that is not public (`check_public_address`). Numeric spellings of an IPv4
    address (``2852039166``, ``0xa9fea9fe``, ``127.1``) are read as libc reads them, so they are judged by the
    address they mean; a public one is refused too, as it can only be written to confuse an allow-list.
    """
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise MediaUriError(Refusal.URI_SYNTAX, "the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise MediaUriError(Refusal.URI_SYNTAX, f"the URL cannot be parsed: {exc}") from None
    if "@" in parts.netloc:
        raise MediaUriError(Refusal.USERINFO, "credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise MediaUriError(Refusal.URI_SYNTAX, "the URL has no host")
    if not host.isascii():
        raise MediaUriError(Refusal.URI_SYNTAX, "write the host in ASCII (IDNA 'xn--' form)")
    if host in _METADATA_HOSTS or host.endswith(".internal"):
        raise MediaUriError(Refusal.METADATA_HOST, f"{host!r} is a metadata or internal host")
    literal = _ip_or_none(host)
    if literal is not None:
        check_public_address(literal, host)
    elif _NUMERIC_HOST.match(host):
        try:
            meant = ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except (OSError, ValueError):
            raise MediaUriError(Refusal.URI_SYNTAX, f"{host!r} is not a valid host") from None
        check_public_address(meant, host)
        raise MediaUriError(Refusal.URI_SYNTAX, f"write the address {host!r} as a dotted quad ({meant})")
    return parts, host, literal


def check_https_host(url: str, allowed_hosts: frozenset[str], *, resolve_dns: bool = True) -> str:
    """Check an https URL for outbound use (media fetch): allow-listed host, public addresses only."""
    parts, host, literal = outbound_host(url)
    if parts.scheme.lower() != "https":
        raise MediaUriError(Refusal.SCHEME_NOT_ALLOWED, "only https:// URLs are allowed")
    if host not in {h.lower() for h in allowed_hosts}:
        raise MediaUriError(Refusal.HOST_NOT_ALLOWED, f"host {host!r} is not in the allow-list")
    if literal is None and resolve_dns:
        public_addresses(host, parts.port or 443)
    return host


def pin_https_url(url: str, allowed_hosts: frozenset[str]) -> PinnedUrl:
    """`check_https_host`, then the URL to connect through: the name resolved once, to a checked address."""
    check_https_host(url, allowed_hosts, resolve_dns=False)
    return pin_url(url, check=check_public_address)


def pin_url(url: str, *, check: Callable[[IpAddress, str], None]) -> PinnedUrl:
    """The URL with its host replaced by one of its addresses, each of which passed ``check``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    authority = parts.netloc.rpartition("@")[2]
    if _ip_or_none(host) is not None:
        return PinnedUrl(url=url, host=host, authority=authority)
    default_port = 443 if parts.scheme.lower() == "https" else 80
    address = resolve(host, parts.port or default_port, check=check)[0]
    shown = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return PinnedUrl(url=urlunsplit(parts._replace(netloc=netloc)), host=host, authority=authority)


def public_addresses(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` resolves to, each checked; refuses the name if any one is not public."""
    return resolve(host, port, check=check_public_address)


def resolve(host: str, port: int, *, check: Callable[[IpAddress, str], None]) -> list[IpAddress]:
    """Every address ``host`` resolves to, each passed to ``check`` (blocking DNS: run it off the event loop)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaUriError(Refusal.UNRESOLVABLE_HOST, f"host {host!r} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]
    for address in addresses:
        check(address, host)
    if not addresses:
        raise MediaUriError(Refusal.UNRESOLVABLE_HOST, f"host {host!r} has no address")
    return addresses


def _ip_or_none(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def embedded_ipv4(ip: IpAddress) -> IpAddress:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, well-known NAT64), else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def check_public_address(ip: IpAddress, host: str) -> None:
    """Refuse any address that is not on the public internet: ``is_global``, and the IPv6 forms it misses."""
    if isinstance(ip, ipaddress.IPv6Address) and any(ip in net for net in _NOT_GLOBAL_V6):
        raise MediaUriError(Refusal.PRIVATE_ADDRESS, f"{host!r} is a non-public address ({ip})")
    ip = embedded_ipv4(ip)
    if ip in _METADATA_ADDRESSES:
        raise MediaUriError(Refusal.METADATA_HOST, f"{host!r} is the metadata server address")
    # is_global excludes loopback, RFC 1918, shared 100.64.0.0/10, link-local, ULA, documentation, reserved;
    # global multicast is still not somewhere to send a request.
    if not ip.is_global or ip.is_multicast:
        raise MediaUriError(Refusal.PRIVATE_ADDRESS, f"{host!r} resolves to a non-public address ({ip})")
