"""An upstream URL split once into what a request needs: the way to its origin, the request line, the Host header."""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import Mapping
from typing import Protocol

from modelyard_proxy.upstream.errors import InvalidRequest
from modelyard_proxy.upstream.proxies import ForwardProxy
from modelyard_proxy.upstream.tunnel import authority

DEFAULT_PORTS = {"http": 80, "https": 443}


class PoolKey:
    """What connections are pooled by: one origin reached one way (its proxy, its TLS context).

    Compared by identity: the egress settings make one per origin, so two settings (two credentials with
    different egress) never share a connection, and a lookup hashes no tuple.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"PoolKey({self.name})"


class Way(Protocol):
    """How an egress setting reaches an origin (see :class:`~modelyard_proxy.upstream.egress.EgressSettings`)."""

    def proxy_for(self, scheme: str, host: str, port: int) -> ForwardProxy | None: ...

    def tls_context(self) -> ssl.SSLContext: ...

    def pool_key(self, scheme: str, host: str, port: int, proxy: ForwardProxy | None) -> PoolKey: ...


class Target:
    """One upstream URL as reached under one egress setting."""

    __slots__ = ("host", "key", "port", "proxy", "proxy_tls", "start", "tls")

    def __init__(self, url: str, way: Way) -> None:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise InvalidRequest(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
        try:
            port = parts.port
        except ValueError:
            raise InvalidRequest(f"not a valid port in {scheme}://{parts.netloc}") from None
        self.host = parts.hostname
        self.port = port or DEFAULT_PORTS[scheme]
        https = scheme == "https"
        #: The context the origin's certificate is verified with (None: plain http).
        self.tls: ssl.SSLContext | None = way.tls_context() if https else None
        #: The forward proxy the connection goes through, if any, and the context its certificate is verified
        #: with when it is an https:// proxy (the one an https origin's would be).
        self.proxy = way.proxy_for(scheme, self.host, self.port)
        self.proxy_tls = way.tls_context() if self.proxy is not None and self.proxy.tls else None
        self.key = way.pool_key(scheme, self.host, self.port, self.proxy)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        if port is not None and port != DEFAULT_PORTS[scheme]:
            host_header = f"{host_header}:{port}"
        if self.proxy is not None and not https:  # the proxy forwards it: the absolute form, and its credentials
            auth = f"Proxy-Authorization: {self.proxy.authorization}\r\n" if self.proxy.authorization else ""
            self.start = f" http://{authority(self.host, self.port)}{path} HTTP/1.1\r\nHost: {host_header}\r\n{auth}"
        else:
            self.start = f" {path} HTTP/1.1\r\nHost: {host_header}\r\n"

    def request_head(self, method: str, headers: Mapping[str, str], length: int) -> bytes:
        """The request line and header block (Content-Length framed; gzip/deflate accepted unless set)."""
        fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        if fields.count("\n") != len(headers) or fields.count("\r") != len(headers):
            raise InvalidRequest("an upstream request header contains a line break")
        encoding = "" if "accept-encoding" in headers else "Accept-Encoding: gzip, deflate\r\n"
        return f"{method}{self.start}{fields}{encoding}Content-Length: {length}\r\n\r\n".encode()
