"""The proxy's own HTTP/1.1 client for upstream calls (see :mod:`modelyard_proxy.upstream.client`)."""

from modelyard_proxy.upstream.client import UpstreamClient, UpstreamResponse
from modelyard_proxy.upstream.egress import EgressCache, EgressSettings
from modelyard_proxy.upstream.errors import (
    TRANSPORT_ERRORS,
    EgressError,
    InvalidEgress,
    InvalidRequest,
    ProtocolError,
    ProxyError,
    ProxyRefused,
    ProxyUnreachable,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamTLSRefused,
    UpstreamTruncated,
)

__all__ = [
    "TRANSPORT_ERRORS",
    "EgressCache",
    "EgressError",
    "EgressSettings",
    "InvalidEgress",
    "InvalidRequest",
    "ProtocolError",
    "ProxyError",
    "ProxyRefused",
    "ProxyUnreachable",
    "UpstreamClient",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTLSRefused",
    "UpstreamTruncated",
]
