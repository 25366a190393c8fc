"""OpenAI chat messages as Gemini ``systemInstruction`` and ``contents``.

Gemini has two roles (``user``/``model``), keeps the system prompt apart, and identifies a function result
by the function's *name*, not a call id, so the name is looked up from the assistant turn that made the
call.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlsplit

import orjson

from modelyard_proxy.base.errors import bad_request
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.params import assistant_tool_calls, parse_data_url, text_content

#: Google's documented stand-in for a function call that carries no thought signature (a history written
#: by another model, or by a client that dropped ``extra_content``); Gemini 3 refuses unsigned calls.
SKIP_SIGNATURE = "skip_thought_signature_validator"
#: Models older than Gemini 3 never validate signatures, so they are sent none they did not issue.
UNSIGNED_MODELS = ("gemini-1", "gemini-2")
AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mp3"}


class _Turns:
    """``contents`` in order, merging consecutive turns of one role (tool results share one user turn)."""

    __slots__ = ("contents",)

    def __init__(self) -> None:
        self.contents: list[JSONObject] = []

    def add(self, role: str, parts: list[JSONObject]) -> None:
        if not parts:
            return  # Gemini refuses a turn without parts
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].extend(parts)
        else:
            self.contents.append({"role": role, "parts": parts})


def conversation(messages: list[Any], model: str) -> tuple[list[JSONObject], list[JSONObject]]:
    """``(systemInstruction parts, contents)``; system messages anywhere join the system instruction."""
    sign_calls = not model.removeprefix("models/").startswith(UNSIGNED_MODELS)
    system: list[JSONObject] = []
    turns = _Turns()
    names: dict[str, str] = {}  # tool_call_id -> function name, from earlier assistant turns
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object", param="messages")
        role = message.get("role")
        if role in {"system", "developer"}:
            if text := text_content(message.get("content"), where):
                system.append({"text": text})
        elif role == "user":
            turns.add("user", _user_parts(message.get("content"), where))
        elif role == "assistant":
            turns.add("model", _model_parts(message, where, names, sign_calls))
        elif role == "tool":
            turns.add("user", [_function_response(message, where, names)])
        else:
            raise bad_request(f"{where}.role {role!r} is not supported by the gemini provider", param="messages")
    if not turns.contents:
        raise bad_request("'messages' must contain a user or assistant message", param="messages")
    return system, turns.contents


def _user_parts(content: Any, where: str) -> list[JSONObject]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of parts", param="messages")
    parts = []
    for k, part in enumerate(content):
        converted = _user_part(part, f"{where}.content[{k}]")
        if converted is not None:
            parts.append(converted)
    return parts


def _user_part(part: Any, where: str) -> JSONObject | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"text": part["text"]} if part["text"] else None
    if kind == "image_url" and isinstance(image := part.get("image_url"), dict) and isinstance(image.get("url"), str):
        return _media_part(image["url"], where)
    if kind == "input_audio" and isinstance(audio := part.get("input_audio"), dict):
        mime = AUDIO_FORMATS.get(str(audio.get("format")))
        if mime is None or not isinstance(audio.get("data"), str):
            raise bad_request(f"{where}.input_audio needs base64 data and a wav or mp3 format", param="messages")
        return {"inlineData": {"mimeType": mime, "data": audio["data"]}}
    if kind == "file" and isinstance(file := part.get("file"), dict) and isinstance(file.get("file_data"), str):
        return _media_part(file["file_data"], where)
    raise bad_request(
        f"{where} must be a text, image_url, input_audio or file (with file_data) part for the gemini provider",
        param="messages",
    )


def _media_part(url: str, where: str) -> JSONObject:
    """A ``data:`` URL inline, an http(s) URL by reference (type guessed from its extension)."""
    inline = parse_data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    if url.startswith(("https://", "http://")):
        mime = mimetypes.guess_type(urlsplit(url).path)[0] or "image/jpeg"
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise bad_request(f"{where} must be a data: URL or an http(s) URL", param="messages")


def _model_parts(message: JSONObject, where: str, names: dict[str, str], sign_calls: bool) -> list[JSONObject]:
    parts: list[JSONObject] = []
    if text := text_content(message.get("content"), where):
        parts.append({"text": text})
    for k, call in enumerate(assistant_tool_calls(message, where)):
        names[call.id] = call.name
        part: JSONObject = {"functionCall": {"name": call.name, "args": call.arguments}}
        # Only the first call of a step carries Gemini's signature (parallel calls share it).
        signature = _signature(call.raw) or (SKIP_SIGNATURE if k == 0 and sign_calls else None)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _signature(call: JSONObject) -> str | None:
    """The thought signature a Gemini answer put in ``extra_content.google`` (the convention of Gemini's own
    OpenAI-compatible endpoint), so a client that echoes its tool calls back keeps the model's reasoning."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _function_response(message: JSONObject, where: str, names: dict[str, str]) -> JSONObject:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in names:
        raise bad_request(
            f"{where}.tool_call_id {call_id!r} matches no earlier assistant tool call; "
            "the gemini provider needs it to name the function",
            param="messages",
        )
    output = text_content(message.get("content"), where)
    return {"functionResponse": {"name": names[call_id], "response": {"output": _json_object_or_text(output)}}}


def _json_object_or_text(text: str) -> Any:
    """A JSON object result is passed as structure (Gemini reads it better); anything else stays text."""
    if text.lstrip().startswith("{"):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        if isinstance(parsed, dict):
            return parsed
    return text
