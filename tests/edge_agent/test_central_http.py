"""Plain HTTP requests to central: the site's Basic login, central's path, the TLS check."""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_agent.central_http import CentralHttp
from edge_agent.credentials import Credential

LOGIN = Credential("site-1", "pässword:1")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "central")])
    now = datetime.datetime.now(datetime.UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(loopback, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "central.crt", folder / "central.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def central(tmp_path: Path) -> Iterator[tuple[str, Path, list[tuple[str, str]]]]:
    """An HTTPS server on loopback noting each request's path and Authorization header."""
    seen: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append((self.path, self.headers.get("Authorization", "")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/central/", cert_file, seen
    server.shutdown()
    server.server_close()


def _get(target: CentralHttp, path: str) -> int:
    conn = target.connect(5.0)
    try:
        conn.request("GET", target.path(path), headers={"Authorization": target.authorization})
        return conn.getresponse().status
    finally:
        conn.close()


def test_requests_reach_central_over_checked_tls_with_the_site_login(
    central: tuple[str, Path, list[tuple[str, str]]],
) -> None:
    url, cert_file, seen = central
    assert _get(CentralHttp(url, LOGIN, cert_file), "/api/v1/x") == 204
    token = base64.b64encode("site-1:pässword:1".encode()).decode("ascii")
    assert seen == [("/central/api/v1/x", f"Basic {token}")]
    # Without central's CA the system CAs are asked, and they do not know this certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        _get(CentralHttp(url, LOGIN), "/api/v1/x")
    assert len(seen) == 1


def test_an_http_central_gets_a_plain_connection() -> None:
    target = CentralHttp("http://127.0.0.1:8080", LOGIN)
    assert target.context is None and target.path("/api/v1/x") == "/api/v1/x"
    assert type(target.connect(1.0)).__name__ == "HTTPConnection"
