"""OpenAI messages rebuilt as Anthropic-shaped turns, for every upstream that wants that shape.

Anthropic Messages and Bedrock Converse both take the system prompt apart from the turns, want user and
assistant turns to alternate (so same-role messages merge), put tool results in the user turn after the
calls, ahead of any text, and start with the user. Only the blocks differ: each upstream gives a
:class:`TurnShape` that builds its own, and the walk over the messages is this one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from modelyard_proxy.base.errors import bad_request, unsupported_parameter
from modelyard_proxy.providers import params
from modelyard_proxy.providers.base import JSONObject


@dataclasses.dataclass(frozen=True, slots=True)
class TurnShape:
    """How one upstream writes each kind of block."""

    provider: str
    #: A text block.
    text: Callable[[str], JSONObject]
    #: An image or document block from an ``image_url`` URL or a file's ``data:`` URL (its ``where``).
    media: Callable[[Any, str], JSONObject]
    #: The signed thinking a client sent back on an assistant message, which leads that turn.
    replayed: Callable[[JSONObject, str], list[JSONObject]]
    #: One tool call of an assistant message.
    tool_use: Callable[[params.ToolCall], JSONObject]
    #: A tool result: the call's id and the result's text (empty when the tool said nothing).
    tool_result: Callable[[str, str], JSONObject]
    #: Whether a block is a tool result (they lead their turn).
    is_tool_result: Callable[[JSONObject], bool]


def conversation(raw: Any, shape: TurnShape) -> tuple[list[JSONObject], list[JSONObject]]:
    """``(system blocks, messages)``: system turns hoisted, same-role turns merged, tool results grouped."""
    if not isinstance(raw, list) or not raw:
        raise bad_request("'messages' must be a non-empty list", param="messages")
    system: list[JSONObject] = []
    messages: list[JSONObject] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in {"system", "developer"}:
            if text := params.text_content(message.get("content"), where):
                system.append(shape.text(text))
        elif role == "user":
            append_turn(messages, "user", user_blocks(message.get("content"), where, shape))
        elif role == "assistant":
            append_turn(messages, "assistant", assistant_blocks(message, where, shape))
        elif role == "tool":
            append_tool_result(messages, tool_result(message, where, shape), shape)
        else:
            raise bad_request(
                f"{where}.role {role!r} is not supported by the {shape.provider} provider", param="messages"
            )
    if not messages:
        raise bad_request("'messages' needs at least one user message", param="messages")
    if messages[0]["role"] != "user":
        raise bad_request(
            f"the {shape.provider} provider requires the conversation to start with a user message", param="messages"
        )
    return system, messages


def assistant_blocks(message: JSONObject, where: str, shape: TurnShape) -> list[JSONObject]:
    """Signed thinking first (where the upstream requires it), then text, then tool calls."""
    blocks = shape.replayed(message, where)
    if text := params.text_content(message.get("content"), where):
        blocks.append(shape.text(text))
    blocks.extend(shape.tool_use(call) for call in params.assistant_tool_calls(message, where))
    return blocks


def tool_result(message: JSONObject, where: str, shape: TurnShape) -> JSONObject:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise bad_request(f"{where}.tool_call_id must be a string", param="messages")
    return shape.tool_result(call_id, params.text_content(message.get("content"), where))


def append_turn(messages: list[JSONObject], role: str, blocks: list[JSONObject]) -> None:
    """Add a turn, merging into the previous one of the same role; turns without content are skipped."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def append_tool_result(messages: list[JSONObject], block: JSONObject, shape: TurnShape) -> None:
    """Put a tool result in the current user turn after the other results but before any text."""
    if not messages or messages[-1]["role"] != "user":
        messages.append({"role": "user", "content": [block]})
        return
    content: list[JSONObject] = messages[-1]["content"]
    at = 0
    while at < len(content) and shape.is_tool_result(content[at]):
        at += 1
    content.insert(at, block)


def user_blocks(content: Any, where: str, shape: TurnShape) -> list[JSONObject]:
    """A user message's text, images and files; files must come inline."""
    if isinstance(content, str):
        return [shape.text(content)] if content else []
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of parts", param="messages")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if text := part.get("text"):
                blocks.append(shape.text(str(text)))
        elif kind == "image_url":
            image = part.get("image_url")
            blocks.append(shape.media(image.get("url") if isinstance(image, dict) else image, where))
        elif kind == "file":
            file = part.get("file")
            data = file.get("file_data") if isinstance(file, dict) else None
            if not isinstance(data, str) or not data.startswith("data:"):
                raise unsupported_parameter(
                    "messages", shape.provider, f"{where}: files must be sent inline as file_data data URLs"
                )
            blocks.append(shape.media(data, where))
        else:
            raise unsupported_parameter("messages", shape.provider, f"{where} has a {kind!r} part")
    return blocks
