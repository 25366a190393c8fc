"""What a provider needs back on the next turn, carried in a reasoning item's ``encrypted_content``.

Chat answers hold provider state in ``extra_content``: Anthropic's signed thinking blocks on the message
(which Anthropic requires back, unmodified, to keep thinking on across a tool call) and Gemini's thought
signatures on each tool call. Responses has one opaque field clients send back as they got it, the reasoning
item's ``encrypted_content`` (the Agents SDK, Codex and the Vercel AI SDK with ``store: false`` all do), so
the state rides there: ``modelyard.v1:`` and the base64url of ``{"message": …, "calls": {call_id: …}}``. It
is not secret (the thinking text is in the answer already), only opaque. A value without the prefix came
from another upstream (OpenAI's own) and is of no use to a chat provider.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

import orjson

from modelyard_proxy.providers.base import JSONObject

PREFIX = "modelyard.v1:"


@dataclasses.dataclass(slots=True)
class Carried:
    """One answer's provider state: the message's ``extra_content`` and each tool call's, by call id."""

    message: JSONObject = dataclasses.field(default_factory=dict)
    calls: dict[str, JSONObject] = dataclasses.field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.message or self.calls)

    def encode(self) -> str:
        payload = orjson.dumps({"message": self.message, "calls": self.calls})
        return PREFIX + base64.urlsafe_b64encode(payload).decode()

    def add_message_delta(self, extra: Any) -> None:
        """Merge a stream delta's ``extra_content``: lists of ``index``-ed entries (Anthropic's thinking
        blocks) are rebuilt by index, as the SDKs' accumulators do; other values replace the earlier ones."""
        for namespace, fields in extra.items() if isinstance(extra, dict) else ():
            if not isinstance(fields, dict):
                continue
            kept = self.message.setdefault(namespace, {})
            for name, value in fields.items():
                if isinstance(value, list):
                    entries = kept.setdefault(name, [])
                    for entry in value:
                        _place(entries, entry)
                else:
                    kept[name] = value

    def add_call(self, call_id: str, extra: Any) -> None:
        if isinstance(extra, dict) and extra:
            self.calls[call_id] = {**self.calls.get(call_id, {}), **extra}


def _place(entries: list[Any], entry: Any) -> None:
    if not isinstance(entry, dict) or not isinstance(index := entry.get("index"), int) or index < 0:
        entries.append(entry)
        return
    while len(entries) <= index:
        entries.append(None)
    entries[index] = {name: value for name, value in entry.items() if name != "index"}


def decode(value: Any) -> Carried | None:
    """The state an earlier answer of this gateway carried; None for anything else (never an error: a client
    may send back OpenAI's own encrypted reasoning after a fallback)."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(value[len(PREFIX) :]))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    message, calls = payload.get("message"), payload.get("calls")
    return Carried(
        message if isinstance(message, dict) else {},
        {key: extra for key, extra in calls.items() if isinstance(extra, dict)} if isinstance(calls, dict) else {},
    )
