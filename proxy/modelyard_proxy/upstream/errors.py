"""How a call to an upstream fails below HTTP: the relay turns these into retryable 502s naming the upstream."""

from __future__ import annotations


class UpstreamError(Exception):
    """The upstream could not be reached, or broke the exchange off (timeouts are ``TimeoutError``)."""


class UpstreamDisconnected(UpstreamError):
    """The connection closed before the response began (a pooled connection the server had dropped, say)."""


class UpstreamTruncated(UpstreamError):
    """The connection closed after the response began and before it ended."""


class ProtocolError(UpstreamError):
    """The upstream's bytes are not a valid HTTP/1.1 response (or the request could not be written as one)."""


class InvalidRequest(UpstreamError):
    """The request cannot be sent as configured (not an http(s) URL, a header value with a line break)."""


#: Everything an upstream call can raise below HTTP: the client's own errors, the socket's (refused,
#: unreachable, TLS) and its timeouts.
TRANSPORT_ERRORS = (UpstreamError, OSError, TimeoutError)
