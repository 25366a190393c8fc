"""OpenAI chat request → Anthropic Messages request.

Anthropic is stricter than OpenAI about conversation shape (no system role, strictly alternating turns,
tool results first in the turn after the tool calls, a required ``max_tokens``), so this module rebuilds
the conversation rather than renaming fields. Anything it cannot express is refused with a 400 before a
call is made. Choices worth knowing:

* A conversation whose first non-system turn is the assistant's is refused: Anthropic requires a user
  turn first, and inventing one would put words in the user's mouth.
* ``temperature`` above 1 is refused rather than clamped (Anthropic's range is 0 to 1), so a client never
  gets a different sampling regime than it asked for.
* ``response_format: json_object`` becomes a forced tool call whose input is the answer (see
  ``json_answer``). ``json_schema`` maps to native ``output_config.format``; objects that do not
  declare ``additionalProperties`` are closed, as Anthropic requires.
* ``reasoning_effort`` becomes an extended-thinking budget; the thinking budget counts against
  ``max_tokens`` on Anthropic as reasoning counts against ``max_completion_tokens`` on OpenAI. Signed
  thinking blocks a client sends back are replayed (see ``thinking``); a tool-use turn sent back
  without them is continued without thinking, which Anthropic would otherwise refuse.
* ``seed`` is refused: Anthropic has no seed, and a client that sends one expects repeatable answers.
"""

from __future__ import annotations

from typing import Any

from modelyard_proxy.base.errors import bad_request, unsupported_parameter
from modelyard_proxy.providers import params
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.json_answer import force_json_answer
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.thinking import replay_satisfied, replayed_blocks

PROVIDER = "anthropic"
#: Output tokens asked for when the client sets no limit (``max_tokens`` is required by Anthropic).
DEFAULT_MAX_TOKENS = 4096
#: The smallest thinking budget Anthropic accepts.
MIN_THINKING_BUDGET = 1024
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
PDF_MEDIA_TYPE = "application/pdf"
#: OpenAI parameters with no Anthropic equivalent, mapped to the one value that is harmless to drop.
REFUSED: dict[str, Any] = {
    "n": 1,
    "logprobs": False,
    "top_logprobs": 0,
    "logit_bias": {},
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "seed": None,
    "audio": None,
    "modalities": ["text"],
    "prediction": None,
    "web_search_options": None,
    "verbosity": "medium",
    "functions": None,
    "function_call": None,
}
TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any"}
SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
SCHEMA_LISTS = frozenset({"items", "prefixItems", "anyOf", "allOf", "oneOf", "not"})


def build_request(body: JSONObject, model: str, stream: bool) -> JSONObject:
    """The Anthropic ``/v1/messages`` body for an OpenAI chat completion request."""
    params.refuse_unsupported(body, PROVIDER, REFUSED)
    system, messages = conversation(body.get("messages"))
    max_tokens, thinking = token_budget(body, replay_satisfied(messages))
    request: JSONObject = {"model": model, "max_tokens": max_tokens, "messages": messages}
    kind, schema = params.response_format(body)
    if kind == "json_schema":
        request["output_config"] = {"format": {"type": "json_schema", "schema": closed_schema(schema)}}
    if system:
        request["system"] = system
    if thinking is not None:
        request["thinking"] = thinking
    if (stop := params.stop_sequences(body)) is not None:
        request["stop_sequences"] = stop
    for name in ("temperature", "top_p"):
        if (value := params.number_in_range(body, name, 0, 1, PROVIDER)) is not None:
            request[name] = value
    tools_and_choice(body, request)
    if kind == "json_object":
        force_json_answer(request, params.reasoning_effort(body))
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str):
        request["metadata"] = {"user_id": user}
    if stream:
        request["stream"] = True
    return request


def conversation(raw: Any) -> tuple[list[JSONObject], list[JSONObject]]:
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
                system.append(text_block(text))
        elif role == "user":
            append_turn(messages, "user", user_blocks(message.get("content"), where))
        elif role == "assistant":
            append_turn(messages, "assistant", assistant_blocks(message, where))
        elif role == "tool":
            append_tool_result(messages, tool_result(message, where))
        else:
            raise bad_request(f"{where}.role {role!r} is not supported by the {PROVIDER} provider", param="messages")
    if not messages:
        raise bad_request("'messages' needs at least one user message", param="messages")
    if messages[0]["role"] != "user":
        raise bad_request(
            f"the {PROVIDER} provider requires the conversation to start with a user message", param="messages"
        )
    return system, messages


def text_block(text: str) -> JSONObject:
    return {"type": "text", "text": text}


def append_turn(messages: list[JSONObject], role: str, blocks: list[JSONObject]) -> None:
    """Add a turn, merging into the previous one of the same role; turns without content are skipped."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def append_tool_result(messages: list[JSONObject], block: JSONObject) -> None:
    """Put a tool result in the current user turn after the other results but before any text."""
    if not messages or messages[-1]["role"] != "user":
        messages.append({"role": "user", "content": [block]})
        return
    content: list[JSONObject] = messages[-1]["content"]
    at = 0
    while at < len(content) and content[at]["type"] == "tool_result":
        at += 1
    content.insert(at, block)


def user_blocks(content: Any, where: str) -> list[JSONObject]:
    if isinstance(content, str):
        return [text_block(content)] if content else []
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of parts", param="messages")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if text := part.get("text"):
                blocks.append(text_block(str(text)))
        elif kind == "image_url":
            image = part.get("image_url")
            blocks.append(media_block(image.get("url") if isinstance(image, dict) else image, where))
        elif kind == "file":
            file = part.get("file")
            data = file.get("file_data") if isinstance(file, dict) else None
            if not isinstance(data, str) or not data.startswith("data:"):
                raise unsupported_parameter(
                    "messages", PROVIDER, f"{where}: files must be sent inline as file_data data URLs"
                )
            blocks.append(media_block(data, where))
        else:
            raise unsupported_parameter("messages", PROVIDER, f"{where} has a {kind!r} part")
    return blocks


def media_block(url: Any, where: str) -> JSONObject:
    """An image or PDF block: ``data:`` URLs inline as base64, web URLs by reference."""
    if not isinstance(url, str) or not url:
        raise bad_request(f"{where}: image_url.url must be a non-empty string", param="messages")
    inline = params.parse_data_url(url)
    if inline is None:
        if not url.startswith(("https://", "http://")):
            raise bad_request(f"{where}: image URLs must be http(s) or data: URLs", param="messages")
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = inline
    source = {"type": "base64", "media_type": media_type, "data": data}
    if media_type in IMAGE_MEDIA_TYPES:
        return {"type": "image", "source": source}
    if media_type == PDF_MEDIA_TYPE:
        return {"type": "document", "source": source}
    raise unsupported_parameter("messages", PROVIDER, f"{where}: media type {media_type!r} cannot be sent")


def assistant_blocks(message: JSONObject, where: str) -> list[JSONObject]:
    """Signed thinking first (where Anthropic requires it), then text, then tool calls."""
    blocks = replayed_blocks(message, where)
    if text := params.text_content(message.get("content"), where):
        blocks.append(text_block(text))
    blocks.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        for call in params.assistant_tool_calls(message, where)
    )
    return blocks


def tool_result(message: JSONObject, where: str) -> JSONObject:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise bad_request(f"{where}.tool_call_id must be a string", param="messages")
    block: JSONObject = {"type": "tool_result", "tool_use_id": call_id}
    if text := params.text_content(message.get("content"), where):
        block["content"] = text
    return block


def token_budget(body: JSONObject, thinking_allowed: bool = True) -> tuple[int, JSONObject | None]:
    """``(max_tokens, thinking)``: the thinking budget always fits below ``max_tokens``."""
    requested = params.max_output_tokens(body)
    effort = params.reasoning_effort(body)
    if effort is None or effort == "none" or not thinking_allowed:
        return requested or DEFAULT_MAX_TOKENS, None
    budget = params.REASONING_BUDGETS[effort]
    if requested is None:
        return budget + DEFAULT_MAX_TOKENS, {"type": "enabled", "budget_tokens": budget}
    budget = min(budget, requested - 1)
    if budget < MIN_THINKING_BUDGET:
        name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        raise bad_request(
            f"{name!r} must exceed {MIN_THINKING_BUDGET} for 'reasoning_effort' on the {PROVIDER} provider,"
            f" whose smallest thinking budget is {MIN_THINKING_BUDGET} tokens",
            param=name,
        )
    return requested, {"type": "enabled", "budget_tokens": budget}


def tools_and_choice(body: JSONObject, request: JSONObject) -> None:
    """Set ``tools`` and ``tool_choice`` (with ``parallel_tool_calls=false`` folded into the latter)."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools:
        if choice not in (None, "auto", "none"):
            raise bad_request("'tool_choice' requires 'tools'", param="tool_choice")
        return
    if not isinstance(tools, list):
        raise bad_request("'tools' must be a list", param="tools")
    request["tools"] = [tool_definition(tool, i) for i, tool in enumerate(tools)]
    native = tool_choice(choice)
    if body.get("parallel_tool_calls") is False:
        native = native or {"type": "auto"}
        if native["type"] != "none":
            native["disable_parallel_tool_use"] = True
    if native is not None:
        request["tool_choice"] = native


def tool_definition(tool: Any, i: int) -> JSONObject:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict):
        raise unsupported_parameter("tools", PROVIDER, f"tools[{i}]: only function tools are supported")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request(f"tools[{i}].function.name must be a non-empty string", param="tools")
    definition: JSONObject = {
        "name": name,
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if description := function.get("description"):
        definition["description"] = description
    if function.get("strict") is True:
        definition["strict"] = True
    return definition


def tool_choice(choice: Any) -> JSONObject | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return {"type": TOOL_CHOICES[choice]}
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    raise unsupported_parameter("tool_choice", PROVIDER, "use auto, none, required or a named function")


def closed_schema(schema: Any) -> Any:
    """A copy of a JSON schema whose objects forbid extra properties unless they say otherwise."""
    if isinstance(schema, list):
        return [closed_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: JSONObject = {}
    for key, value in schema.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: closed_schema(sub) for name, sub in value.items()}
        elif key in SCHEMA_LISTS:
            out[key] = closed_schema(value)
        else:
            out[key] = value
    kind = out.get("type")
    if (kind == "object" or (isinstance(kind, list) and "object" in kind)) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out
