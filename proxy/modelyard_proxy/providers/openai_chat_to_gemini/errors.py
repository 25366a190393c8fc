"""Gemini's ``{"error": {code, message, status, details}}`` as the gateway's error.

Three Gemini habits need care before ``classify`` sees the failure: a bad API key is a 400, the pause to
honour is in ``details[].retryDelay`` rather than a header, and every 429 says "exceeded your current
quota" even when it is a per-minute limit that clears in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.failures.classify import classify
from modelyard_proxy.providers.base import JSONObject, UpstreamStreamError
from modelyard_routing import Credential

PROVIDER = "gemini"
_TYPE_PREFIX = "type.googleapis.com/google.rpc."
_BILLING_WORDS = ("billing", "spending cap")


def error_from_body(status: int, headers: Mapping[str, str], payload: bytes, credential: Credential) -> GatewayError:
    """The gateway's error for a non-2xx Gemini answer; the body may be JSON, a JSON array of one, or text."""
    try:
        parsed: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]  # some Google front ends wrap the error in an array
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return classify(status, payload.decode("utf-8", "replace"), credential, provider=PROVIDER, headers=headers)
    return error_from_object(status, headers, error, credential)


def in_band_error(error: Any, credential: Credential) -> UpstreamStreamError:
    """A failure Gemini reported inside a stream, classified as if it had been the HTTP answer."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    code = error.get("code")
    status = code if isinstance(code, int) and code >= 400 else 502
    failure = error_from_object(status, {}, error, credential)
    return UpstreamStreamError(failure.status, failure.message, type=failure.type, code=failure.code)


def error_from_object(
    status: int, headers: Mapping[str, str], error: JSONObject, credential: Credential
) -> GatewayError:
    """Classify Gemini's error object, first correcting the status where Gemini's differs from its meaning."""
    message = str(error.get("message") or "")
    upstream_status = error.get("status") if isinstance(error.get("status"), str) else None
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    reason = _detail(details, "ErrorInfo", "reason")
    if status == 400 and (str(reason).startswith("API_KEY_") or message.startswith("API key")):
        status = 401  # an unusable key is the gateway's credential problem, not the client's request
    elif status == 400 and upstream_status == "FAILED_PRECONDITION":
        status = 402 if any(word in message.lower() for word in _BILLING_WORDS) else 403  # account or region
    elif status >= 500 and error.get("code") == 429:
        status = 429
    delay = _retry_delay(_detail(details, "RetryInfo", "retryDelay"))
    if delay is not None and "retry-after" not in headers and "retry-after-ms" not in headers:
        headers = {"retry-after": f"{delay:g}"}
    failure = classify(
        status,
        message,
        credential,
        provider=PROVIDER,
        upstream_type=upstream_status,
        upstream_code=reason if isinstance(reason, str) else None,
        headers=headers,
    )
    return _rate_or_quota(failure, details, delay is not None) if failure.status == 429 else failure


def _rate_or_quota(failure: GatewayError, details: list[JSONObject], has_delay: bool) -> GatewayError:
    """Tell a daily quota (no use retrying) from a per-minute limit by the quota ids Gemini names."""
    quota_ids = " ".join(
        str(violation.get("quotaId", ""))
        for detail in details
        if detail.get("@type") == f"{_TYPE_PREFIX}QuotaFailure"
        for violation in detail.get("violations") or ()
        if isinstance(violation, dict)
    )
    if "PerDay" in quota_ids:
        kind, retryable = "insufficient_quota", False
    elif has_delay or "PerMinute" in quota_ids:
        kind, retryable = "rate_limit_error", True
    else:
        return failure
    code = "insufficient_quota" if kind == "insufficient_quota" else "rate_limit_exceeded"
    return GatewayError(
        429, failure.message, type=kind, code=code, retryable=retryable, retry_after=failure.retry_after
    )


def _detail(details: list[JSONObject], kind: str, field: str) -> Any:
    for detail in details:
        if detail.get("@type") == f"{_TYPE_PREFIX}{kind}":
            return detail.get(field)
    return None


def _retry_delay(value: Any) -> float | None:
    """A protobuf Duration in JSON form (``"12s"``, ``"0.5s"``) as seconds."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None
