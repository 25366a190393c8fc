"""``response_format: json_object`` on Anthropic: a forced tool call whose input is the answer.

A prompt instruction alone lets the model answer in prose, and Anthropic's native structured output needs a
closed schema, where a generic closed object admits only ``{}``. A tool's ``input_schema`` may stay open,
and a forced tool call's input is always a JSON object, so JSON mode forces a call to :data:`JSON_TOOL`.
Its input comes back as the message content with ``finish_reason: stop`` (streamed as content too), as
OpenAI's JSON mode gives. Anthropic does not let a request think while it forces a tool, so JSON mode
with ``reasoning_effort`` is refused; ``json_schema`` (native structured output) allows both.
"""

from __future__ import annotations

from modelyard_proxy.base.errors import bad_request, unsupported_parameter
from modelyard_proxy.providers.base import JSONObject

PROVIDER = "anthropic"
#: Never a client's tool: a client tool of this name is refused, so any call of it is the JSON answer.
JSON_TOOL = "modelyard_json_answer"
JSON_TOOL_DEFINITION: JSONObject = {
    "name": JSON_TOOL,
    "description": "Give your complete answer to the user as a single JSON object.",
    "input_schema": {"type": "object"},
}


def force_json_answer(request: JSONObject, reasoning_effort: str | None) -> None:
    """Make ``request`` answer with a JSON object: the answer tool, and a tool choice that calls a tool.

    With client tools and an ``auto`` choice the model must call one of them or answer in JSON; with none,
    or ``tool_choice: none``, it must answer in JSON; a client's ``required`` or named choice is kept.
    """
    if reasoning_effort not in (None, "none"):
        raise unsupported_parameter(
            "reasoning_effort",
            PROVIDER,
            "Anthropic cannot think while forcing the JSON answer response_format json_object needs;"
            " use response_format json_schema",
        )
    tools: list[JSONObject] = request.setdefault("tools", [])
    if any(tool["name"] == JSON_TOOL for tool in tools):
        raise bad_request(f"the tool name {JSON_TOOL!r} is reserved for JSON mode", param="tools")
    choice: JSONObject = request.get("tool_choice") or {"type": "auto"}
    if choice["type"] == "none" or not tools:
        request["tool_choice"] = {"type": "tool", "name": JSON_TOOL, "disable_parallel_tool_use": True}
    elif choice["type"] == "auto":
        request["tool_choice"] = {**choice, "type": "any"}
    tools.append(JSON_TOOL_DEFINITION)
