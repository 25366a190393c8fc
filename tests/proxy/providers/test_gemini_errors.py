"""Gemini error answers mapped to the gateway's errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.providers.base import CallContext
from modelyard_proxy.providers.openai_chat_to_gemini.adapter import GeminiAdapter
from modelyard_routing import Credential
from modelyard_routing.specs import Provider

KEY = "AIzaSyTestKey0000000000000000000000000"
CTX = CallContext(
    public_model="smart",
    upstream_model="gemini-2.5-flash",
    credential=Credential(
        id="gemini-main",
        provider=Provider.GEMINI,
        base_url="https://generativelanguage.googleapis.com/v1beta",
        api_key=SecretStr(KEY),
    ),
)
RATE_LIMIT_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: "
    "generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.5-flash\n"
    "Please retry in 23.09s."
)


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return orjson.dumps({"error": error})


def quota_failure(quota_id: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": "10",
            }
        ],
    }


RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "23s"}
KEY_INVALID = {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "API_KEY_INVALID",
    "domain": "googleapis.com",
    "metadata": {"service": "generativelanguage.googleapis.com"},
}


def classify(status: int, payload: bytes, headers: dict[str, str] | None = None) -> Any:
    return GeminiAdapter().error_from(status, headers or {}, payload, CTX)


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (
            429,
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                RATE_LIMIT_MESSAGE,
                quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
                RETRY_INFO,
            ),
            (429, "rate_limit_error", "rate_limit_exceeded", True, 23.0),
        ),
        (
            429,
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                RATE_LIMIT_MESSAGE,
                quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
                RETRY_INFO,
            ),
            (429, "insufficient_quota", "insufficient_quota", False, 23.0),
        ),
        (
            429,
            google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
            (429, "rate_limit_error", "rate_limit_exceeded", True, None),
        ),
        (
            400,
            google_error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            (400, "invalid_request_error", "context_length_exceeded", False, None),
        ),
        (
            400,
            google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", KEY_INVALID),
            (502, "upstream_error", "upstream_auth_failed", False, None),
        ),
        (
            400,
            google_error(
                400,
                "FAILED_PRECONDITION",
                "Gemini API free tier is not available in your country. Please enable billing on your project.",
            ),
            (502, "upstream_error", "upstream_billing", False, None),
        ),
        (
            400,
            google_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
            (502, "upstream_error", "upstream_auth_failed", False, None),
        ),
        (
            400,
            google_error(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. Unknown name "foo".'),
            (400, "invalid_request_error", None, False, None),
        ),
        (
            404,
            google_error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta."),
            (502, "upstream_error", "upstream_not_found", False, None),
        ),
        (
            503,
            google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", RETRY_INFO),
            (503, "upstream_error", "upstream_unavailable", True, 23.0),
        ),
        (
            500,
            google_error(500, "INTERNAL", "An internal error has occurred."),
            (502, "upstream_error", "upstream_error", True, None),
        ),
        (
            500,
            google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted.", RETRY_INFO),
            (429, "rate_limit_error", "rate_limit_exceeded", True, 23.0),
        ),
        (
            504,
            google_error(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
            (504, "upstream_error", "upstream_timeout", True, None),
        ),
        (
            502,
            b"<html><title>502 Bad Gateway</title></html>",
            (502, "upstream_error", "upstream_error", True, None),
        ),
    ],
)
def test_error_mapping(status: int, payload: bytes, expected: tuple[Any, ...]) -> None:
    error = classify(status, payload)
    assert (error.status, error.type, error.code, error.retryable, error.retry_after) == expected


def test_array_wrapped_error_is_read() -> None:
    payload = b"[" + google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", RETRY_INFO) + b"]"
    error = classify(429, payload)
    assert (error.status, error.retry_after) == (429, 23.0)
    assert "Quota exceeded." in error.message


def test_retry_after_header_wins_over_retry_info() -> None:
    payload = google_error(429, "RESOURCE_EXHAUSTED", RATE_LIMIT_MESSAGE, RETRY_INFO)
    assert classify(429, payload, {"retry-after": "5"}).retry_after == 5.0


@pytest.mark.parametrize(("delay", "seconds"), [("0.5s", 0.5), ("12.25s", 12.25), ("soon", None), ("12", None)])
def test_retry_delay_formats(delay: str, seconds: float | None) -> None:
    info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
    assert classify(503, google_error(503, "UNAVAILABLE", "busy", info)).retry_after == seconds


def test_echoed_key_is_scrubbed() -> None:
    payload = google_error(400, "INVALID_ARGUMENT", f"API key not valid: {KEY}", KEY_INVALID)
    error = classify(400, payload)
    assert KEY not in error.message
    assert "gemini-main" in error.message
