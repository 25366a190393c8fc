"""The Responses codec the registry chains in front of every provider's chat adapter."""

from __future__ import annotations

from modelyard_proxy.providers.base import CallContext, JSONObject
from modelyard_proxy.providers.ingress.chain import ChatCodec, ChunkConverter
from modelyard_proxy.providers.openai_responses_to_openai_chat import request, response, stream
from modelyard_proxy.providers.schemas import Schema


class ResponsesCodec(ChatCodec):
    """``/v1/responses`` bodies to Chat Completions; chat answers and chunks back to Responses."""

    schema = Schema.OPENAI_RESPONSES

    def chat_request(self, body: JSONObject, ctx: CallContext) -> JSONObject:  # noqa: ARG002
        return request.chat_request(body)

    def answer(self, chat: JSONObject, ctx: CallContext) -> bytes:
        return response.answer(chat, ctx)

    def stream(self, ctx: CallContext) -> ChunkConverter:
        return stream.ResponsesEvents(ctx)
