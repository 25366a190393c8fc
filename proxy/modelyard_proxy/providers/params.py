"""OpenAI request fields read the same way by every translating adapter.

Each helper validates what it reads and raises a 400 naming the offending field, so translators never
forward a half-understood request.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

import orjson

from modelyard_proxy.base.errors import bad_request, unsupported_parameter
from modelyard_proxy.providers.base import JSONObject

#: Thinking budgets (tokens) for ``reasoning_effort`` on providers that take a budget rather than a level.
REASONING_BUDGETS: dict[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 24576,
    "max": 32000,
}
REASONING_EFFORTS = frozenset({"none", *REASONING_BUDGETS})


#: OpenAI's output-token limits: the current name first, then the deprecated one.
TOKEN_LIMITS = ("max_completion_tokens", "max_tokens")


def check_token_limits(body: JSONObject) -> None:
    """Refuse a token limit that is not a positive integer, before any provider sees it.

    Called for every chat request whatever its provider, so a negative limit gets the same 400 everywhere
    rather than an upstream's own refusal (or none: OpenAI-family targets would forward it).
    """
    for name in TOKEN_LIMITS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise bad_request(f"{name!r} must be a positive integer", param=name)


def max_output_tokens(body: JSONObject) -> int | None:
    """``max_completion_tokens`` first, else the deprecated ``max_tokens``; each a positive integer."""
    check_token_limits(body)
    return next((body[name] for name in TOKEN_LIMITS if body.get(name) is not None), None)


def stop_sequences(body: JSONObject) -> list[str] | None:
    """``stop`` as a list (OpenAI accepts a string or up to four strings)."""
    stop = body.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise bad_request("'stop' must be a string or a list of strings", param="stop")


def reasoning_effort(body: JSONObject) -> str | None:
    """The requested ``reasoning_effort``, validated against the values OpenAI defines."""
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in REASONING_EFFORTS:
        allowed = ", ".join(sorted(REASONING_EFFORTS))
        raise bad_request(f"'reasoning_effort' must be one of {allowed}", param="reasoning_effort")
    return str(effort)


def number_in_range(body: JSONObject, name: str, low: float, high: float, provider: str) -> float | None:
    """A numeric sampling parameter, refused when the provider's range cannot express it."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad_request(f"{name!r} must be a number", param=name)
    if not low <= value <= high:
        raise unsupported_parameter(name, provider, f"the value must be between {low:g} and {high:g}")
    return float(value)


def refuse_unsupported(body: JSONObject, provider: str, checks: dict[str, Any]) -> None:
    """Refuse each parameter that is set to something other than its harmless value.

    ``checks`` maps a parameter to the one value the provider can honour (``None`` means "must be
    absent"); e.g. ``{"n": 1, "logprobs": False}``.
    """
    for name, harmless in checks.items():
        value = body.get(name)
        if value is not None and value != harmless:
            raise unsupported_parameter(name, provider)


def text_content(content: Any, where: str) -> str:
    """A message's text, joining text parts; for roles that accept text only (system, tool)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad_request(f"{where} may only contain text parts", param="messages")
            texts.append(part["text"])
        return "\n".join(texts)
    if content is None:
        return ""
    raise bad_request(f"{where}.content must be a string or a list of parts", param="messages")


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``(media_type, base64_data)`` for a ``data:`` URL, None for any other URL; 400 if malformed."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or not media_type:
        raise bad_request("image data URLs must look like data:<media-type>;base64,<data>", param="messages")
    try:
        base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise bad_request("image data URL is not valid base64", param="messages") from exc
    return media_type, data


def tool_call_arguments(arguments: Any, where: str) -> JSONObject:
    """A tool call's ``arguments`` JSON string as an object (what Anthropic and Gemini expect)."""
    if arguments in (None, ""):
        return {}
    if not isinstance(arguments, str):
        raise bad_request(f"{where}.function.arguments must be a JSON string", param="messages")
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"{where}.function.arguments is not valid JSON", param="messages") from exc
    if not isinstance(parsed, dict):
        raise bad_request(f"{where}.function.arguments must encode a JSON object", param="messages")
    return parsed


@dataclasses.dataclass(frozen=True, slots=True)
class ToolCall:
    """One validated ``tool_calls`` entry of an assistant message; ``raw`` keeps provider-specific extras."""

    id: str
    name: str
    arguments: JSONObject
    raw: JSONObject


def assistant_tool_calls(message: JSONObject, where: str) -> list[ToolCall]:
    """An assistant message's tool calls, each with an id, a function name and object arguments; else 400."""
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise bad_request(f"{where}.tool_calls must be a list", param="messages")
    parsed = []
    for index, call in enumerate(calls):
        call_where = f"{where}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_request(f"{call_where} must be a function call with a name", param="messages")
        if not isinstance(call.get("id"), str):
            raise bad_request(f"{call_where}.id must be a string", param="messages")
        arguments = tool_call_arguments(function.get("arguments"), call_where)
        parsed.append(ToolCall(call["id"], function["name"], arguments, call))
    return parsed


def function_tool(tool: Any, i: int, provider: str) -> tuple[str, JSONObject]:
    """``tools[i]``'s name and ``function``: a function tool with a non-empty name, else 400."""
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict):
        raise unsupported_parameter("tools", provider, f"tools[{i}]: only function tools are supported")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request(f"tools[{i}].function.name must be a non-empty string", param="tools")
    return name, function


def chosen_function(choice: Any) -> str | None:
    """The function a ``tool_choice`` object names (``{"type": "function", "function": {"name"}}``), if any."""
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def response_format(body: JSONObject) -> tuple[str, JSONObject | None]:
    """``("text"|"json_object"|"json_schema", schema)`` from ``response_format``, validated."""
    fmt = body.get("response_format")
    if fmt is None:
        return "text", None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("text", "json_object"):
        return str(kind), None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise bad_request("response_format.json_schema needs a name", param="response_format")
        schema = spec.get("schema", {"type": "object"})
        if not isinstance(schema, dict):
            raise bad_request("response_format.json_schema.schema must be an object", param="response_format")
        return "json_schema", schema
    raise bad_request("response_format.type must be text, json_object or json_schema", param="response_format")
