"""The Anthropic Messages adapter: OpenAI chat completions served by ``POST {base_url}/messages``.

Request translation lives in ``request``, answers and errors in ``response``, and the
stream state machine in ``stream``; this module only wires them to the adapter contract.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.providers.base import CallContext, Inbound, ProviderAdapter, StreamTranslator, UpstreamCall
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.request import build_request
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.response import chat_completion, http_error
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.stream import AnthropicStreamTranslator
from modelyard_proxy.providers.schemas import Pair, Schema

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAdapter(ProviderAdapter):
    """Translates OpenAI chat completions to Anthropic Messages and back; Anthropic has no embeddings."""

    name = "anthropic"
    pairs = frozenset({Pair(Schema.OPENAI_CHAT, Schema.ANTHROPIC_MESSAGES)})

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        body = build_request(inbound.body, ctx.upstream_model, ctx.stream)
        credential = ctx.credential
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if credential.api_key is not None:
            headers["x-api-key"] = credential.api_key.get_secret_value()
        headers.update(credential.headers)
        return UpstreamCall(f"{credential.base_url}/messages", headers, orjson.dumps(body))

    def chat_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return chat_completion(payload, ctx)

    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        return AnthropicStreamTranslator(ctx)

    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:  # noqa: ARG002
        raise self._no_embeddings(ctx)

    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:  # noqa: ARG002
        raise self._no_embeddings(ctx)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return http_error(status, headers, payload, ctx)

    def _no_embeddings(self, ctx: CallContext) -> GatewayError:
        return bad_request(
            f"model {ctx.public_model!r} is served by the {self.name} provider, which has no embeddings API",
            param="model",
            code="unsupported_endpoint",
        )
