"""Error selection: which native error type and message each provider uses for a status.

One table keeps the three dialects consistent; each dialect only decides the body shape.
"""

from __future__ import annotations

from dataclasses import dataclass


class Failure(Exception):
    """Raised anywhere while serving a request; the dialect renders it as its native error.

    ``message`` None means "the provider's usual wording for this status"; ``code`` is the
    OpenAI/Azure ``code`` or the Google ``ErrorInfo.reason``; ``param`` is OpenAI's ``param``.
    """

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message or f"status {status}")
        self.status = status
        self.message = message
        self.code = code
        self.param = param


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """Native error vocabulary for one HTTP status."""

    openai_type: str
    openai_code: str | None
    openai_message: str
    anthropic_type: str
    anthropic_message: str
    google_status: str
    google_message: str


_QUOTA = "You exceeded your current quota, please check your plan and billing details."
_OPENAI_SERVER = "The server had an error while processing your request. Sorry about that!"
_GOOGLE_INTERNAL = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"

_KINDS: dict[int, ErrorKind] = {
    400: ErrorKind(
        "invalid_request_error", None, "Invalid request.",
        "invalid_request_error", "Invalid request.",
        "INVALID_ARGUMENT", "Request contains an invalid argument.",
    ),
    401: ErrorKind(
        "invalid_request_error", "invalid_api_key", "Incorrect API key provided.",
        "authentication_error", "invalid x-api-key",
        "UNAUTHENTICATED", "Request had invalid authentication credentials.",
    ),
    402: ErrorKind(
        "insufficient_quota", "insufficient_quota", _QUOTA,
        "billing_error", "Your credit balance is too low to access the Anthropic API.",
        "FAILED_PRECONDITION", "User location is not supported for the API use without a billing account linked.",
    ),
    403: ErrorKind(
        "invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported",
        "permission_error", "Your API key does not have permission to use the specified resource.",
        "PERMISSION_DENIED", "The caller does not have permission",
    ),
    404: ErrorKind(
        "invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it.",
        "not_found_error", "model: not found",
        "NOT_FOUND", "models/unknown is not found for API version v1beta, or is not supported for generateContent.",
    ),
    408: ErrorKind(
        "timeout", None, "Request timed out.",
        "timeout_error", "Request timed out.",
        "DEADLINE_EXCEEDED", "The request timed out. Please try again.",
    ),
    409: ErrorKind(
        "invalid_request_error", "conflict", "The request conflicts with another request.",
        "invalid_request_error", "The request conflicts with another request.",
        "ABORTED", "The operation was aborted.",
    ),
    413: ErrorKind(
        "invalid_request_error", "request_too_large", "Request too large.",
        "request_too_large", "Request exceeds the maximum allowed number of bytes.",
        "INVALID_ARGUMENT", "Request payload size exceeds the limit.",
    ),
    422: ErrorKind(
        "invalid_request_error", None, "Unprocessable request.",
        "invalid_request_error", "Unprocessable request.",
        "INVALID_ARGUMENT", "Request contains an invalid argument.",
    ),
    429: ErrorKind(
        "requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later.",
        "rate_limit_error", "Number of requests has exceeded your rate limit. Please try again later.",
        "RESOURCE_EXHAUSTED", _QUOTA,
    ),
    500: ErrorKind(
        "server_error", None, _OPENAI_SERVER,
        "api_error", "Internal server error",
        "INTERNAL", _GOOGLE_INTERNAL,
    ),
    502: ErrorKind(
        "server_error", None, "Bad gateway.",
        "api_error", "Bad gateway",
        "UNAVAILABLE", "The service is currently unavailable.",
    ),
    503: ErrorKind(
        "server_error", None, "The engine is currently overloaded, please try again later.",
        "api_error", "Service unavailable",
        "UNAVAILABLE", "The model is overloaded. Please try again later.",
    ),
    504: ErrorKind(
        "timeout", None, "Gateway timeout.",
        "timeout_error", "Request timed out",
        "DEADLINE_EXCEEDED", "The request timed out. Please try again.",
    ),
    529: ErrorKind(
        "server_error", None, "The engine is currently overloaded, please try again later.",
        "overloaded_error", "Overloaded",
        "UNAVAILABLE", "The model is overloaded. Please try again later.",
    ),
}  # fmt: skip

_CLIENT_FALLBACK = _KINDS[400]
_SERVER_FALLBACK = _KINDS[500]


def error_kind(status: int) -> ErrorKind:
    """The native vocabulary for ``status``; unknown 4xx/5xx fall back to 400/500 wording."""
    return _KINDS.get(status) or (_SERVER_FALLBACK if status >= 500 else _CLIENT_FALLBACK)


def format_seconds(seconds: float) -> str:
    """``2`` rather than ``2.0`` in headers and messages."""
    return f"{seconds:g}"
