"""OpenAI chat requests as Gemini ``generateContent`` bodies: tools, tool choice and generation settings.

Every OpenAI parameter is either translated here or refused with a 400 naming it; the messages themselves
are translated by ``messages``. Gemini has no switch for ``parallel_tool_calls: false``: a named
``tool_choice`` already allows that one function only, and the answer keeps only its first call
(``response``), which is what the client asked to get.
"""

from __future__ import annotations

from typing import Any

from modelyard_proxy.base.errors import bad_request, unsupported_parameter
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.openai_chat_to_gemini.messages import conversation
from modelyard_proxy.providers.params import (
    REASONING_BUDGETS,
    max_output_tokens,
    number_in_range,
    reasoning_effort,
    refuse_unsupported,
    response_format,
    stop_sequences,
)

PROVIDER = "gemini"
TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
#: Parameters mapped to the only value Gemini can honour; anything else is refused.
REFUSED: dict[str, Any] = {
    "logit_bias": {},
    "audio": None,
    "modalities": ["text"],
    "functions": None,
    "function_call": None,
    "web_search_options": None,
    "verbosity": "medium",
}


def chat_body(body: JSONObject, model: str, stream: bool) -> JSONObject:
    """The ``generateContent`` body for an OpenAI chat request."""
    refuse_unsupported(body, PROVIDER, REFUSED)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list", param="messages")
    system, contents = conversation(messages, model)
    out: JSONObject = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = _tools(body.get("tools"))
    if tools is not None:
        out["tools"] = tools
    if not isinstance(body.get("parallel_tool_calls"), bool | None):
        raise bad_request("'parallel_tool_calls' must be a boolean", param="parallel_tool_calls")
    tool_config = _tool_config(body.get("tool_choice"))
    if tool_config is not None:
        out["toolConfig"] = tool_config
    config = _generation_config(body, stream)
    if config:
        out["generationConfig"] = config
    return out


def _tools(tools: Any) -> list[JSONObject] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be a list", param="tools")
    declarations = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise unsupported_parameter("tools", PROVIDER, "only function tools with a name can be declared")
        declaration: JSONObject = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters") is not None:
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else None


def _tool_config(choice: Any) -> JSONObject | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in TOOL_MODES:
        return {"functionCallingConfig": {"mode": TOOL_MODES[choice]}}
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [function["name"]]}}
    raise unsupported_parameter("tool_choice", PROVIDER, "use auto, none, required or a named function")


def _generation_config(body: JSONObject, stream: bool) -> JSONObject:
    values = {
        "maxOutputTokens": max_output_tokens(body),
        "temperature": number_in_range(body, "temperature", 0, 2, PROVIDER),
        "topP": number_in_range(body, "top_p", 0, 1, PROVIDER),
        "topK": _integer(body, "top_k", low=1),  # not OpenAI's, but a common extension Gemini honours
        "presencePenalty": number_in_range(body, "presence_penalty", -2, 2, PROVIDER),
        "frequencyPenalty": number_in_range(body, "frequency_penalty", -2, 2, PROVIDER),
        "stopSequences": stop_sequences(body) or None,
        "seed": _integer(body, "seed"),
        "candidateCount": _choices(body, stream),
    }
    config: JSONObject = {name: value for name, value in values.items() if value is not None}
    kind, schema = response_format(body)
    if kind != "text":
        config["responseMimeType"] = "application/json"
    if schema is not None:
        config["responseJsonSchema"] = schema
    config.update(_logprobs(body, stream))
    effort = reasoning_effort(body)
    if effort == "none":
        config["thinkingConfig"] = {"thinkingBudget": 0}
    elif effort is not None:
        config["thinkingConfig"] = {"thinkingBudget": REASONING_BUDGETS[effort], "includeThoughts": True}
    return config


def _choices(body: JSONObject, stream: bool) -> int | None:
    n = _integer(body, "n", low=1)
    if stream and n is not None and n > 1:
        raise unsupported_parameter("n", PROVIDER, "streamed answers carry a single choice")
    return n


def _logprobs(body: JSONObject, stream: bool) -> JSONObject:
    wanted = body.get("logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise bad_request("'logprobs' must be a boolean", param="logprobs")
    top = _integer(body, "top_logprobs", low=0, high=20)
    if not wanted:
        if top is not None:
            raise bad_request("'top_logprobs' requires 'logprobs' to be true", param="top_logprobs")
        return {}
    if stream:
        raise unsupported_parameter("logprobs", PROVIDER, "log probabilities are returned only without streaming")
    return {"responseLogprobs": True, "logprobs": top} if top else {"responseLogprobs": True}


def _integer(body: JSONObject, name: str, low: int | None = None, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"{name!r} must be an integer", param=name)
    if (low is not None and value < low) or (high is not None and value > high):
        raise bad_request(f"{name!r} is out of range", param=name)
    return value
