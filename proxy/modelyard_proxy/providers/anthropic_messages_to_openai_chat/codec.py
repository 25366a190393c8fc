"""Anthropic Messages to Chat Completions and back, for every provider that is not Anthropic."""

from __future__ import annotations

import orjson

from modelyard_proxy.providers.anthropic_messages_to_openai_chat import request, response
from modelyard_proxy.providers.anthropic_messages_to_openai_chat.stream import MessagesStream
from modelyard_proxy.providers.base import CallContext, JSONObject
from modelyard_proxy.providers.ingress.chain import ChatCodec, ChunkConverter
from modelyard_proxy.providers.schemas import Schema


class MessagesCodec(ChatCodec):
    """Requests by :mod:`.request`, whole answers by :mod:`.response`, streams by :mod:`.stream`."""

    schema = Schema.ANTHROPIC_MESSAGES

    def chat_request(self, body: JSONObject, ctx: CallContext) -> JSONObject:
        return request.chat_request(body, ctx)

    def answer(self, chat: JSONObject, ctx: CallContext) -> bytes:
        return orjson.dumps(response.message(chat, ctx))

    def stream(self, ctx: CallContext) -> ChunkConverter:
        return MessagesStream(ctx)


MESSAGES_CODEC = MessagesCodec()
