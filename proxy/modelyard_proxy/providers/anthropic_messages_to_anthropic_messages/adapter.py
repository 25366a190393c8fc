"""Anthropic Messages clients served by Anthropic: ``POST {base_url}/messages`` with only ``model`` swapped.

Nothing is translated, so everything the API offers (thinking signatures, cache control, server tools, betas
named in ``anthropic-beta``) works as it does against Anthropic directly. The client's ``anthropic-version``
is forwarded (the SDKs always send one); the gateway's credential replaces the client's key.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.anthropic_messages_to_anthropic_messages.stream import PassthroughStream
from modelyard_proxy.providers.base import CallContext, Inbound, ProviderAdapter, StreamTranslator, UpstreamCall
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.adapter import ANTHROPIC_VERSION, AnthropicAdapter
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.response import http_error
from modelyard_proxy.providers.schemas import Pair, Schema

#: Anthropic has no embeddings API: refused as for Chat Completions clients.
_CHAT = AnthropicAdapter()


class AnthropicPassthroughAdapter(ProviderAdapter):
    """The client's Messages request to Anthropic, its answer and events back, byte for byte."""

    name = "anthropic"
    pairs = frozenset({Pair(Schema.ANTHROPIC_MESSAGES, Schema.ANTHROPIC_MESSAGES)})

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return upstream_call(inbound, ctx, "messages")

    def chat_result(self, payload: bytes, ctx: CallContext) -> bytes:  # noqa: ARG002
        return payload  # the protocol's read_answer checks it is one whole message

    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        return PassthroughStream(ctx)

    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return _CHAT.embeddings_call(inbound, ctx)

    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return _CHAT.embeddings_result(payload, ctx)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return http_error(status, headers, payload, ctx)


def upstream_call(inbound: Inbound, ctx: CallContext, operation: str) -> UpstreamCall:
    """``POST {base_url}/{operation}`` with the client's body (its ``model`` the target's) and headers."""
    body = inbound.body
    raw = (
        inbound.wire()
        if body.get("model") == ctx.upstream_model
        else orjson.dumps({**body, "model": ctx.upstream_model})
    )
    credential = ctx.credential
    headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
    headers.update(ctx.forwarded_headers)  # the protocol's: anthropic-version, anthropic-beta
    if credential.api_key is not None:
        headers["x-api-key"] = credential.api_key.get_secret_value()
    headers.update(credential.headers)
    return UpstreamCall(f"{credential.base_url}/{operation}", headers, raw)
