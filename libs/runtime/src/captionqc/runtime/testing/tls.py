"""An https server on 127.0.0.1 with a certificate for a made-up name, and DNS that changes its answer.

Used to test that outbound https (media fetch, webhooks) connects to the address the URL policy checked, while
TLS still verifies the name: ``rebinding_dns`` answers 127.0.0.1 the first time the name is resolved and
127.0.0.2 every time after (standing in for an inward address such as the metadata server, but still on this
machine, where nothing listens), so a client that resolves again goes somewhere it must not. The policy treats
127.0.0.1 as public for the test's name only.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from captionqc.runtime import media_uri


@dataclass
class Seen:
    method: str
    path: str
    host: str
    body: bytes


@dataclass
class TlsServer:
    port: int
    ca_file: Path
    seen: list[Seen] = field(default_factory=list)


def _certificates(name: str, folder: Path) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "captionqc test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


@contextmanager
def tls_server(name: str, folder: Path, payload: bytes = b"") -> Iterator[TlsServer]:
    """Serve ``payload`` to GETs and 204 to POSTs over TLS as ``name``, on 127.0.0.1; record every request."""
    ca_file, cert_file, key_file = _certificates(name, folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    seen: list[Seen] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen.append(Seen(self.command, self.path, self.headers.get("Host", ""), self.rfile.read(length)))

        def do_GET(self) -> None:
            self._record()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            self._record()
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, name=f"tls-{name}", daemon=True)
    thread.start()
    try:
        yield TlsServer(port=httpd.server_address[1], ca_file=ca_file, seen=seen)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def rebinding_dns(monkeypatch: pytest.MonkeyPatch, name: str, ca_file: Path) -> list[str]:
    """Make ``name`` resolve to 127.0.0.1 once and to 127.0.0.2 after; trust ``ca_file``.

    Returns the list of lookups of ``name``, so a test can see how often it was resolved.
    """
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_check_public = media_uri.check_public_address

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real_getaddrinfo(host, port, *args, **kwargs)

    def check_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> None:
        if host == name and ip == ipaddress.ip_address("127.0.0.1"):
            return  # the test's stand-in for a public address
        real_check_public(ip, host)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(media_uri, "check_public_address", check_public)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    return lookups
