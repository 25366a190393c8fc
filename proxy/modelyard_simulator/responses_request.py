"""Reading an OpenAI Responses request (``POST /v1/responses``): validation in OpenAI's words, and the prompt.

The input is a string or a list of items (messages, ``function_call`` / ``function_call_output`` pairs,
``reasoning`` items replayed by stateless clients, references to stored items). Function tools are flat
(``{"type": "function", "name": ..., "parameters": ...}``); ``tool_choice`` may force a call, which the
simulated model then makes with arguments sampled from the tool's schema, as it does for Anthropic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from modelyard_simulator.answer import Prompt, force_call
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import JsonObject
from modelyard_simulator.errors import Failure
from modelyard_simulator.openai_dialect import content_text, request_model
from modelyard_simulator.openai_types import RESPONSES_FIELDS, check_types
from modelyard_simulator.tokens import count_prompt_tokens

#: OpenAI refuses smaller output limits before generating anything.
MIN_OUTPUT_TOKENS = 16
ROLES = ("assistant", "system", "developer", "user")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
ITEM_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "item_reference",
    "custom_tool_call",
    "custom_tool_call_output",
)
PART_TYPES = ("input_text", "input_image", "input_file", "input_audio", "output_text", "refusal")
FORMAT_TYPES = ("text", "json_object", "json_schema")


def invalid(param: str, message: str, code: str = "invalid_value") -> Failure:
    return Failure(400, message, param=param, code=code)


def missing(param: str) -> Failure:
    return invalid(param, f"Missing required parameter: '{param}'.", "missing_required_parameter")


def _one_of(param: str, value: object, allowed: tuple[str, ...]) -> Failure:
    names = ", ".join(f"'{a}'" for a in allowed[:-1]) + f", and '{allowed[-1]}'"
    return invalid(param, f"Invalid value: '{value}'. Supported values are: {names}.")


def input_items(body: JsonObject) -> list[JsonObject]:
    """The input as items; a string is one user message. Malformed items are refused."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if raw is None:
        return []
    items: list[JsonObject] = []
    for index, item in enumerate(raw):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise invalid(where, f"Invalid type for '{where}': expected an object.", "invalid_type")
        kind = item.get("type", "message" if "role" in item else None)
        if kind not in ITEM_TYPES:
            raise _one_of(f"{where}.type", kind, ITEM_TYPES)
        if kind == "message":
            _check_message(item, where)
        items.append({**item, "type": kind})
    return items


def _check_message(item: JsonObject, where: str) -> None:
    if item.get("role") not in ROLES:
        raise _one_of(f"{where}.role", item.get("role"), ROLES)
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise missing(f"{where}.content")
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in PART_TYPES:
            raise _one_of(f"{where}.content[{index}].type", kind, PART_TYPES)
        if kind == "input_image" and not (part.get("image_url") or part.get("file_id")):
            raise missing(f"{where}.content[{index}].image_url")


def item_text(item: JsonObject) -> str:
    """Readable text of a message (its text parts) or of a tool's output."""
    value = (
        item.get("output")
        if item["type"] in ("function_call_output", "custom_tool_call_output")
        else item.get("content")
    )
    return content_text(value)


def _last_user_text(items: list[JsonObject]) -> str:
    users = [i for i in items if i["type"] == "message" and i.get("role") == "user"]
    return item_text(users[-1]) if users else ""


def responses_target(body: JsonObject, request: web.Request) -> tuple[str, str]:
    """The model, and the text that may hold a ``[simulate ...]`` directive: the last user message."""
    raw = body.get("input")
    if isinstance(raw, str):
        return request_model(body, request), raw
    items = [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []
    users = [i for i in items if i.get("role") == "user" and i.get("type", "message") == "message"]
    return request_model(body, request), content_text(users[-1].get("content")) if users else ""


def function_tools(body: JsonObject) -> list[JsonObject]:
    """The declared function tools; other tool types (web search, ...) are accepted and never called."""
    tools: list[JsonObject] = []
    for index, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or "type" not in tool:
            raise missing(f"tools[{index}].type")
        if tool["type"] != "function":
            continue
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise missing(f"tools[{index}].name")
        tools.append(tool)
    return tools


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """Which declared functions the model may call, and whether it must call one (``forced``, by name)."""

    names: tuple[str, ...]
    forced: str | None = None


def tool_choice(body: JsonObject, tools: list[JsonObject]) -> ToolChoice:
    names = tuple(str(t["name"]) for t in tools)
    choice: Any = body.get("tool_choice", "auto")
    if choice == "none":
        return ToolChoice(())
    if choice in ("auto", "required"):
        return ToolChoice(names, names[0] if choice == "required" and names else None)
    if isinstance(choice, str):
        raise _one_of("tool_choice", choice, ("none", "auto", "required"))
    if choice.get("type") == "allowed_tools":
        allowed = tuple(str(t.get("name")) for t in choice.get("tools") or [] if isinstance(t, dict))
        names = tuple(n for n in names if n in allowed)
        return ToolChoice(names, names[0] if choice.get("mode") == "required" and names else None)
    if choice.get("type") == "function":
        if choice.get("name") not in names:
            raise invalid("tool_choice", f"Tool choice '{choice.get('name')}' not found in 'tools' parameter.")
        return ToolChoice(names, str(choice["name"]))
    return ToolChoice(names)  # hosted tools (web search, ...): the simulated model answers in text


def text_format(body: JsonObject) -> JsonObject:
    """``text.format``, checked; ``{"type": "text"}`` when absent."""
    text = body.get("text") or {}
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is None:
        return {"type": "text"}
    if not isinstance(fmt, dict) or fmt.get("type") not in FORMAT_TYPES:
        raise _one_of("text.format.type", fmt.get("type") if isinstance(fmt, dict) else fmt, FORMAT_TYPES)
    if fmt["type"] == "json_schema":
        for name in ("name", "schema"):
            if name not in fmt:
                raise missing(f"text.format.{name}")
    return fmt


def reasoning_effort(body: JsonObject) -> str | None:
    reasoning = body.get("reasoning") or {}
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    if effort is not None and effort not in EFFORTS:
        raise _one_of("reasoning.effort", effort, EFFORTS)
    return effort if isinstance(effort, str) else None


def max_output_tokens(body: JsonObject) -> int | None:
    limit = body.get("max_output_tokens")
    if isinstance(limit, int) and limit < MIN_OUTPUT_TOKENS:
        raise invalid(
            "max_output_tokens",
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS},"
            f" but got {limit} instead.",
            "integer_below_min_value",
        )
    return limit if isinstance(limit, int) else None


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """A checked request: the prompt to answer, and the choices the Response object echoes."""

    model: str
    prompt: Prompt
    behaviour: Behaviour
    items: list[JsonObject]
    tools: list[JsonObject]
    text_format: JsonObject
    effort: str | None


def read_request(body: JsonObject, request: web.Request, behaviour: Behaviour, carried_tokens: int) -> ResponsesRequest:
    """Validate ``body`` as OpenAI does and reduce it to a prompt; ``carried_tokens`` come from a previous response."""
    model = request_model(body, request)
    if not model:
        raise missing("model")
    check_types(body, RESPONSES_FIELDS)
    items = input_items(body)
    if not items and body.get("previous_response_id") is None:
        raise missing("input")
    tools = function_tools(body)
    choice = tool_choice(body, tools)
    fmt = text_format(body)
    effort = reasoning_effort(body)
    last = items[-1] if items else {}
    after_tool = last.get("type") in ("function_call_output", "custom_tool_call_output")
    user_text = item_text(last) if after_tool else _last_user_text(items)
    schema = fmt.get("schema") if fmt["type"] == "json_schema" else None
    prompt = Prompt(
        model=model,
        user_text=user_text,
        prompt_tokens=carried_tokens + count_prompt_tokens([body.get("instructions"), items, tools]),
        tools=choice.names,
        after_tool_result=after_tool,
        json_mode=fmt["type"] != "text",
        json_schema=schema if isinstance(schema, dict) else None,
        max_tokens=max_output_tokens(body),
        thinking=effort not in (None, "none"),
    )
    if choice.forced is not None and not after_tool:
        parameters = next(t.get("parameters") for t in tools if t["name"] == choice.forced)
        behaviour = force_call(behaviour, choice.forced, parameters, user_text)
    return ResponsesRequest(model, prompt, behaviour, items, tools, fmt, effort)
