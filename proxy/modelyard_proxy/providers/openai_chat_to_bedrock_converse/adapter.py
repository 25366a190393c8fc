"""The Amazon Bedrock adapter: addressing and the Bedrock API key; translation lives beside it.

``request`` (chat requests), ``response`` (whole answers), ``stream`` (ConverseStream's event stream),
``errors``, ``reasoning`` and ``embeddings`` (InvokeModel). Calls go to
``{base_url}/model/{modelId}/converse`` (``/converse-stream``, ``/invoke``) with the model id, inference
profile or ARN percent-encoded whole, as the AWS SDKs encode it. A credential with a Bedrock API key sends
it as ``Authorization: Bearer``; every other call is signed with SigV4 after it is built
(:mod:`modelyard_proxy.cloudauth.aws`), so the signature covers exactly the bytes sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext, Inbound, ProviderAdapter, StreamTranslator, UpstreamCall
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.embeddings import embeddings_list, invoke_body
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.errors import http_error
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.request import build_request
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.response import chat_completion
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.stream import ConverseStream
from modelyard_proxy.providers.schemas import Pair, Schema
from modelyard_routing import Credential


class BedrockAdapter(ProviderAdapter):
    """OpenAI chat completions over Converse, embeddings over InvokeModel."""

    name = "bedrock"
    pairs = frozenset(
        {
            Pair(Schema.OPENAI_CHAT, Schema.BEDROCK_CONVERSE),
            Pair(Schema.OPENAI_EMBEDDINGS, Schema.BEDROCK_INVOKE),
        }
    )

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        body = build_request(inbound.body, ctx.upstream_model)
        return _call(ctx, "converse-stream" if ctx.stream else "converse", orjson.dumps(body))

    def chat_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return chat_completion(payload, ctx)

    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        return ConverseStream(ctx)

    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return _call(ctx, "invoke", orjson.dumps(invoke_body(inbound.body, ctx.upstream_model)))

    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return embeddings_list(payload, ctx.upstream_model, ctx.encoding_format)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return http_error(status, headers, payload, ctx.credential)


def model_url(credential: Credential, model: str, operation: str) -> str:
    """``{base}/model/{modelId}/{operation}``; ARNs and profile ids hold ``:`` and ``/``, encoded as AWS does."""
    return f"{credential.base_url}/model/{quote(model, safe='')}/{operation}"


def _call(ctx: CallContext, operation: str, body: bytes) -> UpstreamCall:
    credential = ctx.credential
    headers = {**credential.headers, "content-type": "application/json"}
    if not ctx.stream:
        headers["accept"] = "application/json"
    if credential.api_key is not None:
        headers["authorization"] = f"Bearer {credential.api_key.get_secret_value()}"
    return UpstreamCall(model_url(credential, ctx.upstream_model, operation), headers, body)
