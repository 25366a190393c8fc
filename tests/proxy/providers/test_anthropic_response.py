"""Anthropic non-stream answers and HTTP errors translated to OpenAI's."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.adapter import AnthropicAdapter
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.json_answer import JSON_TOOL
from modelyard_routing import Credential, Provider

SECRET = "sk-ant-api03-0123456789abcdefghij"
CREDENTIAL = Credential(
    id="claude-prod", provider=Provider.ANTHROPIC, base_url="https://api.anthropic.com/v1", api_key=SecretStr(SECRET)
)
CTX = CallContext("claude", "claude-sonnet-4-5", CREDENTIAL, created=1_700_000_000, completion_id="chatcmpl-1")
ADAPTER = AnthropicAdapter()


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> bytes:
    """An Anthropic ``message`` as the API returns it."""
    return orjson.dumps(
        {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 6,
                "service_tier": "standard",
                **usage,
            },
        }
    )


def result(payload: bytes) -> dict[str, Any]:
    completion: dict[str, Any] = orjson.loads(ADAPTER.chat_result(payload, CTX))
    return completion


def test_text_thinking_and_tool_use() -> None:
    payload = message(
        [
            {"type": "thinking", "thinking": "The user wants Oslo.", "signature": "EqQBCgIYAhIM"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "Let me check "},
            {"type": "text", "text": "both cities."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_02", "name": "now", "input": {}},
        ],
        stop_reason="tool_use",
        input_tokens=472,
        cache_creation_input_tokens=100,
        cache_read_input_tokens=2048,
        output_tokens=89,
    )
    assert result(payload) == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "claude-sonnet-4-5-20250929",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check both cities.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "toolu_01",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        },
                        {"id": "toolu_02", "type": "function", "function": {"name": "now", "arguments": "{}"}},
                    ],
                    "reasoning_content": "The user wants Oslo.",
                    "extra_content": {
                        "anthropic": {
                            "thinking_blocks": [
                                {"type": "thinking", "thinking": "The user wants Oslo.", "signature": "EqQBCgIYAhIM"},
                                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                            ]
                        }
                    },
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 472 + 100 + 2048,
            "completion_tokens": 89,
            "total_tokens": 472 + 100 + 2048 + 89,
            "prompt_tokens_details": {"cached_tokens": 2048},
        },
    }


def test_tool_calls_alone_leave_content_null() -> None:
    payload = message([{"type": "tool_use", "id": "t", "name": "now", "input": {}}], stop_reason="tool_use")
    assert result(payload)["choices"][0]["message"]["content"] is None


def test_unsigned_thinking_is_not_offered_for_replay() -> None:
    payload = message([{"type": "thinking", "thinking": "hm", "signature": ""}, {"type": "text", "text": "4"}])
    reply = result(payload)["choices"][0]["message"]
    assert reply["reasoning_content"] == "hm"
    assert "extra_content" not in reply


def test_json_mode_answer_is_the_content_and_stops() -> None:
    answer = {"type": "tool_use", "id": "toolu_07", "name": JSON_TOOL, "input": {"city": "Oslo", "days": [1, 2]}}
    choice = result(message([answer], stop_reason="tool_use"))["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": '{"city":"Oslo","days":[1,2]}', "refusal": None}
    assert choice["finish_reason"] == "stop"


def test_json_mode_answer_beside_a_client_tool_call_keeps_the_call() -> None:
    answer = {"type": "tool_use", "id": "toolu_07", "name": JSON_TOOL, "input": {}}
    call = {"type": "tool_use", "id": "toolu_08", "name": "now", "input": {}}
    choice = result(message([call, answer], stop_reason="tool_use"))["choices"][0]
    assert choice["message"]["content"] == "{}"
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["now"]
    assert choice["finish_reason"] == "tool_calls"


def test_thinking_token_count_becomes_reasoning_tokens() -> None:
    payload = orjson.loads(message([{"type": "text", "text": "4"}]))
    payload["usage"]["output_tokens_details"] = {"thinking_tokens": 4}
    assert result(orjson.dumps(payload))["usage"]["completion_tokens_details"] == {"reasoning_tokens": 4}


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("some_future_reason", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    choice = result(message([{"type": "text", "text": "ok"}], stop_reason=stop_reason))["choices"][0]
    assert choice["finish_reason"] == finish_reason
    assert choice["message"]["content"] == "ok"


@pytest.mark.parametrize("payload", [b"", b"<html>oops</html>", b'{"type":"message"}', b"[]"])
def test_unreadable_answer_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedAnswer):  # the relay reports it for the credential, and tries again
        ADAPTER.chat_result(payload, CTX)


def anthropic_error(kind: str, text: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_011CSHoEeqs5"})


# (case, upstream status, headers, body, expected (status, type, code, retryable, retry_after))
ERRORS: list[tuple[str, int, dict[str, str], bytes, tuple[int, str, str | None, bool, float | None]]] = [
    (
        "prompt too long is a context-length error",
        400,
        {},
        anthropic_error("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"),
        (400, "invalid_request_error", "context_length_exceeded", False, None),
    ),
    (
        "other bad requests pass through",
        400,
        {},
        anthropic_error("invalid_request_error", "messages.1.content: Field required"),
        (400, "invalid_request_error", None, False, None),
    ),
    (
        "a rejected key is the gateway's fault",
        401,
        {},
        anthropic_error("authentication_error", f"invalid x-api-key: {SECRET}"),
        (502, "upstream_error", "upstream_auth_failed", False, None),
    ),
    (
        "rate limits are retryable after the upstream's pause",
        429,
        {"retry-after": "7", "anthropic-ratelimit-requests-remaining": "0"},
        anthropic_error("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        (429, "rate_limit_error", "rate_limit_exceeded", True, 7.0),
    ),
    (
        "overloaded",
        529,
        {},
        anthropic_error("overloaded_error", "Overloaded"),
        (503, "upstream_error", "upstream_unavailable", True, None),
    ),
    (
        "server error",
        500,
        {},
        anthropic_error("api_error", "Internal server error"),
        (502, "upstream_error", "upstream_error", True, None),
    ),
    (
        "a non-JSON body from a proxy in front",
        502,
        {},
        b"<html><body>502 Bad Gateway</body></html>",
        (502, "upstream_error", "upstream_error", True, None),
    ),
    ("an empty body", 503, {}, b"", (503, "upstream_error", "upstream_unavailable", True, None)),
]


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"), [case[1:] for case in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_error_from(
    status: int, headers: dict[str, str], body: bytes, expected: tuple[int, str, str | None, bool, float | None]
) -> None:
    error = ADAPTER.error_from(status, headers, body, CTX)
    assert (error.status, error.type, error.code, error.retryable, error.retry_after) == expected
    assert SECRET not in error.message
    assert SECRET.encode() not in error.body()


def test_error_message_keeps_the_upstream_reason() -> None:
    error = ADAPTER.error_from(401, {}, anthropic_error("authentication_error", f"invalid x-api-key {SECRET}"), CTX)
    assert "invalid x-api-key" in error.message
    assert "claude-prod" in error.message
    html = ADAPTER.error_from(502, {}, b"<html><body>502 Bad Gateway</body></html>", CTX)
    assert "502 Bad Gateway" in html.message
