"""Responses API items and answers as OpenAI sends them, for the conversation tests."""

from __future__ import annotations

from typing import Any

OWNER = "key-digest-7f3a"
OTHER_OWNER = "key-digest-0c91"
TTL_S = 3600


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def assistant(item_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def function_call(item_id: str, call_id: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": "get_weather",
        "arguments": '{"city":"Oslo"}',
        "status": "completed",
    }


def answer(response_id: str, *output: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    return {"id": response_id, "object": "response", "model": "gpt-4o-mini", "status": status, "output": list(output)}


def reasoning(item_id: str, encrypted: str | None = None) -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [], "encrypted_content": encrypted}
