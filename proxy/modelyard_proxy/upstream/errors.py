"""How a call to an upstream fails below HTTP: the relay turns these into retryable 502s naming the upstream."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard_proxy.upstream.proxies import ForwardProxy


class UpstreamError(Exception):
    """The upstream could not be reached, or broke the exchange off (timeouts are ``TimeoutError``)."""


class UpstreamDisconnected(UpstreamError):
    """The connection closed before the response began (a pooled connection the server had dropped, say)."""


class UpstreamTLSRefused(UpstreamDisconnected):
    """The upstream ended the TLS session with an alert before answering (an mTLS server refusing a client
    without a certificate, say); ``reason`` is OpenSSL's name for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the upstream ended the TLS session: {reason}")
        self.reason = reason


class UpstreamTruncated(UpstreamError):
    """The connection closed after the response began and before it ended."""


class ProtocolError(UpstreamError):
    """The upstream's bytes are not a valid HTTP/1.1 response (or the request could not be written as one)."""


class InvalidRequest(UpstreamError):
    """The request cannot be sent as configured (not an http(s) URL, a header value with a line break)."""


class EgressError(UpstreamError):
    """The way out failed before the upstream was reached; the message names it (never a password or key)."""


class ProxyError(EgressError):
    """The forward proxy failed the call; the message names the proxy as ``http://host:port``."""

    def __init__(self, proxy: ForwardProxy, what: str) -> None:
        super().__init__(f"its proxy {proxy} {what}")
        self.proxy = proxy


class ProxyUnreachable(ProxyError):
    """The proxy could not be connected to, or broke the connection off before answering."""


class ProxyRefused(ProxyError):
    """The proxy answered CONNECT with something other than 2xx (407: it wants credentials)."""

    def __init__(self, proxy: ForwardProxy, target: str, status: int, reason: str) -> None:
        answer = f"{status} {reason}".strip() if status else reason
        super().__init__(proxy, f"refused the tunnel to {target}: {answer}")
        self.status = status


class InvalidEgress(EgressError):
    """The egress settings (a proxy URL, a CA bundle, a client certificate) cannot be used as given."""


#: Everything an upstream call can raise below HTTP: the client's own errors, the socket's (refused,
#: unreachable, TLS) and its timeouts.
TRANSPORT_ERRORS = (UpstreamError, OSError, TimeoutError)
