"""Anthropic Messages as a client protocol: ``POST /v1/messages``, what the ``anthropic`` SDK and Claude Code send.

Anthropic targets receive the request as sent (a native pair); every other provider is reached through
:mod:`~modelyard_proxy.providers.anthropic_messages_to_openai_chat`. Errors take Anthropic's shape with the
status its SDKs map to their exception classes; the gateway's own ``code`` rides in ``error.details.error_code``,
where the SDKs read a stable cause (``APIStatusError.error_code``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.ingress.openai_chat import check_count, check_stream_flag
from modelyard_proxy.providers.ingress.protocol import IngressProtocol, required_model
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.response import openai_usage
from modelyard_proxy.providers.schemas import Schema

#: The smallest thinking budget Anthropic accepts.
MIN_THINKING_BUDGET = 1024
ROLES = frozenset({"user", "assistant"})
THINKING_TYPES = frozenset({"enabled", "disabled", "adaptive"})
TOOL_CHOICE_TYPES = frozenset({"auto", "any", "tool", "none"})
#: Anthropic's error type for each status the gateway answers with (the SDKs pick their class by status).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
#: The gateway's overloaded-upstream code, which Anthropic's clients know as 529 (``OverloadedError``).
OVERLOADED_CODE = "upstream_unavailable"
OVERLOADED_STATUS = 529
#: A stream event whose message ends on the model's refusal.
REFUSAL = re.compile(rb'"stop_reason":\s*"refusal"')
#: Stream events that carry answer content whatever their payload (deltas) or that end the message.
_COMMITTING = frozenset({"content_block_delta", "message_stop"})


class MessagesProtocol(IngressProtocol):
    """Messages: ``message`` objects, named SSE events ending in ``message_stop``, ``{"type": "error"}``."""

    schema = Schema.ANTHROPIC_MESSAGES
    path = "/v1/messages"
    id_prefix = "msg_"
    forwarded_headers = ("anthropic-version", "anthropic-beta")

    def check_request(self, body: JSONObject, max_messages: int) -> None:
        required_model(body)
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or not _positive_int(max_tokens):
            raise bad_request("'max_tokens' is required and must be an integer of at least 1", param="max_tokens")
        check_messages(body.get("messages"), max_messages)
        check_system(body.get("system"))
        check_stream_flag(body)
        check_thinking(body.get("thinking"), max_tokens)
        check_tools(body.get("tools"), body.get("tool_choice"))
        stops = body.get("stop_sequences")
        if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
            raise bad_request("'stop_sequences' must be a list of strings", param="stop_sequences")

    def parallel_tool_calls(self, body: JSONObject) -> bool:
        """Messages says it in ``tool_choice.disable_parallel_tool_use``."""
        choice = body.get("tool_choice")
        return not (isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True)

    def estimate_view(self, body: JSONObject) -> JSONObject:
        """System text as a system message, blocks as Chat parts (an image as an image, not its base64)."""
        messages: list[JSONObject] = []
        system = body.get("system")
        if isinstance(system, str | list):
            messages.append({"role": "system", "content": _view_content(system)})
        raw = body.get("messages")
        for message in raw if isinstance(raw, list) else ():
            if isinstance(message, dict):
                messages.append({"role": message.get("role"), "content": _view_content(message.get("content"))})
        view: JSONObject = {"messages": messages, "max_tokens": body.get("max_tokens")}
        if (tools := body.get("tools")) is not None:
            view["tools"] = tools
        return view

    def commits(self, frames: bytes) -> bool:
        """Content deltas, a block that starts with content (a tool call, a redacted or non-empty block) and
        the message's end commit; ``message_start``, ``ping`` and empty block starts do not."""
        for event in events(frames):
            kind = event.get("type")
            if kind in _COMMITTING:
                return True
            if kind == "content_block_start" and _block_has_content(event.get("content_block")):
                return True
        return False

    def refused(self, frames: bytes) -> bool:
        return REFUSAL.search(frames) is not None

    def read_answer(self, body: bytes) -> tuple[JSONObject | None, bool]:
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedAnswer("the answer is not JSON") from None
        if not isinstance(message, dict) or message.get("type") != "message":
            raise MalformedAnswer("the answer is not an Anthropic message")
        if not isinstance(message.get("content"), list):
            raise MalformedAnswer("the answer's message has no content list")
        return openai_usage(message.get("usage")), message.get("stop_reason") == "refusal"

    def error_response(self, error: GatewayError) -> tuple[int, bytes]:
        status = error_status(error)
        return status, orjson.dumps({"type": "error", "error": error_object(error, status)})

    def error_frame(self, error: GatewayError) -> bytes:
        """Anthropic's in-band ``error`` event: the SDKs raise on it, whatever the stream said before."""
        return event_frame({"type": "error", "error": error_object(error, error_status(error))})


def error_status(error: GatewayError) -> int:
    """The status Anthropic's SDKs read ``error`` by: an overloaded upstream is their 529."""
    return OVERLOADED_STATUS if error.code == OVERLOADED_CODE else error.status


def error_object(error: GatewayError, status: int) -> JSONObject:
    """``{"type", "message", "details": {"error_code"}}``: Anthropic's type for the status, the gateway's code."""
    kind = ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    obj: JSONObject = {"type": kind, "message": error.message}
    if error.code is not None:
        obj["details"] = {"error_code": error.code}
    return obj


def event_frame(event: JSONObject) -> bytes:
    """One named SSE event, as Anthropic sends them: ``event: <type>`` then its JSON on one ``data:`` line."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def events(frames: bytes) -> Iterator[JSONObject]:
    """The JSON of each event in ``frames``; ``MalformedAnswer`` for data the SDKs could not parse."""
    for block in frames.split(b"\n\n"):
        data = b"\n".join(line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:"))
        if not data:
            continue
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise MalformedAnswer("a stream event is not JSON") from None
        if not isinstance(event, dict):
            raise MalformedAnswer("a stream event is not a JSON object")
        yield event


def _block_has_content(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    kind = block.get("type")
    if kind == "text":
        return bool(block.get("text"))
    if kind == "thinking":
        return bool(block.get("thinking"))
    return True  # tool calls, redacted thinking, server tool blocks: the block itself is the content


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_messages(messages: Any, max_messages: int) -> None:
    """A non-empty list of user and assistant turns whose content is a string or a list of typed blocks."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' is required and must be a non-empty array", param="messages")
    check_count(messages, "messages", max_messages, "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise bad_request(f"messages[{i}] must be an object whose role is user or assistant", param="messages")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(
            isinstance(block, dict) and isinstance(block.get("type"), str) for block in content
        ):
            raise bad_request(
                f"messages[{i}].content must be a string or a list of content blocks with a type", param="messages"
            )


def check_system(system: Any) -> None:
    """A string or a list of text blocks."""
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list) or not all(
        isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        for block in system
    ):
        raise bad_request("'system' must be a string or a list of text blocks", param="system")


def check_thinking(thinking: Any, max_tokens: int) -> None:
    """``enabled`` with a budget of at least 1024 tokens below ``max_tokens``, ``disabled`` or ``adaptive``."""
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in THINKING_TYPES:
        raise bad_request("'thinking.type' must be one of enabled, disabled, adaptive", param="thinking")
    if kind != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if not _positive_int(budget) or budget < MIN_THINKING_BUDGET:
        raise bad_request(
            f"'thinking.budget_tokens' must be an integer of at least {MIN_THINKING_BUDGET}", param="thinking"
        )
    if budget >= max_tokens:
        raise bad_request("'max_tokens' must be greater than 'thinking.budget_tokens'", param="max_tokens")


def check_tools(tools: Any, choice: Any) -> None:
    """Tools are named objects; ``tool_choice`` is one of Anthropic's four, ``tool`` naming one."""
    if tools is not None:
        if not isinstance(tools, list):
            raise bad_request("'tools' must be a list", param="tools")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
                raise bad_request(f"tools[{i}] must be an object with a non-empty name", param="tools")
            schema = tool.get("input_schema")
            if tool.get("type") in (None, "custom") and not isinstance(schema, dict):
                raise bad_request(f"tools[{i}].input_schema must be an object", param="tools")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in TOOL_CHOICE_TYPES:
        raise bad_request("'tool_choice.type' must be one of auto, any, tool, none", param="tool_choice")
    if kind == "tool" and not isinstance(choice.get("name"), str):
        raise bad_request("'tool_choice' of type tool needs the tool's name", param="tool_choice")
    if not isinstance(choice.get("disable_parallel_tool_use", False), bool):
        raise bad_request("'tool_choice.disable_parallel_tool_use' must be a boolean", param="tool_choice")


def _view_content(content: Any) -> Any:
    """A turn's content as Chat parts the estimates read: text as text, images as images, the rest as is."""
    if not isinstance(content, list):
        return content
    parts: list[Any] = []
    for block in content:
        if isinstance(block, dict):
            parts.extend(_view_block(block))
    return parts


def _view_block(block: JSONObject) -> list[Any]:
    kind = block.get("type")
    if kind == "text":
        return [{"type": "text", "text": block.get("text")}]
    if kind == "thinking":
        return [{"type": "text", "text": block.get("thinking")}]
    if kind == "image":
        return [{"type": "image_url"}]
    if kind == "tool_result":
        inner = block.get("content")
        return [{"type": "text", "text": inner}] if isinstance(inner, str) else _view_content(inner) or []
    return [block]


MESSAGES = MessagesProtocol()
