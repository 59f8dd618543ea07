"""Plain HTTP requests from the edge to central: the site's Basic login and the TLS check."""

from __future__ import annotations

import base64
import http.client
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from edge_agent.credentials import Credential


def basic_authorization(login: Credential) -> str:
    """The `Authorization` header value that presents `login` by HTTP Basic."""
    token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode("ascii")
    return "Basic " + token


def ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verify central's certificate with `ca_file`, or the system CAs."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


class CentralHttp:
    """Central's HTTP address with the site's login: a new connection for each request."""

    def __init__(self, central_url: str, login: Credential, ca_file: Path | None = None) -> None:
        self.parts = urlsplit(central_url)
        self.authorization = basic_authorization(login)
        self.context = ssl_context(ca_file) if self.parts.scheme == "https" else None

    def path(self, target: str) -> str:
        """The request path of `target` (which starts with `/`) under central's URL path."""
        return self.parts.path.rstrip("/") + target

    def connect(self, timeout_s: float) -> http.client.HTTPConnection:
        """A connection to central (not opened yet): HTTPS with the check if its URL is https."""
        host, port = self.parts.hostname or "", self.parts.port
        if self.context is not None:
            return http.client.HTTPSConnection(host, port, timeout=timeout_s, context=self.context)
        return http.client.HTTPConnection(host, port, timeout=timeout_s)
