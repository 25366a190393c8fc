"""The Google Gemini (Generative Language API) adapter: addressing and authentication.

Translation lives beside it: ``request`` and ``messages`` (chat requests), ``response`` (whole
answers), ``stream`` (streamed answers) and ``errors``; embeddings in ``openai_embeddings_to_gemini``.
The key travels in the ``x-goog-api-key`` header, never as ``?key=``, which would end up in access logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext, Inbound, ProviderAdapter, StreamTranslator, UpstreamCall
from modelyard_proxy.providers.openai_chat_to_gemini.errors import error_from_body
from modelyard_proxy.providers.openai_chat_to_gemini.request import chat_body
from modelyard_proxy.providers.openai_chat_to_gemini.response import chat_completion
from modelyard_proxy.providers.openai_chat_to_gemini.stream import GeminiStream
from modelyard_proxy.providers.openai_embeddings_to_gemini import embeddings_body, embeddings_list
from modelyard_proxy.providers.schemas import Pair, Schema
from modelyard_routing import Credential


class GeminiAdapter(ProviderAdapter):
    """OpenAI chat completions and embeddings over Gemini's ``generateContent`` family."""

    name = "gemini"
    pairs = frozenset(
        {
            Pair(Schema.OPENAI_CHAT, Schema.GEMINI_GENERATE_CONTENT),
            Pair(Schema.OPENAI_EMBEDDINGS, Schema.GEMINI_EMBED_CONTENT),
        }
    )

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        body = chat_body(inbound.body, ctx.upstream_model, ctx.stream)
        method = "streamGenerateContent?alt=sse" if ctx.stream else "generateContent"
        return _call(ctx, method, body)

    def chat_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return chat_completion(payload, ctx)

    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        return GeminiStream(ctx)

    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return _call(ctx, "batchEmbedContents", embeddings_body(inbound.body, model_path(ctx.upstream_model)))

    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return embeddings_list(payload, ctx.upstream_model, ctx.encoding_format)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return error_from_body(status, headers, payload, ctx.credential)


def model_path(model: str) -> str:
    """Gemini's resource name: ``models/<name>``, or the name itself when it already has a collection
    (``models/...``, ``tunedModels/...``)."""
    return model if "/" in model else f"models/{model}"


def _call(ctx: CallContext, method: str, body: dict[str, object]) -> UpstreamCall:
    url = f"{ctx.credential.base_url}/{quote(model_path(ctx.upstream_model), safe='/')}:{method}"
    return UpstreamCall(url, _headers(ctx.credential), orjson.dumps(body))


def _headers(credential: Credential) -> dict[str, str]:
    headers = {**credential.headers, "content-type": "application/json"}
    if credential.api_key is not None:
        headers["x-goog-api-key"] = credential.api_key.get_secret_value()
    return headers
