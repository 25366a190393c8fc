"""The Messages protocol as the relay sees it: request checks, the commit point, usage, and Anthropic's errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.ingress.anthropic_messages import MESSAGES, event_frame

USER = {"role": "user", "content": "hi"}


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude", "max_tokens": 2048, "messages": [USER], **fields}


def refusal(body: dict[str, Any], max_messages: int = 100) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        MESSAGES.check_request(body, max_messages)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    "body",
    [
        request(),
        request(system="Be brief."),
        request(system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]),
        request(thinking={"type": "enabled", "budget_tokens": 1024}),
        request(thinking={"type": "disabled"}),
        request(thinking={"type": "adaptive"}),
        request(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice={"type": "tool", "name": "f"}),
        request(tools=[{"type": "web_search_20250305", "name": "web_search"}], tool_choice={"type": "any"}),
        request(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}], stream=True),
    ],
)
def test_valid_requests_pass(body: dict[str, Any]) -> None:
    MESSAGES.check_request(body, 100)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "claude", "messages": [USER]}, "max_tokens"),
        ({"model": "claude", "messages": [USER], "thinking": {"type": "enabled", "budget_tokens": 1024}}, "max_tokens"),
        (request(max_tokens=0), "max_tokens"),
        (request(max_tokens=True), "max_tokens"),
        (request(model=5), "model"),
        (request(messages=[]), "messages"),
        (request(messages=[{"role": "system", "content": "x"}]), "messages"),
        (request(messages=[{"role": "user", "content": [{"text": "no type"}]}]), "messages"),
        (request(system=[{"type": "image"}]), "system"),
        (request(stream="yes"), "stream"),
        (request(thinking={"type": "enabled", "budget_tokens": 1023}), "thinking"),
        (request(thinking={"type": "enabled", "budget_tokens": 2048}), "max_tokens"),
        (request(thinking={"type": "sometimes"}), "thinking"),
        (request(tools={"name": "f"}), "tools"),
        (request(tools=[{"name": "f"}]), "tools"),
        (request(tool_choice={"type": "tool"}), "tool_choice"),
        (request(tool_choice={"type": "auto", "disable_parallel_tool_use": "yes"}), "tool_choice"),
        (request(stop_sequences="END"), "stop_sequences"),
    ],
)
def test_invalid_requests_are_refused_naming_the_field(body: dict[str, Any], param: str) -> None:
    assert refusal(body).param == param


def test_a_conversation_longer_than_the_bound_is_refused() -> None:
    error = refusal(request(messages=[USER] * 3), max_messages=2)
    assert error.code == "array_above_max_length"


def test_the_estimate_view_is_chat_shaped_without_image_data() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 100_000}}
    result = {"type": "tool_result", "tool_use_id": "t", "content": "sunny"}
    view = MESSAGES.estimate_view(
        request(system="sys", messages=[{"role": "user", "content": [image, {"type": "text", "text": "hi"}, result]}])
    )
    assert view["messages"] == [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [{"type": "image_url"}, {"type": "text", "text": "hi"}, {"type": "text", "text": "sunny"}],
        },
    ]
    assert view["max_tokens"] == 2048
    assert MESSAGES.estimate_view({"messages": "nonsense", "system": 5}) == {"messages": [], "max_tokens": None}


def frames(*events: dict[str, Any]) -> bytes:
    return b"".join(event_frame(event) for event in events)


START = {"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": {"input_tokens": 3}}}


@pytest.mark.parametrize(
    ("events", "commits"),
    [
        ([START, {"type": "ping"}], False),
        ([{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}], False),
        ([{"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}], False),
        ([{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "Hi"}}], True),
        ([{"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t"}}], True),
        ([{"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking"}}], True),
        ([START, {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}}], True),
        ([{"type": "message_delta", "delta": {"stop_reason": "end_turn"}}], False),
        ([{"type": "message_stop"}], True),
    ],
)
def test_the_commit_point_is_the_first_content(events: list[dict[str, Any]], commits: bool) -> None:
    assert MESSAGES.commits(frames(*events)) is commits


def test_a_frame_that_is_not_json_fails_the_attempt() -> None:
    with pytest.raises(MalformedAnswer):
        MESSAGES.commits(b"event: content_block_delta\ndata: {not json\n\n")


def test_refusal_is_read_from_the_stop_reason() -> None:
    assert MESSAGES.refused(frames({"type": "message_delta", "delta": {"stop_reason": "refusal"}}))
    assert not MESSAGES.refused(frames({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}))


def test_a_whole_answer_gives_openai_usage_with_cache_reads_in_the_prompt() -> None:
    usage = {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5}
    answer = {"type": "message", "content": [], "stop_reason": "end_turn", "usage": usage}
    read, refused = MESSAGES.read_answer(orjson.dumps(answer))
    assert read is not None
    assert (read["prompt_tokens"], read["completion_tokens"], read["total_tokens"]) == (115, 7, 122)
    assert read["prompt_tokens_details"] == {"cached_tokens": 100}
    assert not refused
    assert MESSAGES.read_answer(orjson.dumps({**answer, "stop_reason": "refusal"}))[1]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type": "error"}', b'{"type": "message", "content": "x"}'])
def test_anything_but_one_whole_message_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedAnswer):
        MESSAGES.read_answer(body)


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (GatewayError(400, "bad", param="max_tokens"), 400, "invalid_request_error"),
        (GatewayError(401, "who", type="authentication_error", code="invalid_api_key"), 401, "authentication_error"),
        (GatewayError(403, "no", code="model_not_allowed"), 403, "permission_error"),
        (GatewayError(404, "where", code="model_not_found"), 404, "not_found_error"),
        (GatewayError(413, "big", code="request_too_large"), 413, "request_too_large"),
        (GatewayError(429, "slow down", code="rate_limit_exceeded"), 429, "rate_limit_error"),
        (GatewayError(500, "oops", type="server_error"), 500, "api_error"),
        (GatewayError(502, "upstream", code="upstream_error"), 502, "api_error"),
        (GatewayError(503, "overloaded", code="upstream_unavailable"), 529, "overloaded_error"),
        (GatewayError(503, "no table", code="not_ready"), 503, "api_error"),
        (GatewayError(504, "slow", code="upstream_timeout"), 504, "timeout_error"),
    ],
)
def test_errors_take_anthropics_shape_and_status(error: GatewayError, status: int, kind: str) -> None:
    sent, body = MESSAGES.error_response(error)
    assert sent == status
    expected: dict[str, Any] = {"type": kind, "message": error.message}
    if error.code is not None:
        expected["details"] = {"error_code": error.code}
    assert orjson.loads(body) == {"type": "error", "error": expected}


def test_the_in_band_error_is_an_error_event() -> None:
    frame = MESSAGES.error_frame(GatewayError(502, "cut", code="upstream_truncated"))
    name, data = frame.removesuffix(b"\n\n").split(b"\n")
    assert name == b"event: error"
    assert orjson.loads(data.removeprefix(b"data: ")) == {
        "type": "error",
        "error": {"type": "api_error", "message": "cut", "details": {"error_code": "upstream_truncated"}},
    }
