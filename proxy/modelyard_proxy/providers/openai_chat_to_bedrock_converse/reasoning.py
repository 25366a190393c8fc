"""Claude's signed reasoning on Bedrock, carried through OpenAI messages like the Anthropic adapter carries it.

Converse returns thinking as ``reasoningContent`` blocks (``reasoningText {text, signature}`` or opaque
``redactedContent``) and, with thinking on, requires the last assistant turn that used tools to start with
them, unmodified. They reach the client in ``extra_content.bedrock.thinking_blocks``, shaped as Anthropic's
``thinking``/``redacted_thinking`` blocks but under their own namespace: Bedrock's signatures are not
Anthropic's, so a conversation that moves between the two never replays one's blocks to the other.
"""

from __future__ import annotations

from typing import Any

from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.thinking import client_block, replayed_blocks

NAMESPACE = "bedrock"


def replayed_reasoning(message: JSONObject, where: str) -> list[JSONObject]:
    """The ``reasoningContent`` blocks for the thinking a client sent back on an assistant message."""
    return [converse_block(block) for block in replayed_blocks(message, where, NAMESPACE)]


def converse_block(block: JSONObject) -> JSONObject:
    """A client-kept thinking block as Converse's ``reasoningContent``."""
    if block["type"] == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": block["data"]}}
    return {"reasoningContent": {"reasoningText": {"text": block["thinking"], "signature": block["signature"]}}}


def client_reasoning(reasoning: Any) -> tuple[str | None, JSONObject | None]:
    """``(text, kept block)`` for one answer's ``reasoningContent``; the block is None when unsigned."""
    if not isinstance(reasoning, dict):
        return None, None
    if isinstance(redacted := reasoning.get("redactedContent"), str):
        return None, client_block({"type": "redacted_thinking", "data": redacted})
    text_block = reasoning.get("reasoningText")
    if not isinstance(text_block, dict):
        return None, None
    text = text_block.get("text")
    text = text if isinstance(text, str) else ""
    return text, client_block({"type": "thinking", "thinking": text, "signature": text_block.get("signature")})


def replay_satisfied(messages: list[JSONObject]) -> bool:
    """Whether Bedrock would accept thinking: a final assistant turn that used tools starts with its reasoning.

    A history without signatures (another provider's answer) cannot, and is then continued without thinking.
    """
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    if last is None or not any("toolUse" in block for block in last["content"]):
        return True
    return "reasoningContent" in last["content"][0]
