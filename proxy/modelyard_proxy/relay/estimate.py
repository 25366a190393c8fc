"""The most tokens a request can cost, worked out before any upstream sees it: what limits and budgets reserve.

Every token of a byte-pair tokenizer covers at least one byte of text, so a prompt's UTF-8 size bounds its
token count from above whatever the language or model. An image counts as :data:`IMAGE_TOKENS` (above what
OpenAI, Anthropic and Gemini charge for one at their largest size). The output is the request's own
``max_completion_tokens``/``max_tokens``, else the most the target's model may write. The reservation is
returned at settlement, when the real usage is known.
"""

from __future__ import annotations

from typing import Any

import orjson

#: Tokens reserved per image part (a 2048x2048 image is at most ~1,600 with every provider).
IMAGE_TOKENS = 2_000
#: Role and framing tokens each message adds.
MESSAGE_OVERHEAD = 8


def chat_input_tokens(body: dict[str, Any]) -> int:
    """An upper bound of the prompt tokens of a chat completion request."""
    total = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                total += MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
                if (calls := message.get("tool_calls")) is not None:
                    total += len(orjson.dumps(calls))
    if (tools := body.get("tools")) is not None:
        total += len(orjson.dumps(tools))
    return total


def embeddings_input_tokens(body: dict[str, Any]) -> int:
    """An upper bound of the tokens of an embeddings request's ``input``."""
    value = body.get("input")
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return sum(len(item.encode()) if isinstance(item, str) else _token_array(item) for item in value)
    return 0


def output_tokens(body: dict[str, Any], model_limit: int) -> int:
    """The request's own output cap, else the model's."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return min(value, model_limit)
    return model_limit


def _content_tokens(content: object) -> int:
    if isinstance(content, str):
        return len(content.encode())
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(text := part.get("text"), str):
            total += len(text.encode())
        elif part.get("type") == "image_url":
            total += IMAGE_TOKENS
        else:
            total += len(orjson.dumps(part))
    return total


def _token_array(item: object) -> int:
    """An input already tokenized: one token per element (a single id counts one)."""
    return len(item) if isinstance(item, list) else 1
