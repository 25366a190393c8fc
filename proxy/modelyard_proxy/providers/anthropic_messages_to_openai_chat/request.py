"""An Anthropic Messages request as a Chat Completions request, for providers that do not speak Messages.

What maps, and how:

* ``system`` (a string or text blocks) becomes the first, system message; ``cache_control`` anywhere is
  dropped (a caching hint, not part of the answer).
* Images become ``image_url`` parts (base64 sources as ``data:`` URLs); a base64 PDF document becomes a
  ``file`` part, a plain-text document its text.
* ``tool_use`` blocks become the assistant's ``tool_calls``; each ``tool_result`` a ``tool`` message, in the
  order given, before the turn's other content. Chat's tool messages hold text only, so images inside a
  result go in a user message right after the tool messages; ``is_error`` prefixes the text with "Error: ".
* ``thinking`` becomes ``reasoning_effort`` (:func:`reasoning_effort`). ``thinking`` and ``redacted_thinking``
  blocks of earlier turns are dropped: Chat Completions has no place for reasoning in a request, and their
  signatures are Anthropic's, which no other provider can check.
* ``tool_choice`` ``auto``/``any``/``tool``/``none`` become ``auto``/``required``/a named function/``none``;
  ``disable_parallel_tool_use`` becomes ``parallel_tool_calls: false``.
* ``metadata.user_id`` becomes ``user``, ``stop_sequences`` ``stop``, ``max_tokens`` ``max_completion_tokens``.

Anything Chat Completions cannot express (``top_k``, server tools, a PDF by URL, an unknown field) is refused
with a 400 naming it, never dropped: the answer would not be the one the client asked for.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelyard_proxy.base.errors import bad_request, unsupported_parameter
from modelyard_proxy.providers.base import CallContext, JSONObject

#: Fields that map (see the module's docstring), or that need no mapping (``stream``, ``model``).
MAPPED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stream",
        "thinking",
        "tools",
        "tool_choice",
        "metadata",
        "stop_sequences",
        "temperature",
        "top_p",
        "output_config",
        "service_tier",
    }
)
#: ``thinking.budget_tokens`` below each bound maps to that ``reasoning_effort``; higher budgets are ``high``.
EFFORT_BY_BUDGET = ((4096, "low"), (16384, "medium"))
EFFORTS = frozenset({"low", "medium", "high"})
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
PDF = "application/pdf"
TEXT_MEDIA_TYPES = frozenset({"text/plain"})


def chat_request(body: JSONObject, ctx: CallContext) -> JSONObject:
    """The Chat Completions body for ``body`` (checked by the Messages protocol already)."""
    provider = ctx.credential.provider.value
    for name in body:
        if name not in MAPPED:
            raise unsupported_parameter(name, provider, "Chat Completions has no equivalent")
    chat: JSONObject = {
        "model": body["model"],
        "messages": [*system_messages(body.get("system")), *conversation(body["messages"], provider)],
        "max_completion_tokens": body["max_tokens"],
    }
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if (stops := body.get("stop_sequences")) is not None:
        chat["stop"] = stops
    user = body.get("metadata", {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if isinstance(user, str):
        chat["user"] = user
    if (effort := reasoning_effort(body.get("thinking"), body.get("output_config"))) is not None:
        chat["reasoning_effort"] = effort
    if (response_format := output_format(body.get("output_config"), provider)) is not None:
        chat["response_format"] = response_format
    if body.get("service_tier") not in (None, "auto"):
        raise unsupported_parameter("service_tier", provider, "only auto can be honoured")
    tools_and_choice(body, chat, provider)
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def system_messages(system: Any) -> list[JSONObject]:
    if isinstance(system, list):
        system = "\n".join(block["text"] for block in system)
    return [{"role": "system", "content": system}] if system else []


def conversation(messages: list[JSONObject], provider: str) -> list[JSONObject]:
    out: list[JSONObject] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        content = message["content"]
        if message["role"] == "assistant":
            out.append(assistant_message(content, where, provider))
        elif isinstance(content, str):
            out.append({"role": "user", "content": content})
        else:
            out.extend(user_messages(content, where, provider))
    return out


def user_messages(blocks: list[JSONObject], where: str, provider: str) -> list[JSONObject]:
    """The turn's tool results as tool messages, then one user message with the rest (and results' images)."""
    tools: list[JSONObject] = []
    parts: list[JSONObject] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        if block["type"] == "tool_result":
            text, images = tool_result(block, at, provider)
            tools.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
            parts.extend(images)
        else:
            parts.extend(user_part(block, at, provider))
    return [*tools, {"role": "user", "content": parts}] if parts else tools


def user_part(block: JSONObject, where: str, provider: str) -> list[JSONObject]:
    kind = block["type"]
    if kind == "text":
        return [{"type": "text", "text": _text(block, where)}]
    if kind == "image":
        return [image_part(block, where, provider)]
    if kind == "document":
        return [document_part(block, where, provider)]
    if kind in ("thinking", "redacted_thinking"):
        return []
    raise unsupported_parameter("messages", provider, f"{where} is a {kind!r} block, which Chat cannot express")


def image_part(block: JSONObject, where: str, provider: str) -> JSONObject:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        return {"type": "image_url", "image_url": {"url": data_url(source, where)}}
    if kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise unsupported_parameter("messages", provider, f"{where}: images must have a base64 or url source")


def document_part(block: JSONObject, where: str, provider: str) -> JSONObject:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict) and source.get("media_type") == PDF:
        title = block.get("title")
        filename = title if isinstance(title, str) and title else "document.pdf"
        return {"type": "file", "file": {"filename": filename, "file_data": data_url(source, where)}}
    if kind == "text" and isinstance(source, dict) and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    raise unsupported_parameter(
        "messages", provider, f"{where}: documents must be base64 PDFs or plain text (a URL or file id cannot be sent)"
    )


def data_url(source: JSONObject, where: str) -> str:
    media_type, data = source.get("media_type"), source.get("data")
    if not isinstance(media_type, str) or not isinstance(data, str):
        raise bad_request(f"{where}.source needs a media_type and base64 data", param="messages")
    return f"data:{media_type};base64,{data}"


def tool_result(block: JSONObject, where: str, provider: str) -> tuple[str, list[JSONObject]]:
    """A result's text for the tool message, and its images for the user message after it."""
    if not isinstance(block.get("tool_use_id"), str):
        raise bad_request(f"{where}.tool_use_id must be a string", param="messages")
    content = block.get("content")
    texts: list[str] = []
    images: list[JSONObject] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for k, inner in enumerate(content):
            at = f"{where}.content[{k}]"
            part = user_part(inner, at, provider) if isinstance(inner, dict) else []
            for piece in part:
                if piece["type"] == "text":
                    texts.append(piece["text"])
                else:
                    images.append(piece)
    elif content is not None:
        raise bad_request(f"{where}.content must be a string or a list of blocks", param="messages")
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}"
    return text, images


def assistant_message(content: Any, where: str, provider: str) -> JSONObject:
    """Text and tool calls; thinking blocks are dropped (see the module's docstring)."""
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSONObject] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block["type"]
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            calls.append(tool_call(block, at))
        elif kind not in ("thinking", "redacted_thinking"):
            raise unsupported_parameter("messages", provider, f"{at} is a {kind!r} block, which Chat cannot express")
    message: JSONObject = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def tool_call(block: JSONObject, where: str) -> JSONObject:
    name, call_id, arguments = block.get("name"), block.get("id"), block.get("input", {})
    if not isinstance(name, str) or not isinstance(call_id, str) or not isinstance(arguments, dict):
        raise bad_request(f"{where} needs an id, a name and an object input", param="messages")
    function = {"name": name, "arguments": orjson.dumps(arguments).decode()}
    return {"id": call_id, "type": "function", "function": function}


def _text(block: JSONObject, where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise bad_request(f"{where}.text must be a string", param="messages")
    return text


def reasoning_effort(thinking: Any, output_config: Any) -> str | None:
    """``output_config.effort`` when given (low, medium, high), else the thinking budget's effort: below 4,096
    tokens ``low``, below 16,384 ``medium``, else ``high``. ``disabled`` and ``adaptive`` set none (the
    model's default: adaptive thinking lets the model decide)."""
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    if effort is not None:
        if effort not in EFFORTS:
            raise bad_request("'output_config.effort' must be low, medium or high", param="output_config")
        return str(effort)
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking["budget_tokens"]
    return next((effort for bound, effort in EFFORT_BY_BUDGET if budget < bound), "high")


def output_format(output_config: Any, provider: str) -> JSONObject | None:
    """``output_config.format`` (a JSON schema) as ``response_format: json_schema``."""
    fmt = output_config.get("format") if isinstance(output_config, dict) else None
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise unsupported_parameter("output_config", provider, "only a json_schema format can be honoured")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True}}


def tools_and_choice(body: JSONObject, chat: JSONObject, provider: str) -> None:
    tools = body.get("tools")
    if tools:
        chat["tools"] = [function_tool(tool, i, provider) for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is None or (not tools and choice["type"] in ("auto", "none")):
        return  # without tools these change nothing, and Chat refuses a tool_choice without tools
    kind = choice["type"]
    if kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        chat["tool_choice"] = TOOL_CHOICES[kind]
    if choice.get("disable_parallel_tool_use") is True and tools:
        chat["parallel_tool_calls"] = False


def function_tool(tool: JSONObject, i: int, provider: str) -> JSONObject:
    if tool.get("type") not in (None, "custom"):
        raise unsupported_parameter(
            "tools", provider, f"tools[{i}] is Anthropic's server tool {tool['type']!r}; only custom tools map"
        )
    function: JSONObject = {"name": tool["name"], "parameters": tool["input_schema"]}
    if isinstance(description := tool.get("description"), str):
        function["description"] = description
    if tool.get("strict") is True:
        function["strict"] = True
    return {"type": "function", "function": function}
