"""The Responses ingress protocol: request checks, the stateless refusals, commit point, usage, error shapes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.ingress.openai_responses import RESPONSES
from modelyard_proxy.relay import estimate


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "input": "hello", **fields}


def event(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\n".encode() + b"data: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


def refusal_of(request: dict[str, Any]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        RESPONSES.check_request(request, max_messages=100)
    return caught.value


def test_a_string_or_an_item_list_is_a_valid_input() -> None:
    RESPONSES.check_request(body(), max_messages=100)
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ]
    RESPONSES.check_request(body(input=items, instructions="be brief", max_output_tokens=10), max_messages=100)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": None}, "input"),
        ({"input": []}, "input"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input"),
        ({"input": [{"role": "user", "content": [{"text": "no type"}]}]}, "input"),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input"),
        ({"model": 3}, "model"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"tools": [{"type": "function"}]}, "tools"),
        ({"text": {"format": {"type": "xml"}}}, "text.format"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"instructions": ["a"]}, "instructions"),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_field(fields: dict[str, Any], param: str) -> None:
    error = refusal_of(body(**fields))
    assert error.status == 400
    assert error.param == param


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
    ],
)
def test_state_the_gateway_does_not_keep_is_refused_with_guidance(fields: dict[str, Any], param: str) -> None:
    error = refusal_of(body(**fields))
    assert (error.status, error.code, error.param) == (400, "unsupported_parameter", param)
    assert "whole conversation in 'input'" in error.message
    assert "'store': false" in error.message


@pytest.mark.parametrize(
    "fields",
    [
        {"previous_response_id": "resp_123"},
        {"store": True},
        {"input": [{"role": "user", "content": "hi"}, {"type": "item_reference", "id": "msg_1"}]},
    ],
)
def test_conversations_the_gateway_keeps_pass_the_protocol_checks(fields: dict[str, Any]) -> None:
    RESPONSES.check_request(body(**fields), max_messages=100)


def test_store_false_is_accepted() -> None:
    RESPONSES.check_request(body(store=False, background=False), max_messages=100)


def test_an_input_longer_than_the_bound_is_refused() -> None:
    error = refusal_of(body(input=[{"role": "user", "content": "x"}] * 101))
    assert (error.code, error.param) == ("array_above_max_length", "input")


def test_the_estimate_view_counts_instructions_items_tools_and_the_output_cap() -> None:
    request = body(
        instructions="x" * 400,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "y" * 400}, {"type": "input_image"}]}],
        tools=[{"type": "function", "name": "f"}],
        max_output_tokens=77,
    )
    view = RESPONSES.estimate_view(request)
    assert estimate.chat_tokens_at_least(view) == 200
    assert estimate.chat_input_tokens(view) > 800 + estimate.IMAGE_TOKENS
    assert estimate.output_tokens(view, 1000) == 77


def test_lifecycle_events_do_not_commit_content_does() -> None:
    assert not RESPONSES.commits(event("response.created", response={}) + event("response.in_progress", response={}))
    assert not RESPONSES.commits(event("response.output_item.added", output_index=0, item={"type": "message"}))
    assert RESPONSES.commits(event("response.output_text.delta", delta="Hi"))
    assert RESPONSES.commits(event("response.output_item.added", item={"type": "function_call"}))
    assert RESPONSES.commits(event("response.function_call_arguments.delta", delta="{"))
    assert RESPONSES.commits(event("response.completed", response={}))


def test_a_frame_that_is_not_json_fails_the_commit_check() -> None:
    with pytest.raises(ValueError, match=r"."):
        RESPONSES.commits(b"event: response.output_text.delta\ndata: {cut\n\n")


def test_refusals_are_seen_in_streams_and_whole_answers() -> None:
    assert RESPONSES.refused(event("response.refusal.delta", delta="I can't"))
    filtered = {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}, "output": []}
    assert RESPONSES.refused(event("response.incomplete", response=filtered))
    assert not RESPONSES.refused(event("response.output_text.delta", delta="fine"))
    answer = {"object": "response", "output": [{"type": "message", "content": [{"type": "refusal", "refusal": "no"}]}]}
    assert RESPONSES.read_answer(orjson.dumps(answer)) == (None, True)


def test_whole_answer_usage_is_converted_to_chat_shape() -> None:
    usage = {
        "input_tokens": 11,
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 18,
    }
    answer = {"object": "response", "status": "completed", "output": [], "usage": usage}
    assert RESPONSES.read_answer(orjson.dumps(answer)) == (
        {
            "prompt_tokens": 11,
            "completion_tokens": 7,
            "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
        False,
    )


@pytest.mark.parametrize("answer", [b"{}", b'{"object":"chat.completion","choices":[]}', b"[1]"])
def test_anything_but_a_whole_response_is_unreadable(answer: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        RESPONSES.read_answer(answer)


def test_errors_use_openais_shape() -> None:
    error = GatewayError(429, "slow down", type="rate_limit_error", code="rate_limit_exceeded")
    status, payload = RESPONSES.error_response(error)
    assert status == 429
    assert orjson.loads(payload) == {
        "error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}
    }


def test_the_error_frame_is_openais_error_event() -> None:
    """The typed event's own fields, and the nested ``error`` the API sends (the SDKs raise on it)."""
    frame = RESPONSES.error_frame(GatewayError(502, "upstream cut", type="upstream_error", code="upstream_truncated"))
    assert frame.startswith(b"event: error\n")
    payload = orjson.loads(frame.split(b"data: ", 1)[1])
    assert (payload["type"], payload["code"], payload["message"]) == ("error", "upstream_truncated", "upstream cut")
    assert payload["error"] == {
        "message": "upstream cut",
        "type": "upstream_error",
        "param": None,
        "code": "upstream_truncated",
    }
