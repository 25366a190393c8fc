"""``/v1/responses`` to an upstream that speaks it: OpenAI, and Azure OpenAI on its v1 surface.

The client's body goes up with the upstream's ``model`` and ``store: false`` unless the client set ``store``
(the gateway keeps no responses and refuses ``store: true``, so an upstream copy would serve nobody; see
:mod:`~modelyard_proxy.providers.ingress.openai_responses`). Answers and events come back untouched: the
stream translator only watches them for usage, in-band failures and a stream cut before its terminal event.
Addressing, authentication and error classification are the chat adapters', inherited.

Azure serves the Responses API only on its OpenAI-compatible v1 surface (``{endpoint}/openai/v1/responses``,
no ``api-version``), whatever ``azure.api`` says for chat; the deployment goes in ``model``.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import SSEEvent
from modelyard_proxy.providers.base import (
    CallContext,
    Inbound,
    JSONObject,
    StreamTranslator,
    UpstreamCall,
    UpstreamStreamError,
)
from modelyard_proxy.providers.ingress.openai_responses import TERMINAL_EVENTS, chat_usage
from modelyard_proxy.providers.openai_chat_to_openai_chat.adapter import ErrorFields, OpenAIAdapter, error_fields
from modelyard_proxy.providers.openai_chat_to_openai_chat.azure import DEFAULT_OPTIONS, AzureOpenAIAdapter
from modelyard_proxy.providers.schemas import Pair, Schema

#: Events that end a stream on a failure: the API's ``error`` event and the failed response.
FAILURE_EVENTS = frozenset({"error", "response.failed"})
_ERROR_PREFIXES = (b'{"error"', b'{\n  "error"')


class ResponsesPassthroughAdapter(OpenAIAdapter):
    """OpenAI's Responses API (subclasses change addressing, as the chat adapters do)."""

    pairs = frozenset({Pair(Schema.OPENAI_RESPONSES, Schema.OPENAI_RESPONSES)})

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        model, body = self._body_model(ctx), inbound.body
        if body.get("model") == model and body.get("store") is False:
            raw = inbound.wire()  # already what the upstream must get: its bytes go as they came
        else:
            raw = orjson.dumps({**body, "model": model, "store": False})
        headers = {**ctx.forwarded_headers, **self._headers(ctx.credential)}
        return UpstreamCall(self._url(ctx, "responses"), headers, raw)

    def chat_result(self, payload: bytes, ctx: CallContext) -> bytes:
        """The answer untouched, unless it is an error or a failed response inside a 200."""
        head = payload.lstrip()[:16]
        if head.startswith(_ERROR_PREFIXES) or b'"failed"' in payload:
            answer: Any = orjson.loads(payload)
            if isinstance(answer, dict) and answer.get("error"):  # an error body, or a failed response
                raise self.in_band_error(_fields(answer), ctx, GatewayError)
        return payload

    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        return ResponsesPassthroughStream(self, ctx)


class AzureResponsesAdapter(ResponsesPassthroughAdapter, AzureOpenAIAdapter):
    """Azure OpenAI's Responses API: the v1 path, the ``api-key`` header, Azure's content-filter errors."""

    def _url(self, ctx: CallContext, operation: str) -> str:
        return f"{ctx.credential.base_url}/openai/v1/{operation}"

    def _body_model(self, ctx: CallContext) -> str:
        options = ctx.credential.azure or DEFAULT_OPTIONS
        return options.deployment or ctx.upstream_model


def _fields(payload: JSONObject) -> ErrorFields:
    """The error a failure event or failed response carries (``error`` nested, or the event's own fields)."""
    source = payload.get("response") if isinstance(payload.get("response"), dict) else payload
    return error_fields(source) or ErrorFields("the upstream reported a failure without a message")


class ResponsesPassthroughStream(StreamTranslator):
    """Relays each event as it came; reads only the terminal and failure events."""

    def __init__(self, adapter: OpenAIAdapter, ctx: CallContext) -> None:
        self._adapter = adapter
        self._ctx = ctx
        self._ended = False

    def feed(self, event: SSEEvent) -> bytes:
        data = event.data
        if not data or data.startswith(b"[DONE]"):
            return b""
        kind: Any = event.event
        if not kind or kind in FAILURE_EVENTS or kind in TERMINAL_EVENTS:
            payload = orjson.loads(data)
            kind = payload.get("type") if isinstance(payload, dict) else None
            if kind in FAILURE_EVENTS:
                raise self._adapter.in_band_error(_fields(payload), self._ctx, UpstreamStreamError)
            if kind in TERMINAL_EVENTS:
                self._ended = True
                self.answer = payload["response"]
                self.usage = chat_usage(self.answer.get("usage"))
        name = b"event: " + kind.encode() + b"\n" if isinstance(kind, str) and kind else b""
        return name + b"data: " + data.replace(b"\n", b"\ndata: ") + b"\n\n"

    def finish(self) -> bytes:
        if not self._ended:
            where = f"upstream {self._adapter.name} ({self._ctx.credential.id})"
            raise UpstreamStreamError(
                502, f"{where} ended the stream before response.completed", type="upstream_error",
                code="upstream_truncated",
            )  # fmt: skip
        return b""
