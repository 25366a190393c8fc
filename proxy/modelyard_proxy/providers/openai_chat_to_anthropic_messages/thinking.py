"""Signed thinking, carried through OpenAI messages so a tool-use turn can be continued with thinking on.

Anthropic signs each ``thinking`` block (``redacted_thinking`` blocks are opaque ``data``) and, while
thinking is enabled, requires the final assistant turn that called tools to start with those blocks,
unmodified. OpenAI's message has no place for them, so they ride in the message's
``extra_content.anthropic.thinking_blocks``, next to Gemini's ``extra_content.google.thought_signature``:
the OpenAI SDKs keep unknown fields, so a client that appends the reply it received to its history sends
the blocks back without knowing about them. Stream deltas carry each complete block once, with an
``index`` so the SDKs' stream accumulators merge them as they merge tool calls.
"""

from __future__ import annotations

from typing import Any

from modelyard_proxy.base.errors import bad_request
from modelyard_proxy.providers.base import JSONObject

NAMESPACE = "anthropic"
FIELD = "thinking_blocks"
#: Anthropic's block type -> the fields that make it up, all strings, passed back exactly as received.
BLOCK_FIELDS = {"thinking": ("thinking", "signature"), "redacted_thinking": ("data",)}


def client_block(block: JSONObject) -> JSONObject | None:
    """A response's thinking block as the client keeps it; None when it cannot be replayed (no signature)."""
    kind = block.get("type")
    fields = BLOCK_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None or not all(isinstance(block.get(name), str) for name in fields):
        return None
    if not block.get(fields[-1]):  # the signature, or the redacted data
        return None
    return {"type": kind, **{name: block[name] for name in fields}}


def extra_content(blocks: list[JSONObject], namespace: str = NAMESPACE) -> JSONObject:
    """The ``extra_content`` value that carries ``blocks`` to the client.

    Another upstream whose signatures only it can verify (Claude on Bedrock) keeps its blocks under a
    ``namespace`` of its own, so neither is ever sent the other's.
    """
    return {namespace: {FIELD: blocks}}


def replayed_blocks(message: JSONObject, where: str, namespace: str = NAMESPACE) -> list[JSONObject]:
    """The thinking blocks a client sent back on an assistant message, validated, in their order."""
    extra = message.get("extra_content")
    kept = extra.get(namespace) if isinstance(extra, dict) else None
    raw: Any = kept.get(FIELD) if isinstance(kept, dict) else None
    if raw is None:
        return []
    field = f"{where}.extra_content.{namespace}.{FIELD}"
    if not isinstance(raw, list):
        raise bad_request(f"{field} must be a list", param="messages")
    blocks = []
    for i, entry in enumerate(raw):
        block = client_block(entry) if isinstance(entry, dict) else None
        if block is None:
            raise bad_request(
                f"{field}[{i}] must be a thinking block with thinking and signature, or a redacted_thinking"
                " block with data, as the gateway returned it",
                param="messages",
            )
        blocks.append(block)
    return blocks


def replay_satisfied(messages: list[JSONObject]) -> bool:
    """Whether Anthropic would accept thinking for this conversation.

    With thinking enabled, the final assistant turn must start with a thinking block when it called tools.
    A history written without signatures (another provider's answer, a client that drops unknown fields)
    cannot satisfy that, and the request is then sent without thinking rather than refused.
    """
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    if last is None or not any(block["type"] == "tool_use" for block in last["content"]):
        return True
    return last["content"][0]["type"] in BLOCK_FIELDS


class StreamedThinking:
    """Rebuilds a stream's thinking blocks so each reaches the client whole, once it is signed.

    The text also streams as ``reasoning_content`` as it arrives; the block is sent again whole when it
    stops, because the signature covers the text exactly and only the whole block can be replayed.
    """

    __slots__ = ("_namespace", "_open", "_parts", "_sent")

    def __init__(self, namespace: str = NAMESPACE) -> None:
        self._namespace = namespace
        self._open: dict[int, JSONObject] = {}  # Anthropic block index -> the block as started
        self._parts: dict[int, list[str]] = {}
        self._sent = 0

    def start(self, index: int, block: JSONObject) -> None:
        self._open[index] = block
        self._parts[index] = [block.get("thinking") or ""]

    def thinking(self, index: int, text: str) -> None:
        if index in self._parts:
            self._parts[index].append(text)

    def signature(self, index: int, signature: str) -> None:
        if index in self._open:
            self._open[index] = {**self._open[index], "signature": signature}

    def stop(self, index: int) -> JSONObject | None:
        """The delta that hands the block to the client; None if it was no thinking block or is unsigned."""
        started = self._open.pop(index, None)
        parts = self._parts.pop(index, [])
        if started is None:
            return None
        block = client_block({**started, "thinking": "".join(parts)} if started.get("type") == "thinking" else started)
        if block is None:
            return None
        self._sent += 1
        return {"extra_content": extra_content([{"index": self._sent - 1, **block}], self._namespace)}
