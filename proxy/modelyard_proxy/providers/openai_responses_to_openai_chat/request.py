"""A Responses request as a Chat Completions body, for providers reached through their chat adapter.

Input items become messages (``function_call`` items an assistant turn's ``tool_calls``, their outputs tool
messages), flat function tools Chat's nested ones, ``text.format`` a ``response_format``. Reasoning items are
dropped: Chat has no field to send them back in. What Chat cannot express (hosted tools, stored prompts,
item references, file inputs) is refused with a 400 naming the field, never dropped.
"""

from __future__ import annotations

from typing import Any

from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.ingress.openai_responses import item_type
from modelyard_proxy.providers.openai_responses_to_openai_chat import carry

#: Fields copied as they are: Chat Completions has them under the same name and meaning.
SAME_NAME = ("temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier", "service_tier")
RENAMED = {"max_output_tokens": "max_completion_tokens", "prompt_cache_key": "prompt_cache_key"}
#: Fields with no bearing on a stateless chat answer: ``metadata`` labels stored responses (the gateway reads
#: ``metadata.modelyard_profile`` itself), ``stream_options`` only obfuscates, the rest are checked elsewhere.
IGNORED = frozenset(
    {"model", "input", "instructions", "stream", "stream_options", "metadata", "store", "background", "tools",
     "tool_choice", "text", "reasoning", "include", *SAME_NAME, *RENAMED}
)  # fmt: skip
#: ``include`` values that ask for nothing a chat answer could have.
HARMLESS_INCLUDES = frozenset({"reasoning.encrypted_content"})
TOOL_CHOICES = frozenset({"auto", "none", "required"})
WHY_NATIVE = "only OpenAI's own Responses API serves it, and this route's provider is reached through Chat Completions"


def chat_request(body: JSONObject) -> JSONObject:
    """The Chat Completions body for a checked Responses request."""
    _refuse_unknown(body)
    chat: JSONObject = {"model": body["model"], "messages": messages(body)}
    for name in SAME_NAME:
        if body.get(name) is not None:
            chat[name] = body[name]
    for name, chat_name in RENAMED.items():
        if body.get(name) is not None:
            chat[chat_name] = body[name]
    if (tools := body.get("tools")) is not None:
        chat["tools"] = [_tool(tool, index) for index, tool in enumerate(tools)]
    if (choice := body.get("tool_choice")) is not None:
        chat["tool_choice"] = _tool_choice(choice)
    _text(body.get("text"), chat)
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def _refuse_unknown(body: JSONObject) -> None:
    for name, value in body.items():
        if name not in IGNORED and value is not None:
            raise _unsupported(name, f"{name!r} has no Chat Completions equivalent")
    include = body.get("include")
    for value in include if isinstance(include, list) else ():
        if value not in HARMLESS_INCLUDES:
            raise _unsupported("include", f"include {value!r}: {WHY_NATIVE}")
    if body.get("truncation") not in (None, "disabled"):
        raise _unsupported("truncation", "only 'disabled' can be honoured")


def _unsupported(param: str, message: str) -> GatewayError:
    return GatewayError(400, message, param=param, code="unsupported_parameter")


def messages(body: JSONObject) -> list[JSONObject]:
    """``instructions`` as the system message, then each input item as Chat messages."""
    out: list[JSONObject] = []
    if isinstance(instructions := body.get("instructions"), str) and instructions:
        out.append({"role": "system", "content": instructions})
    value = body["input"]
    if isinstance(value, str):
        out.append({"role": "user", "content": value})
        return out
    state = _State()
    for index, item in enumerate(value):
        where = f"input[{index}]"
        kind = item_type(item)
        if kind == "message":
            out.append(state.adopt(_message(item, where)))
        elif kind == "function_call":
            _call_turn(out, state)["tool_calls"].append(_tool_call(item))
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": _output(item, where)})
        elif kind == "reasoning":
            state.carry(carry.decode(item.get("encrypted_content")), out)
        else:
            raise _unsupported("input", f"{where} is a {kind!r} item: {WHY_NATIVE}")
    state.sign_calls(out)
    return out


class _State:
    """Provider state earlier answers carried in reasoning items, put back where the chat adapters read it:
    ``extra_content`` on the assistant turn and on each tool call (see :mod:`.carry`)."""

    def __init__(self) -> None:
        self.pending: JSONObject | None = None
        self.calls: dict[str, JSONObject] = {}

    def carry(self, carried: carry.Carried | None, out: list[JSONObject]) -> None:
        """A reasoning item's state: for the assistant turn it closes (it came after the turn's items), else
        for the next one (it came first, as in a whole answer)."""
        if carried is None:
            return
        self.calls.update(carried.calls)
        if not carried.message:
            return
        last = out[-1] if out else None
        if last is not None and last["role"] == "assistant" and "extra_content" not in last:
            last["extra_content"] = carried.message
        else:
            self.pending = carried.message

    def adopt(self, message: JSONObject) -> JSONObject:
        """``message`` with the state waiting for the next assistant turn, if it is one."""
        if message["role"] == "assistant" and self.pending is not None:
            message["extra_content"], self.pending = self.pending, None
        return message

    def sign_calls(self, out: list[JSONObject]) -> None:
        for message in out:
            for call in message.get("tool_calls") or ():
                if (extra := self.calls.get(call["id"])) is not None:
                    call["extra_content"] = extra


def _call_turn(out: list[JSONObject], state: _State) -> JSONObject:
    """The assistant turn a ``function_call`` item joins: the one just before it, else a new one."""
    last = out[-1] if out else None
    if last is None or last["role"] != "assistant":
        last = state.adopt({"role": "assistant", "content": None})
        out.append(last)
    last.setdefault("tool_calls", [])
    return last


def _tool_call(item: JSONObject) -> JSONObject:
    arguments = item.get("arguments")
    return {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": arguments if isinstance(arguments, str) else "{}"},
    }


def _message(item: JSONObject, where: str) -> JSONObject:
    role = item["role"]
    content = item["content"]
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = [_part(part, f"{where}.content[{number}]") for number, part in enumerate(content)]
    if role != "user":
        return {"role": role, "content": "".join(_text_of(part, f"{where}: only user messages") for part in parts)}
    return {"role": role, "content": parts}


def _text_of(part: JSONObject, who: str) -> str:
    if part["type"] != "text":
        raise bad_request(f"{who} may carry images on this route's provider", param="input")
    text: str = part["text"]
    return text


def _part(part: JSONObject, where: str) -> JSONObject:
    kind = part["type"]
    if kind in ("input_text", "output_text", "refusal"):
        text = part.get("refusal" if kind == "refusal" else "text")
        if not isinstance(text, str):
            raise bad_request(f"{where} needs its text as a string", param="input")
        return {"type": "text", "text": text}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise _unsupported("input", f"{where}: images by 'file_id' need OpenAI's file storage; send 'image_url'")
        image: JSONObject = {"url": url}
        if isinstance(detail := part.get("detail"), str):
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}
    raise _unsupported("input", f"{where} is a {kind!r} part: {WHY_NATIVE}")


def _output(item: JSONObject, where: str) -> str:
    """A function call's output as tool message text (Chat tool messages carry text only)."""
    output = item.get("output")
    if isinstance(output, str):
        return output
    if isinstance(output, list) and all(
        isinstance(part, dict) and isinstance(part.get("type"), str) for part in output
    ):
        parts = [_part(part, f"{where}.output[{number}]") for number, part in enumerate(output)]
        return "".join(_text_of(part, f"{where}.output: no function output") for part in parts)
    raise bad_request(f"{where}.output must be a string or an array of content parts", param="input")


def _typed(part: Any) -> bool:
    return isinstance(part, dict) and isinstance(part.get("type"), str)


def _tool(tool: JSONObject, index: int) -> JSONObject:
    if tool["type"] != "function":
        raise _unsupported("tools", f"tools[{index}] is a {tool['type']!r} tool: {WHY_NATIVE}")
    function: JSONObject = {"name": tool["name"]}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _unsupported("tool_choice", f"tool_choice {choice!r}: {WHY_NATIVE}")


def _text(text: Any, chat: JSONObject) -> None:
    """``text.format`` as ``response_format``; ``text.verbosity`` as Chat's ``verbosity``."""
    if not isinstance(text, dict):
        return
    if text.get("verbosity") is not None:
        chat["verbosity"] = text["verbosity"]
    fmt = text.get("format")
    if not isinstance(fmt, dict) or fmt["type"] == "text":
        return
    if fmt["type"] == "json_object":
        chat["response_format"] = {"type": "json_object"}
        return
    spec = {name: fmt[name] for name in ("name", "schema", "description", "strict") if fmt.get(name) is not None}
    chat["response_format"] = {"type": "json_schema", "json_schema": spec}
