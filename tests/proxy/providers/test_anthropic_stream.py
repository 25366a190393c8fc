"""Anthropic Messages streams translated to OpenAI chunk streams."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from modelyard_proxy.base.sse import SSEDecoder, SSEEvent
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, StreamTranslator, UpstreamStreamError
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.adapter import AnthropicAdapter
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.json_answer import JSON_TOOL
from modelyard_routing import Credential, Provider

CREDENTIAL = Credential(
    id="claude-prod",
    provider=Provider.ANTHROPIC,
    base_url="https://api.anthropic.com/v1",
    api_key=SecretStr("sk-ant-api03-0123456789abcdefghij"),
)
MSG_ID = "msg_01XFDUDYJgAACzvnptvVoYEL"
MODEL = "claude-sonnet-4-5-20250929"


def translator(include_usage: bool = False) -> StreamTranslator:
    ctx = CallContext("claude", "claude-sonnet-4-5", CREDENTIAL, True, include_usage, 1_700_000_000, "chatcmpl-1")
    return AnthropicAdapter().chat_stream(ctx)


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps({"type": name, **data}) + b"\n\n"


def block_start(index: int, block: dict[str, Any]) -> bytes:
    return sse("content_block_start", {"index": index, "content_block": block})


def block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return sse("content_block_delta", {"index": index, "delta": delta})


def block_stop(index: int) -> bytes:
    return sse("content_block_stop", {"index": index})


MESSAGE_START = sse(
    "message_start",
    {
        "message": {
            "id": MSG_ID,
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 472,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 2048,
                "output_tokens": 2,
                "service_tier": "standard",
            },
        }
    },
)
PING = b'event: ping\ndata: {"type": "ping"}\n\n'
MESSAGE_STOP = sse("message_stop", {})


def message_delta(stop_reason: str | None, **usage: int) -> bytes:
    return sse("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": usage})


# Thinking, then text, then two tool calls, as Claude streams them with interleaved thinking off.
BODY = [
    MESSAGE_START,
    PING,
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    block_delta(0, {"type": "thinking_delta", "thinking": "Two lookups; "}),
    block_delta(0, {"type": "thinking_delta", "thinking": "call both."}),
    block_delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}),
    block_stop(0),
    block_start(1, {"type": "text", "text": ""}),
    block_delta(1, {"type": "text_delta", "text": "Checking "}),
    block_delta(1, {"type": "text_delta", "text": "both."}),
    block_stop(1),
    block_start(2, {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}),
    block_delta(2, {"type": "input_json_delta", "partial_json": ""}),
    block_delta(2, {"type": "input_json_delta", "partial_json": '{"city": '}),
    block_delta(2, {"type": "input_json_delta", "partial_json": '"Oslo"}'}),
    block_stop(2),
    block_start(3, {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {}}),
    block_delta(3, {"type": "input_json_delta", "partial_json": '{"city": "Bergen"}'}),
    block_stop(3),
    message_delta("tool_use", output_tokens=89),
    MESSAGE_STOP,
]


def run(body: list[bytes], include_usage: bool = False, splits: list[int] | None = None) -> bytes:
    """The client's bytes for an upstream body, cut into reads at ``splits``."""
    data = b"".join(body)
    cuts = [0, *sorted(splits or []), len(data)]
    stream, decoder = translator(include_usage), SSEDecoder()
    out = b""
    for start, end in itertools.pairwise(cuts):
        for event in decoder.feed(data[start:end]):
            out += stream.feed(event)
    for event in decoder.close():
        out += stream.feed(event)
    return out + stream.finish()


def frames(output: bytes) -> list[Any]:
    """Each ``data:`` payload, parsed; ``[DONE]`` kept as a string."""
    assert output.endswith(b"\n\n")
    payloads = [f.removeprefix(b"data: ") for f in output[:-2].split(b"\n\n")]
    return [p.decode() if p == b"[DONE]" else orjson.loads(p) for p in payloads]


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": MSG_ID,
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def call_start(index: int, call_id: str) -> dict[str, Any]:
    function = {"name": "get_weather", "arguments": ""}
    return {"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": function}]}


def arguments(index: int, fragment: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}


def signed(*blocks: dict[str, Any]) -> dict[str, Any]:
    """The delta that hands the client signed thinking blocks."""
    return {"extra_content": {"anthropic": {"thinking_blocks": list(blocks)}}}


SIGNED_BLOCK = {
    "index": 0,
    "type": "thinking",
    "thinking": "Two lookups; call both.",
    "signature": "EqQBCgIYAhIM1gbcDa9GJwZA",
}
EXPECTED = [
    chunk({"role": "assistant", "reasoning_content": "Two lookups; "}),
    chunk({"reasoning_content": "call both."}),
    chunk(signed(SIGNED_BLOCK)),
    chunk({"content": "Checking "}),
    chunk({"content": "both."}),
    chunk(call_start(0, "toolu_01")),
    chunk(arguments(0, '{"city": ')),
    chunk(arguments(0, '"Oslo"}')),
    chunk(call_start(1, "toolu_02")),
    chunk(arguments(1, '{"city": "Bergen"}')),
    chunk({}, "tool_calls"),
]
USAGE = {
    "prompt_tokens": 472 + 2048,
    "completion_tokens": 89,
    "total_tokens": 472 + 2048 + 89,
    "prompt_tokens_details": {"cached_tokens": 2048},
}


def test_full_stream_without_usage() -> None:
    assert frames(run(BODY)) == [*EXPECTED, "[DONE]"]


def test_full_stream_with_usage() -> None:
    usage_chunk = {key: value for key, value in chunk({}).items() if key != "choices"}
    expected = [{**c, "usage": None} for c in EXPECTED] + [{**usage_chunk, "choices": [], "usage": USAGE}, "[DONE]"]
    assert frames(run(BODY, include_usage=True)) == expected


def test_usage_is_set_not_added_and_reported() -> None:
    stream = translator()
    body = [MESSAGE_START, message_delta(None, output_tokens=10), message_delta("end_turn", output_tokens=25)]
    for event in SSEDecoder().feed(b"".join([*body, sse("message_stop", {})])):
        stream.feed(event)
    assert stream.usage == {
        "prompt_tokens": 2520,
        "completion_tokens": 25,
        "total_tokens": 2545,
        "prompt_tokens_details": {"cached_tokens": 2048},
    }


def test_message_delta_input_counts_override_message_start() -> None:
    body = [MESSAGE_START, message_delta("max_tokens", input_tokens=500, output_tokens=7), MESSAGE_STOP]
    output = frames(run(body, include_usage=True))
    assert output[-3]["choices"][0]["finish_reason"] == "length"
    assert output[-2]["usage"]["prompt_tokens"] == 500 + 2048


def test_tool_without_arguments_gets_an_empty_object() -> None:
    body = [
        MESSAGE_START,
        block_start(0, {"type": "tool_use", "id": "toolu_09", "name": "get_weather", "input": {}}),
        block_stop(0),
        message_delta("tool_use", output_tokens=9),
        MESSAGE_STOP,
    ]
    assert frames(run(body)) == [
        chunk({"role": "assistant", **call_start(0, "toolu_09")}),
        chunk(arguments(0, "{}")),
        chunk({}, "tool_calls"),
        "[DONE]",
    ]


def test_unknown_events_and_blocks_are_ignored() -> None:
    body = [
        MESSAGE_START,
        block_start(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        block_delta(1, {"type": "citations_delta", "citation": {"type": "char_location"}}),
        block_delta(1, {"type": "text_delta", "text": "ok"}),
        block_stop(1),
        sse("some_future_event", {"detail": 1}),
        message_delta("end_turn", output_tokens=3),
        MESSAGE_STOP,
        PING,
    ]
    assert frames(run(body)) == [chunk({"role": "assistant", "content": "ok"}), chunk({}, "stop"), "[DONE]"]


def test_redacted_and_signed_thinking_reach_the_client_whole_and_numbered() -> None:
    body = [
        MESSAGE_START,
        block_start(0, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"}),
        block_stop(0),
        block_start(1, {"type": "thinking", "thinking": "", "signature": ""}),
        block_delta(1, {"type": "thinking_delta", "thinking": "Fine."}),
        block_delta(1, {"type": "signature_delta", "signature": "EqQB"}),
        block_stop(1),
        block_start(2, {"type": "thinking", "thinking": "", "signature": ""}),
        block_delta(2, {"type": "thinking_delta", "thinking": "never signed"}),
        block_stop(2),
        message_delta("end_turn", output_tokens=3),
        MESSAGE_STOP,
    ]
    assert frames(run(body)) == [
        chunk({"role": "assistant", **signed({"index": 0, "type": "redacted_thinking", "data": "EmwKAhgBEgy3"})}),
        chunk({"reasoning_content": "Fine."}),
        chunk(signed({"index": 1, "type": "thinking", "thinking": "Fine.", "signature": "EqQB"})),
        chunk({"reasoning_content": "never signed"}),  # an unsigned block cannot be replayed, so is not offered
        chunk({}, "stop"),
        "[DONE]",
    ]


def json_answer(*fragments: str) -> list[bytes]:
    """A stream that answers by calling the JSON-mode tool with ``fragments`` as its input."""
    start = block_start(0, {"type": "tool_use", "id": "toolu_07", "name": JSON_TOOL, "input": {}})
    deltas = [block_delta(0, {"type": "input_json_delta", "partial_json": f}) for f in fragments]
    return [MESSAGE_START, start, *deltas, block_stop(0), message_delta("tool_use", output_tokens=9), MESSAGE_STOP]


def test_json_mode_answer_streams_as_content_and_stops() -> None:
    assert frames(run(json_answer("", '{"city": ', '"Oslo"}'))) == [
        chunk({"role": "assistant", "content": '{"city": '}),
        chunk({"content": '"Oslo"}'}),
        chunk({}, "stop"),
        "[DONE]",
    ]


def test_empty_json_mode_answer_is_an_empty_object() -> None:
    assert frames(run(json_answer())) == [chunk({"role": "assistant", "content": "{}"}), chunk({}, "stop"), "[DONE]"]


@pytest.mark.parametrize(
    ("kind", "message", "status", "code"),
    [
        ("overloaded_error", "Overloaded", 503, "upstream_unavailable"),
        ("rate_limit_error", "Rate limited", 429, "rate_limit_exceeded"),
        ("api_error", "Internal server error", 502, "upstream_error"),
        ("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum", 400, "context_length_exceeded"),
    ],
)
def test_in_band_error_is_raised(kind: str, message: str, status: int, code: str) -> None:
    stream = translator()
    error_event = b"event: error\ndata: " + orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    events = SSEDecoder().feed(
        b"".join([MESSAGE_START, block_start(0, {"type": "text", "text": ""}), error_event]) + b"\n\n"
    )
    assert stream.feed(events[0]) == b""
    assert stream.feed(events[1]) == b""
    with pytest.raises(UpstreamStreamError) as caught:
        stream.feed(events[2])
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (status, code, False)
    assert message.split(":", maxsplit=1)[0] in caught.value.message
    with pytest.raises(UpstreamStreamError) as again:
        stream.finish()
    assert again.value is caught.value


def test_truncated_stream_fails_at_finish() -> None:
    stream = translator()
    for event in SSEDecoder().feed(b"".join(BODY[:-2])):
        stream.feed(event)
    with pytest.raises(UpstreamStreamError) as caught:
        stream.finish()
    assert (caught.value.status, caught.value.type) == (502, "upstream_error")
    assert "ended before message_stop" in caught.value.message


@pytest.mark.parametrize("data", [b'{"type": "content_block_delta", "index": 0', b"[1, 2]", b"\xff"])
def test_malformed_event_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedAnswer):  # the relay reports it for the credential: retried, or in-band
        translator().feed(SSEEvent("content_block_delta", data))


def test_events_without_names_are_dispatched_on_type() -> None:
    body = b"".join(BODY).replace(b"event: ", b"x-ignored: ")
    assert frames(run([body])) == [*EXPECTED, "[DONE]"]


@given(data=st.data(), include_usage=st.booleans(), crlf=st.booleans())
def test_any_read_boundaries_give_the_same_output(data: st.DataObject, include_usage: bool, crlf: bool) -> None:
    body = b"".join(BODY)
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    splits = data.draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=40))
    assert run([body], include_usage, splits) == run(BODY, include_usage)
