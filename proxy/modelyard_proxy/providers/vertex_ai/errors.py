"""Vertex AI's failures as the gateway's errors.

Vertex's front door answers in Google's ``{"error": {code, message, status}}`` for every publisher (bad token,
permissions, unknown model, quota); a Claude model's own refusals (an invalid request, overloaded) arrive in
Anthropic's ``{"type": "error", ...}``. A Vertex 429 is a throughput limit (a per-minute quota, or the shared
capacity of pay-as-you-go models) and never a balance running out, so it is retried and falls back like any
rate limit whatever its wording.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.response import http_error
from modelyard_proxy.providers.openai_chat_to_gemini.errors import error_from_body


def vertex_error(status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
    """The gateway's error for a non-2xx Vertex answer, read in the shape it came in."""
    if _anthropic_shaped(payload):
        return http_error(status, headers, payload, ctx)
    failure = error_from_body(status, headers, payload, ctx.credential)
    if failure.status != 429 or failure.retryable:
        return failure
    return GatewayError(
        429,
        failure.message,
        type="rate_limit_error",
        code="rate_limit_exceeded",
        retryable=True,
        retry_after=failure.retry_after,
    )


def _anthropic_shaped(payload: bytes) -> bool:
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and parsed.get("type") == "error"
