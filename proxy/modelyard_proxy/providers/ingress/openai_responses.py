"""OpenAI Responses (``POST /v1/responses``) as the relay sees it: request checks, commit point, usage, errors.

The gateway keeps conversations itself (``previous_response_id``, ``item_reference``, ``store``; see
:mod:`~modelyard_proxy.relay.conversation`), so they survive a fallback to another provider. OpenAI's
``conversation`` objects and detached ``background`` runs are refused with a 400 that says what to send
instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.providers import params
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.ingress.openai_chat import check_count
from modelyard_proxy.providers.ingress.protocol import IngressProtocol, required_model
from modelyard_proxy.providers.schemas import Schema

#: Item types a request's ``input`` may hold that every provider can be sent; others go to native targets only.
ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "reasoning"})
MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})
TEXT_FORMATS = frozenset({"text", "json_object", "json_schema"})
STATELESS = (
    "this gateway keeps conversations by 'previous_response_id' only: send the earlier turns that way, or the "
    "whole conversation in 'input' with 'store': false"
)
#: Stream events that carry content: the first of them commits the answer to the client.
_CONTENT_EVENTS = frozenset(
    {
        b"response.output_text.delta",
        b"response.refusal.delta",
        b"response.function_call_arguments.delta",
        b"response.reasoning_text.delta",
        b"response.reasoning_summary_text.delta",
    }
)
#: Events that end the answer: reaching one commits whatever came before.
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def stateful(body: JSONObject) -> GatewayError | None:
    """The 400 for a request that needs state the gateway does not keep, else None.

    ``previous_response_id``, ``store`` and ``item_reference`` inputs are the gateway's to serve (it keeps
    conversations: :mod:`~modelyard_proxy.relay.conversation`); OpenAI's ``conversation`` objects and
    detached ``background`` runs are not."""
    if body.get("conversation") is not None:
        return _unsupported("conversation", f"'conversation' refers to a stored conversation object; {STATELESS}")
    if body.get("background") is True:
        return _unsupported("background", f"'background': true needs a response kept to be polled; {STATELESS}")
    return None


def _unsupported(param: str, message: str) -> GatewayError:
    return GatewayError(400, message, param=param, code="unsupported_parameter")


def chat_usage(usage: Any) -> JSONObject | None:
    """A Responses ``usage`` object in Chat Completions' shape (None when absent or unreadable)."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    converted: JSONObject = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.get("total_tokens", prompt + completion),
    }
    for source, target, key in (
        ("input_tokens_details", "prompt_tokens_details", "cached_tokens"),
        ("output_tokens_details", "completion_tokens_details", "reasoning_tokens"),
    ):
        details = usage.get(source)
        if isinstance(details, dict) and isinstance(details.get(key), int):
            converted[target] = {key: details[key]}
    return converted


def refused_response(response: Any) -> bool:
    """Whether a response object ended on the provider's content filter or holds a refusal."""
    if not isinstance(response, dict):
        return False
    details = response.get("incomplete_details")
    if isinstance(details, dict) and details.get("reason") == "content_filter":
        return True
    output = response.get("output")
    for item in output if isinstance(output, list) else ():
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "refusal":
                return True
    return False


def events(frames: bytes) -> Iterator[tuple[str, JSONObject]]:
    """Each SSE event of ``frames`` as (type, payload); the type is the payload's own ``type``."""
    for block in frames.split(b"\n\n"):
        data = b"".join(line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:"))
        if not data:
            continue
        payload = orjson.loads(data)
        if not isinstance(payload, dict):
            msg = "a Responses stream event must be a JSON object"
            raise ValueError(msg)
        kind = payload.get("type")
        yield (kind if isinstance(kind, str) else ""), payload


class ResponsesProtocol(IngressProtocol):
    """``POST /v1/responses`` (see the module docstring)."""

    schema = Schema.OPENAI_RESPONSES
    path = "/v1/responses"
    keeps_conversations = True
    id_prefix = "resp_"
    prompt_field = "input"

    def check_request(self, body: JSONObject, max_messages: int) -> None:
        if (error := stateful(body)) is not None:
            raise error
        required_model(body)
        _check_input(body.get("input"), max_messages)
        if not isinstance(body.get("instructions"), str | None):
            raise bad_request("'instructions' must be a string", param="instructions")
        for name in ("stream", "store", "parallel_tool_calls"):
            if not isinstance(body.get(name), bool | None):
                raise bad_request(f"{name!r} must be a boolean", param=name)
        limit = body.get("max_output_tokens")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise bad_request("'max_output_tokens' must be a positive integer", param="max_output_tokens")
        _check_tools(body.get("tools"))
        _check_text(body.get("text"))
        _check_reasoning(body.get("reasoning"))
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise bad_request("'metadata' must be an object", param="metadata")

    def estimate_view(self, body: JSONObject) -> JSONObject:
        messages: list[JSONObject] = []
        if isinstance(instructions := body.get("instructions"), str):
            messages.append({"role": "system", "content": instructions})
        value = body.get("input")
        if isinstance(value, str):
            messages.append({"role": "user", "content": value})
        for item in value if isinstance(value, list) else ():
            if isinstance(item, dict):
                messages.append(_estimate_message(item))
        view: JSONObject = {"messages": messages}
        if isinstance(tools := body.get("tools"), list):
            view["tools"] = tools
        if isinstance(limit := body.get("max_output_tokens"), int):
            view["max_tokens"] = limit
        return view

    def commits(self, frames: bytes) -> bool:
        for kind, payload in events(frames):
            if kind in TERMINAL_EVENTS or kind.encode() in _CONTENT_EVENTS:
                return True
            item = payload.get("item")
            if kind == "response.output_item.added" and isinstance(item, dict) and item.get("type") == "function_call":
                return True
        return False

    def refused(self, frames: bytes) -> bool:
        for kind, payload in events(frames):
            if kind in ("response.refusal.delta", "response.refusal.done"):
                return True
            if kind in TERMINAL_EVENTS and refused_response(payload.get("response")):
                return True
        return False

    def read_answer(self, body: bytes) -> tuple[JSONObject | None, bool]:
        answer = orjson.loads(body)
        if (
            not isinstance(answer, dict)
            or answer.get("object") != "response"
            or not isinstance(answer.get("output"), list)
        ):
            msg = "not a whole Responses answer"
            raise ValueError(msg)
        return chat_usage(answer.get("usage")), refused_response(answer)

    def error_response(self, error: GatewayError) -> tuple[int, bytes]:
        return error.status, error.body()

    def error_frame(self, error: GatewayError) -> bytes:
        """OpenAI's ``error`` event: its documented flat fields beside the nested ``error`` object the API
        sends, which makes the openai SDKs raise ``APIError`` mid-iteration."""
        payload = error.payload()
        event = {
            "type": "error",
            "sequence_number": 0,
            "code": error.code,
            "message": error.message,
            "param": error.param,
            **payload,
        }
        return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"


def _check_input(value: Any, max_messages: int) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not value:
        raise bad_request("'input' is required and must be a string or a non-empty array of items", param="input")
    check_count(value, "input", max_messages)
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise bad_request(f"{where} must be an object", param="input")
        kind = item_type(item)
        if kind == "message":
            _check_message(item, where)
        elif kind in ("function_call", "function_call_output"):
            if not isinstance(item.get("call_id"), str):
                raise bad_request(f"{where}.call_id must be a string", param="input")
            if kind == "function_call" and not isinstance(item.get("name"), str):
                raise bad_request(f"{where}.name must be a string", param="input")
        elif not isinstance(kind, str):
            raise bad_request(f"{where}.type must be a string", param="input")


def item_type(item: JSONObject) -> Any:
    """An input item's type: a message may leave it out (``{"role", "content"}``)."""
    return item.get("type", "message" if "role" in item else None)


def _check_message(item: JSONObject, where: str) -> None:
    if item.get("role") not in MESSAGE_ROLES:
        raise bad_request(f"{where}.role must be one of {', '.join(sorted(MESSAGE_ROLES))}", param="input")
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or an array of content parts", param="input")
    for number, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad_request(f"{where}.content[{number}] must be an object with a 'type'", param="input")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array", param="tools")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise bad_request(f"tools[{index}] must be an object with a 'type'", param="tools")
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            raise bad_request(f"tools[{index}].name must be a string", param="tools")


def _check_text(text: Any) -> None:
    if text is None:
        return
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(text, dict) or (fmt is not None and not isinstance(fmt, dict)):
        raise bad_request("'text' must be an object with an optional 'format' object", param="text")
    if fmt is None:
        return
    if fmt.get("type") not in TEXT_FORMATS:
        raise bad_request("text.format.type must be text, json_object or json_schema", param="text.format")
    if fmt["type"] == "json_schema" and (
        not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict)
    ):
        raise bad_request("text.format of type json_schema needs a 'name' and a 'schema' object", param="text.format")


def _check_reasoning(reasoning: Any) -> None:
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise bad_request("'reasoning' must be an object", param="reasoning")
    effort = reasoning.get("effort")
    if effort is not None and effort not in params.REASONING_EFFORTS:
        allowed = ", ".join(sorted(params.REASONING_EFFORTS))
        raise bad_request(f"reasoning.effort must be one of {allowed}", param="reasoning.effort")


def _estimate_message(item: JSONObject) -> JSONObject:
    """One input item as a chat message, for estimates only: text parts kept, images marked, the rest as JSON."""
    if item_type(item) != "message":
        return {"role": "user", "content": orjson.dumps(item).decode()}
    content = item.get("content")
    if isinstance(content, list):
        content = [_estimate_part(part) for part in content if isinstance(part, dict)]
    return {"role": item.get("role"), "content": content}


def _estimate_part(part: JSONObject) -> JSONObject:
    if part.get("type") == "input_image":
        return {"type": "image_url"}
    if isinstance(text := part.get("text"), str):
        return {"type": "text", "text": text}
    return part


RESPONSES = ResponsesProtocol()
