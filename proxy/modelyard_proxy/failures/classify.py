"""Turns an upstream's failure into the gateway's answer, the same way for every provider.

Adapters pull ``message``/``type``/``code`` out of their native error body; this module decides the
status the client sees, whether another attempt may help, how long to wait, and scrubs credentials from
the upstream's wording.
"""

from __future__ import annotations

import dataclasses
import email.utils
import re
import time
from collections.abc import Mapping

from modelyard_proxy.base.errors import GatewayError
from modelyard_routing import Credential

#: Upstream statuses that are the caller's own doing: passed through with the upstream's reason.
CLIENT_FAULT = frozenset({400, 413, 422})
RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
CONTEXT_LENGTH_PATTERNS = re.compile(
    r"maximum context length|context length|prompt is too long|input token count .* exceeds"
    r"|exceeds the maximum number of tokens|too many input tokens|exceeds the available context size"
    r"|context_length_exceeded",
    re.IGNORECASE,
)
QUOTA_PATTERNS = re.compile(r"insufficient_quota|exceeded your current quota|insufficient balance|billing", re.I)
KEY_ECHO = re.compile(r"(api[ _-]?key[^:]*:\s*)\S+", re.IGNORECASE)
KEY_LIKE = re.compile(r"\b(sk|key|AIza)[-_A-Za-z0-9]{12,}")
MAX_MESSAGE = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamFault:
    """How an upstream status that is not the client's fault reaches the client."""

    status: int
    code: str
    what: str
    retryable: bool


class MalformedAnswer(ValueError):
    """A 2xx answer an adapter cannot read: not JSON, or not its dialect's shape.

    Adapters raise it without naming the credential; the relay reports it as ``upstream_malformed`` for the
    credential that sent it and treats it like any other transient upstream fault (retry, then fall back),
    the same way for every provider.
    """


_AUTH = UpstreamFault(502, "upstream_auth_failed", "rejected the gateway's credential", retryable=False)
_TIMEOUT = UpstreamFault(504, "upstream_timeout", "timed out", retryable=True)
_OVERLOADED = UpstreamFault(503, "upstream_unavailable", "is overloaded", retryable=True)
UPSTREAM_FAULTS: dict[int, UpstreamFault] = {
    401: _AUTH,
    403: _AUTH,
    402: UpstreamFault(502, "upstream_billing", "refused for billing", retryable=False),
    404: UpstreamFault(502, "upstream_not_found", "does not know the model", retryable=False),
    408: _TIMEOUT,
    504: _TIMEOUT,
    503: _OVERLOADED,
    529: _OVERLOADED,
}


def classify(
    status: int,
    message: str,
    credential: Credential,
    *,
    provider: str,
    upstream_type: str | None = None,
    upstream_code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> GatewayError:
    """The gateway's error for an upstream answer with ``status`` and the upstream's own reason."""
    reason = scrub(message, credential) or f"HTTP {status}"
    where = f"upstream {provider} ({credential.id})"
    retry_after = retry_after_seconds(headers or {})
    if status in CLIENT_FAULT:
        if CONTEXT_LENGTH_PATTERNS.search(f"{reason} {upstream_code or ''}"):
            return GatewayError(status, reason, code="context_length_exceeded", param="messages")
        return GatewayError(status, reason, code=upstream_code if status != 413 else "request_too_large")
    if status == 429 or upstream_type in {"rate_limit_error", "RESOURCE_EXHAUSTED"}:
        quota = bool(QUOTA_PATTERNS.search(f"{reason} {upstream_type or ''} {upstream_code or ''}"))
        return GatewayError(
            429,
            f"{where} is rate limiting: {reason}",
            type="insufficient_quota" if quota else "rate_limit_error",
            code="insufficient_quota" if quota else "rate_limit_exceeded",
            retryable=not quota,
            retry_after=retry_after,
        )
    if QUOTA_PATTERNS.search(upstream_type or ""):
        status = 402
    fault = UPSTREAM_FAULTS.get(status)
    if fault is None:
        return GatewayError(
            502,
            f"{where} failed with HTTP {status}: {reason}",
            type="upstream_error",
            code="upstream_error",
            retryable=status in RETRYABLE or status >= 500,
        )
    return GatewayError(
        fault.status,
        f"{where} {fault.what}: {reason}",
        type="upstream_error",
        code=fault.code,
        retryable=fault.retryable,
        retry_after=retry_after if fault.retryable else None,
    )


def scrub(message: str, credential: Credential) -> str:
    """The upstream's message without the credential or anything shaped like a key, and bounded in length."""
    if credential.api_key is not None:
        secret = credential.api_key.get_secret_value()
        if secret:
            message = message.replace(secret, "[redacted]")
    message = KEY_ECHO.sub(r"\1[redacted]", message)
    message = KEY_LIKE.sub("[redacted]", message)
    return message.strip()[:MAX_MESSAGE]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The pause an upstream asked for: ``retry-after-ms``, then ``retry-after`` as seconds or an HTTP date."""
    if (millis := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
    return max(0.0, parsed.timestamp() - time.time()) if parsed is not None else None
