"""A prompt's tokens, worked out before any upstream sees it, from below and from above.

From below, for context windows: the message text at four characters a token, so a target is skipped only
when the prompt surely does not fit. From above, for what limits and budgets reserve: every token of a
byte-pair tokenizer covers at least one byte of text, so a prompt's UTF-8 size bounds its token count
whatever the language or model. An image counts as :data:`IMAGE_TOKENS` (above what OpenAI, Anthropic and
Gemini charge for one at their largest size). The output is the request's own ``max_completion_tokens``/
``max_tokens``, else the most the target's model may write. The reservation is returned at settlement, when
the real usage is known. In between, for ``count_tokens`` answered without the provider: text at four
characters a token, images and framing counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import orjson

#: Tokens reserved per image part (a 2048x2048 image is at most ~1,600 with every provider).
IMAGE_TOKENS = 2_000
#: Role and framing tokens each message adds.
MESSAGE_OVERHEAD = 8
#: Characters per token when estimating whether a prompt fits a context window (an underestimate on purpose).
CHARS_PER_TOKEN = 4


def chat_tokens_at_least(body: dict[str, Any]) -> int:
    """A deliberately low estimate of a chat prompt's tokens: its text at four characters a token."""
    chars = 0
    for message in _messages(body):
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return chars // CHARS_PER_TOKEN


def chat_tokens_typical(body: dict[str, Any]) -> int:
    """A middling estimate, for answering a count where the provider cannot count: text and tool definitions
    at four characters a token, each image at :data:`IMAGE_TOKENS`, each message its framing."""
    chars = images = messages = 0
    for message in _messages(body):
        messages += 1
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image_url":
                images += 1
            elif isinstance(text := part.get("text"), str):
                chars += len(text)
            else:
                chars += len(orjson.dumps(part))
    if (tools := body.get("tools")) is not None:
        chars += len(orjson.dumps(tools))
    return math.ceil(chars / CHARS_PER_TOKEN) + images * IMAGE_TOKENS + MESSAGE_OVERHEAD * messages


def chat_input_tokens(body: dict[str, Any]) -> int:
    """An upper bound of the prompt tokens of a chat completion request."""
    total = 0
    for message in _messages(body):
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


def _messages(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The body's messages that are objects (the handler checked their shape; this only reads them)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        yield from (message for message in messages if isinstance(message, dict))


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
