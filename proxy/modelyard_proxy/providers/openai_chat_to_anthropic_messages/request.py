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
from modelyard_proxy.providers import params, turns
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
    """``(system blocks, messages)`` in Anthropic's blocks (see :mod:`~modelyard_proxy.providers.turns`)."""
    return turns.conversation(raw, SHAPE)


def text_block(text: str) -> JSONObject:
    return {"type": "text", "text": text}


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


def tool_result(call_id: str, text: str) -> JSONObject:
    block: JSONObject = {"type": "tool_result", "tool_use_id": call_id}
    if text:
        block["content"] = text
    return block


SHAPE = turns.TurnShape(
    provider=PROVIDER,
    text=text_block,
    media=media_block,
    replayed=replayed_blocks,
    tool_use=lambda call: {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments},
    tool_result=tool_result,
    is_tool_result=lambda block: block["type"] == "tool_result",
)


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
    name, function = params.function_tool(tool, i, PROVIDER)
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
    if (name := params.chosen_function(choice)) is not None:
        return {"type": "tool", "name": name}
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
