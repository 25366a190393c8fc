"""OpenAI chat request → Bedrock Converse request (the same body serves Converse and ConverseStream).

Converse shapes a conversation as Anthropic does (no system role, alternating turns that start with the
user's, tool results first in the turn after the calls), with its own block names. Choices worth knowing:

* Images and PDFs travel inline (``data:`` URLs); Converse reads other media only from S3, so a web URL
  is refused rather than fetched by the gateway.
* ``tool_choice: none`` drops the tools; a conversation that already holds tool calls cannot be sent
  without them (Converse requires ``toolConfig`` then), so that combination is refused.
* ``reasoning_effort`` becomes Claude's thinking budget in ``additionalModelRequestFields`` (Claude models
  only: other models' reasoning switches differ per family). Signed reasoning sent back is replayed.
* ``parallel_tool_calls: false`` cannot be told to Converse: the answer keeps its first tool call only.
* ``response_format`` other than text, ``seed``, ``n`` > 1 and the penalties are refused: Converse cannot
  express them, and dropping them would change the answer without saying so.
"""

from __future__ import annotations

import hashlib
from typing import Any

from modelyard_proxy.base.errors import bad_request, unsupported_parameter
from modelyard_proxy.providers import params, turns
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.request import REFUSED, token_budget
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.reasoning import replay_satisfied, replayed_reasoning

PROVIDER = "bedrock"
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
DOCUMENT_FORMATS = {"application/pdf": "pdf"}
TOOL_CHOICES: dict[str, JSONObject] = {"auto": {"auto": {}}, "required": {"any": {}}}


def build_request(body: JSONObject, model: str) -> JSONObject:
    """The Converse body for an OpenAI chat completion request to ``model``."""
    params.refuse_unsupported(body, PROVIDER, REFUSED)  # Converse lacks what Anthropic lacks
    if params.response_format(body)[0] != "text":
        raise unsupported_parameter("response_format", PROVIDER, "Converse has no JSON output mode")
    system, messages = conversation(body.get("messages"))
    request: JSONObject = {"messages": messages}
    if system:
        request["system"] = system
    config, thinking = inference_config(body, model, messages)
    if config:
        request["inferenceConfig"] = config
    if thinking is not None:
        request["additionalModelRequestFields"] = {"thinking": thinking}
    if (tools := tool_config(body, messages)) is not None:
        request["toolConfig"] = tools
    return request


def is_claude(model: str) -> bool:
    """Anthropic's models, by id (``anthropic.claude-…``), inference profile (``us.anthropic.…``) or its ARN."""
    return "anthropic." in model


def inference_config(body: JSONObject, model: str, messages: list[JSONObject]) -> tuple[JSONObject, JSONObject | None]:
    """``(inferenceConfig, Claude's thinking or None)``."""
    config: JSONObject = {}
    max_tokens = params.max_output_tokens(body)
    thinking = None
    effort = params.reasoning_effort(body)
    if effort not in {None, "none"}:
        if not is_claude(model):
            raise unsupported_parameter(
                "reasoning_effort", PROVIDER, "the gateway sets a reasoning budget for Anthropic models only"
            )
        max_tokens, thinking = token_budget(body, replay_satisfied(messages))
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    for name, native in (("temperature", "temperature"), ("top_p", "topP")):
        if (value := params.number_in_range(body, name, 0, 1, PROVIDER)) is not None:
            config[native] = value
    if (stop := params.stop_sequences(body)) is not None:
        config["stopSequences"] = stop
    return config, thinking


def conversation(raw: Any) -> tuple[list[JSONObject], list[JSONObject]]:
    """``(system blocks, messages)`` in Converse's blocks (see :mod:`~modelyard_proxy.providers.turns`)."""
    return turns.conversation(raw, SHAPE)


def media_block(url: Any, where: str) -> JSONObject:
    """An ``image`` or ``document`` block from a ``data:`` URL (Converse takes bytes inline, base64 in JSON).

    A document needs a name unique in the request; one derived from its bytes is, and says nothing of them.
    """
    if not isinstance(url, str) or not url:
        raise bad_request(f"{where}: image_url.url must be a non-empty string", param="messages")
    inline = params.parse_data_url(url)
    if inline is None:
        raise unsupported_parameter(
            "messages", PROVIDER, f"{where}: images must be sent inline as data: URLs (Converse fetches none)"
        )
    media_type, data = inline
    source = {"bytes": data}
    if (image := IMAGE_FORMATS.get(media_type)) is not None:
        return {"image": {"format": image, "source": source}}
    if (document := DOCUMENT_FORMATS.get(media_type)) is not None:
        name = f"document-{hashlib.sha256(data.encode()).hexdigest()[:12]}"
        return {"document": {"format": document, "name": name, "source": source}}
    raise unsupported_parameter("messages", PROVIDER, f"{where}: media type {media_type!r} cannot be sent")


SHAPE = turns.TurnShape(
    provider=PROVIDER,
    text=lambda text: {"text": text},
    media=media_block,
    replayed=replayed_reasoning,
    tool_use=lambda call: {"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.arguments}},
    tool_result=lambda call_id, text: {
        "toolResult": {"toolUseId": call_id, "content": [{"text": text}] if text else []}
    },
    is_tool_result=lambda block: "toolResult" in block,
)


def tool_config(body: JSONObject, messages: list[JSONObject]) -> JSONObject | None:
    """Converse's ``toolConfig``; ``tool_choice: none`` sends none."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(body.get("parallel_tool_calls"), bool | None):
        raise bad_request("'parallel_tool_calls' must be a boolean", param="parallel_tool_calls")
    if not tools:
        if choice not in {None, "auto", "none"}:
            raise bad_request("'tool_choice' requires 'tools'", param="tool_choice")
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be a list", param="tools")
    specs = [tool_spec(tool, i) for i, tool in enumerate(tools)]
    if choice == "none":
        if any("toolUse" in block or "toolResult" in block for m in messages for block in m["content"]):
            raise unsupported_parameter(
                "tool_choice", PROVIDER, "'none' cannot be sent with a conversation that holds tool calls"
            )
        return None
    config: JSONObject = {"tools": specs}
    if (native := tool_choice(choice)) is not None:
        config["toolChoice"] = native
    return config


def tool_spec(tool: Any, i: int) -> JSONObject:
    """A function tool as a ``toolSpec``; ``strict`` has no Converse form and is left out."""
    name, function = params.function_tool(tool, i, PROVIDER)
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    spec: JSONObject = {"name": name, "inputSchema": {"json": schema}}
    if description := function.get("description"):
        spec["description"] = description
    return {"toolSpec": spec}


def tool_choice(choice: Any) -> JSONObject | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return TOOL_CHOICES[choice]
    if (name := params.chosen_function(choice)) is not None:
        return {"tool": {"name": name}}
    raise unsupported_parameter("tool_choice", PROVIDER, "use auto, none, required or a named function")
