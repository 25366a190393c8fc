"""The proxy's own HTTP/1.1 client for upstream calls (see :mod:`modelyard_proxy.upstream.client`)."""

from modelyard_proxy.upstream.client import UpstreamClient, UpstreamResponse
from modelyard_proxy.upstream.errors import (
    TRANSPORT_ERRORS,
    InvalidRequest,
    ProtocolError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamTruncated,
)

__all__ = [
    "TRANSPORT_ERRORS",
    "InvalidRequest",
    "ProtocolError",
    "UpstreamClient",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTruncated",
]
