"""Converse answers and Bedrock's errors, as the gateway reports them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.routing.policy import failure_class
from tests.providers_bedrock.common import ADAPTER, completion, ctx


def answer(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, **usage},
        "metrics": {"latencyMs": 120},
    }


def test_text_and_usage_with_cache_reads_and_writes() -> None:
    result = completion(
        answer([{"text": "Hello "}, {"text": "there"}], cacheReadInputTokens=100, cacheWriteInputTokens=7)
    )
    assert result["object"] == "chat.completion"
    assert result["model"] == "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert result["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert result["usage"] == {
        "prompt_tokens": 117,
        "completion_tokens": 5,
        "total_tokens": 122,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    assert completion(answer([{"text": "x"}], stop))["choices"][0]["finish_reason"] == finish


def test_tool_calls_and_signed_reasoning() -> None:
    content: list[dict[str, Any]] = [
        {"reasoningContent": {"reasoningText": {"text": "Check the weather.", "signature": "c2ln"}}},
        {"reasoningContent": {"redactedContent": "b3BhcXVl"}},
        {"toolUse": {"toolUseId": "tooluse_a", "name": "get_weather", "input": {"city": "Oslo"}}},
        {"toolUse": {"toolUseId": "tooluse_b", "name": "get_weather", "input": {"city": "Bergen"}}},
    ]
    message = completion(answer(content, "tool_use"))["choices"][0]["message"]
    assert message["content"] is None
    assert message["reasoning_content"] == "Check the weather."
    assert message["extra_content"] == {
        "bedrock": {
            "thinking_blocks": [
                {"type": "thinking", "thinking": "Check the weather.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "b3BhcXVl"},
            ]
        }
    }
    assert [call["id"] for call in message["tool_calls"]] == ["tooluse_a", "tooluse_b"]
    assert orjson.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    only_first = completion(answer(content, "tool_use"), parallel_tool_calls=False)["choices"][0]["message"]
    assert [call["id"] for call in only_first["tool_calls"]] == ["tooluse_a"]


@pytest.mark.parametrize("payload", [b"not json", b'{"output": {}}', b"[]"])
def test_an_answer_that_is_not_conversed_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedAnswer):
        ADAPTER.chat_result(payload, ctx())


def error(status: int, kind: str | None, message: str, *, in_body: bool = False) -> Any:
    headers = (
        {}
        if kind is None or in_body
        else {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    )
    body: dict[str, Any] = {"message": message}
    if in_body and kind is not None:
        body["__type"] = f"com.amazon.coral.service#{kind}"
    return ADAPTER.error_from(status, headers, orjson.dumps(body), ctx())


@pytest.mark.parametrize(
    ("status", "kind", "expected_status", "code", "trigger"),
    [
        (429, "ThrottlingException", 429, "rate_limit_exceeded", "rateLimit"),
        (429, "ModelNotReadyException", 503, "upstream_unavailable", "overloaded"),
        (503, "ServiceUnavailableException", 503, "upstream_unavailable", "overloaded"),
        (408, "ModelTimeoutException", 504, "upstream_timeout", "timeout"),
        (500, "InternalServerException", 502, "upstream_error", "serverError"),
        (424, "ModelErrorException", 502, "upstream_error", "serverError"),
        (404, "ResourceNotFoundException", 502, "upstream_not_found", None),
        (400, "ServiceQuotaExceededException", 429, "insufficient_quota", "quotaExhausted"),
        (400, "ValidationException", 400, None, None),
    ],
)
def test_exception_types_decide_the_fallback_trigger(
    status: int, kind: str, expected_status: int, code: str | None, trigger: str | None
) -> None:
    for in_body in (False, True):
        failure = error(status, kind, "something happened", in_body=in_body)
        assert (failure.status, failure.code, failure_class(failure)) == (expected_status, code, trigger)


@pytest.mark.parametrize(
    "message",
    [
        "Input is too long for requested model.",
        "The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum",
        "Malformed input request: too many input tokens",
        "The model returned the following errors: max_tokens + input tokens exceed the context window",
    ],
)
def test_a_prompt_too_long_is_a_context_length_error(message: str) -> None:
    failure = error(400, "ValidationException", message)
    assert (failure.status, failure.code, failure_class(failure)) == (400, "context_length_exceeded", "contextLength")


@pytest.mark.parametrize(
    "kind",
    [
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
    ],
)
def test_auth_failures_never_echo_what_aws_said(kind: str) -> None:
    """AWS's text for a bad signature quotes the canonical request (session token included)."""
    message = (
        "The request signature we calculated does not match. The Canonical String for this request should have been"
        " 'POST\n/model/x/converse\n\nx-amz-security-token:IQoJb3JpZ2luX2VjEXAMPLETOKEN\n' AKIAIOSFODNN7EXAMPLE"
    )
    failure = error(403, kind, message)
    assert failure.status == 502
    assert failure.code == "upstream_auth_failed"
    assert kind in failure.message
    assert "IQoJ" not in failure.message
    assert "AKIA" not in failure.message
    assert failure_class(failure) is None


def test_an_access_key_id_in_any_message_is_redacted() -> None:
    failure = error(500, "InternalServerException", "failed for AKIAIOSFODNN7EXAMPLE")
    assert "AKIA" not in failure.message


def test_a_proxys_text_answer_is_reported_by_status() -> None:
    failure = ADAPTER.error_from(502, {}, b"<html>Bad Gateway</html>", ctx())
    assert failure.code == "upstream_error"
    assert "Bad Gateway" in failure.message
