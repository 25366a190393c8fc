"""ConverseStream's event stream → OpenAI chunks, fed with the simulator's frames split at every byte boundary."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import UpstreamStreamError
from modelyard_simulator.eventstream import EventFrame, encode_frame
from tests.providers_bedrock.common import ADAPTER, ctx


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return EventFrame(orjson.dumps(payload), event=kind).encode(b"\n")


def exception(kind: str, message: str) -> bytes:
    return EventFrame(orjson.dumps({"message": message}), event=kind, exception=True).encode(b"\n")


def delta(index: int, value: dict[str, Any]) -> bytes:
    return event("contentBlockDelta", {"delta": value, "contentBlockIndex": index})


def stop(index: int) -> bytes:
    return event("contentBlockStop", {"contentBlockIndex": index})


def ending(reason: str = "end_turn", **usage: int) -> bytes:
    counts = {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13, **usage}
    return event("messageStop", {"stopReason": reason}) + event("metadata", {"usage": counts, "metrics": {}})


START = event("messageStart", {"role": "assistant"})
TEXT = START + delta(0, {"text": "Hello"}) + delta(0, {"text": " world"}) + stop(0)


def run(body: bytes, split: int | None = None, **extra: Any) -> list[dict[str, Any]]:
    """The chunks a client gets, the body delivered in reads of ``split`` bytes (whole when None)."""
    translator = ADAPTER.chat_stream(ctx(stream=True, include_usage=True, **extra))
    decoder = SSEDecoder()
    size = split or len(body)
    frames = b"".join(translator.translate(decoder, body[i : i + size]) for i in range(0, len(body), size))
    frames += translator.close(decoder)
    assert frames.endswith(b"data: [DONE]\n\n")
    return [orjson.loads(block[6:]) for block in frames.split(b"\n\n") if block and block != b"data: [DONE]"]


def test_the_simulators_frames_are_what_botocore_decodes() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(event("contentBlockDelta", {"delta": {"text": "Hi"}, "contentBlockIndex": 0}))
    buffer.add_data(exception("throttlingException", "slow down"))
    first, second = list(buffer)
    assert first.to_response_dict()["headers"] == {
        ":message-type": "event",
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
    }
    assert orjson.loads(first.payload) == {"delta": {"text": "Hi"}, "contentBlockIndex": 0}
    assert second.to_response_dict()["headers"][":message-type"] == "exception"
    assert second.to_response_dict()["headers"][":exception-type"] == "throttlingException"


@pytest.mark.parametrize("split", [None, 1, 7])
def test_text_with_usage(split: int | None) -> None:
    chunks = run(TEXT + ending(cacheReadInputTokens=3), split)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": "Hello"}
    assert "".join(d.get("content", "") for d in deltas) == "Hello world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 4,
        "total_tokens": 16,
        "prompt_tokens_details": {"cached_tokens": 3},
    }


def tool(index: int, name: str, call_id: str, *fragments: str) -> bytes:
    start = {"start": {"toolUse": {"toolUseId": call_id, "name": name}}, "contentBlockIndex": index}
    deltas = b"".join(delta(index, {"toolUse": {"input": fragment}}) for fragment in fragments)
    return event("contentBlockStart", start) + deltas + stop(index)


def calls_of(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls", []):
                entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.get("id") or ""
                entry["name"] += call.get("function", {}).get("name") or ""
                entry["arguments"] += call.get("function", {}).get("arguments") or ""
    return calls


def test_tool_calls_stream_with_their_own_numbering() -> None:
    body = START + delta(0, {"text": "Checking."}) + stop(0)
    body += tool(1, "get_weather", "tooluse_a", '{"city"', ': "Oslo"}') + tool(2, "get_time", "tooluse_b")
    chunks = run(body + ending("tool_use"))
    assert calls_of(chunks) == {
        0: {"id": "tooluse_a", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        1: {"id": "tooluse_b", "name": "get_time", "arguments": "{}"},
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert list(calls_of(run(body + ending("tool_use"), parallel_tool_calls=False))) == [0]


def test_reasoning_streams_and_its_signed_block_arrives_whole() -> None:
    body = (
        START + delta(0, {"reasoningContent": {"text": "Let me "}}) + delta(0, {"reasoningContent": {"text": "think."}})
    )
    body += delta(0, {"reasoningContent": {"signature": "c2ln"}}) + stop(0)
    body += delta(1, {"reasoningContent": {"redactedContent": "b3BhcXVl"}}) + stop(1)
    body += delta(2, {"text": "Done."}) + stop(2)
    deltas = [c["choices"][0]["delta"] for c in run(body + ending()) if c["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Let me think."
    kept = [d["extra_content"]["bedrock"]["thinking_blocks"] for d in deltas if "extra_content" in d]
    assert kept == [
        [{"index": 0, "type": "thinking", "thinking": "Let me think.", "signature": "c2ln"}],
        [{"index": 1, "type": "redacted_thinking", "data": "b3BhcXVl"}],
    ]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("throttlingException", 429, "rate_limit_exceeded"),
        ("serviceUnavailableException", 503, "upstream_unavailable"),
        ("modelStreamErrorException", 502, "upstream_error"),
        ("internalServerException", 502, "upstream_error"),
        ("validationException", 400, None),
    ],
)
def test_exception_frames_are_in_band_failures(kind: str, status: int, code: str | None) -> None:
    translator = ADAPTER.chat_stream(ctx(stream=True))
    decoder = SSEDecoder()
    assert translator.translate(decoder, START + delta(0, {"text": "Hel"}))
    with pytest.raises(UpstreamStreamError) as caught:
        translator.translate(decoder, exception(kind, "it failed"))
    assert (caught.value.status, caught.value.code) == (status, code)
    with pytest.raises(UpstreamStreamError):
        translator.close(decoder)  # the failure is reported again if the relay still closes the stream


def test_an_error_frame_is_a_failure_too() -> None:
    headers = {":message-type": "error", ":error-code": "ThrottlingException", ":error-message": "slow down"}
    translator = ADAPTER.chat_stream(ctx(stream=True))
    with pytest.raises(UpstreamStreamError) as caught:
        translator.translate(SSEDecoder(), encode_frame(headers, b""))
    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("body", "missing"),
    [(TEXT, "messageStop"), (TEXT + event("messageStop", {"stopReason": "end_turn"}), "metadata")],
)
def test_a_stream_that_stops_early_is_a_failure(body: bytes, missing: str) -> None:
    translator = ADAPTER.chat_stream(ctx(stream=True))
    decoder = SSEDecoder()
    translator.translate(decoder, body)
    with pytest.raises(UpstreamStreamError) as caught:
        translator.close(decoder)
    assert missing in caught.value.message
    assert caught.value.status == 502


def test_a_corrupted_frame_is_malformed() -> None:
    frame = bytearray(TEXT)
    frame[20] ^= 0xFF
    with pytest.raises(MalformedAnswer):
        ADAPTER.chat_stream(ctx(stream=True)).translate(SSEDecoder(), bytes(frame))


def test_sse_where_frames_were_expected_is_malformed() -> None:
    with pytest.raises(MalformedAnswer):
        ADAPTER.chat_stream(ctx(stream=True)).translate(SSEDecoder(), b"data: " + b"x" * 40 + b"\n\n")
