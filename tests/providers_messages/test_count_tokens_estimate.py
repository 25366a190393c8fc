"""The token estimate ``count_tokens`` answers for providers that cannot count (``relay/estimate.py``)."""

from __future__ import annotations

import math

import orjson

from modelyard_proxy.providers.ingress.anthropic_messages import MESSAGES
from modelyard_proxy.relay.estimate import IMAGE_TOKENS, MESSAGE_OVERHEAD, chat_tokens_typical


def estimate(**body: object) -> int:
    return chat_tokens_typical(MESSAGES.estimate_view({"model": "m", "max_tokens": 1, **body}))


def test_text_counts_four_characters_a_token_plus_each_messages_framing() -> None:
    assert estimate(messages=[{"role": "user", "content": "a" * 400}]) == 100 + MESSAGE_OVERHEAD
    assert (
        estimate(system="b" * 40, messages=[{"role": "user", "content": "a" * 401}]) == 10 + 101 + 2 * MESSAGE_OVERHEAD
    )


def test_an_image_counts_as_a_large_image_whatever_its_bytes() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 1_000_000}}
    assert estimate(messages=[{"role": "user", "content": [image]}]) == IMAGE_TOKENS + MESSAGE_OVERHEAD


def test_tool_definitions_count_as_their_json() -> None:
    tools = [{"name": "f", "input_schema": {"type": "object", "description": "x" * 100}}]
    chars = len(orjson.dumps(tools))
    with_tools = estimate(messages=[{"role": "user", "content": "hi"}], tools=tools)
    assert with_tools == math.ceil((2 + chars) / 4) + MESSAGE_OVERHEAD
