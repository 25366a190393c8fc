"""Streamed Gemini answers (``streamGenerateContent?alt=sse``) translated to OpenAI chunks."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, UpstreamStreamError
from modelyard_proxy.providers.openai_chat_to_gemini.adapter import GeminiAdapter
from modelyard_routing import Credential
from modelyard_routing.specs import Provider

CREDENTIAL = Credential(
    id="gemini-main",
    provider=Provider.GEMINI,
    base_url="https://generativelanguage.googleapis.com/v1beta",
    api_key=SecretStr("AIzaSyTestKey0000000000000000000000000"),
)
RESPONSE_ID = "mbpYaO6fLfKQ1dkPxvvE0Qk"
FINAL_USAGE = {
    "promptTokenCount": 12,
    "candidatesTokenCount": 5,
    "thoughtsTokenCount": 30,
    "totalTokenCount": 47,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
}


def ctx(include_usage: bool = False) -> CallContext:
    return CallContext(
        public_model="smart",
        upstream_model="gemini-2.5-flash",
        credential=CREDENTIAL,
        stream=True,
        include_usage=include_usage,
        created=1755133856,
        completion_id="chatcmpl-local",
    )


def gemini_chunk(parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, Any] | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk = {
        "candidates": [candidate],
        "usageMetadata": usage or {"promptTokenCount": 12, "totalTokenCount": 12},
        "modelVersion": "gemini-2.5-flash",
        "responseId": RESPONSE_ID,
    }
    return b"data: " + orjson.dumps(chunk) + b"\r\n\r\n"  # Gemini frames its events with CRLF


TEXT_STREAM = (
    gemini_chunk([{"text": "Hel"}])
    + gemini_chunk([{"text": "lo"}])
    + gemini_chunk([{"text": "!", "thoughtSignature": "c2ln"}], "STOP", FINAL_USAGE)
)
TOOL_STREAM = (
    gemini_chunk([{"text": "Looking up Oslo.", "thought": True}])
    + gemini_chunk(
        [
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2ln"},
            {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}},
        ]
    )
    + gemini_chunk([{"text": ""}], "STOP", FINAL_USAGE)
)


def run(raw: bytes, context: CallContext, cuts: list[int] | None = None) -> bytes:
    """Feed ``raw`` through the SSE decoder in pieces cut at ``cuts`` and the translator; return the output."""
    translator = GeminiAdapter().chat_stream(context)
    decoder = SSEDecoder()
    bounds = [0, *sorted(cuts or []), len(raw)]
    out = b""
    for start, end in itertools.pairwise(bounds):
        for event in decoder.feed(raw[start:end]):
            out += translator.feed(event)
    for event in decoder.close():
        out += translator.feed(event)
    return out + translator.finish()


def frames(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None, **usage: Any) -> dict[str, Any]:
    return {
        "id": RESPONSE_ID,
        "object": "chat.completion.chunk",
        "created": 1755133856,
        "model": "gemini-2.5-flash",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **usage,
    }


OPENAI_USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 35,
    "total_tokens": 47,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 30},
}


def test_text_stream_without_usage() -> None:
    assert run(TEXT_STREAM, ctx()) == frames(
        chunk({"role": "assistant", "content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({"content": "!"}),
        chunk({}, "stop"),
    )


def test_text_stream_with_usage() -> None:
    translator_ctx = ctx(include_usage=True)
    usage_chunk = {**chunk({}), "choices": [], "usage": OPENAI_USAGE}
    assert run(TEXT_STREAM, translator_ctx) == frames(
        chunk({"role": "assistant", "content": "Hel"}, usage=None),
        chunk({"content": "lo"}, usage=None),
        chunk({"content": "!"}, usage=None),
        chunk({}, "stop", usage=None),
        usage_chunk,
    )


def test_usage_is_recorded_even_when_the_client_did_not_ask_for_it() -> None:
    translator = GeminiAdapter().chat_stream(ctx())
    for event in SSEDecoder().feed(TEXT_STREAM):
        translator.feed(event)
    translator.finish()
    assert translator.usage == OPENAI_USAGE


#: The first call of ``TOOL_STREAM`` as the client gets it.
OSLO_CALL = {
    "index": 0,
    "id": f"call_{RESPONSE_ID}_0",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    "extra_content": {"google": {"thought_signature": "c2ln"}},
}


def test_thoughts_and_whole_function_calls() -> None:
    assert run(TOOL_STREAM, ctx()) == frames(
        chunk({"role": "assistant", "reasoning_content": "Looking up Oslo."}),
        chunk(
            {
                "tool_calls": [
                    OSLO_CALL,
                    {
                        "index": 1,
                        "id": f"call_{RESPONSE_ID}_1",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz":"CET"}'},
                    },
                ]
            }
        ),
        chunk({}, "tool_calls"),
    )


def test_without_parallel_tool_calls_only_the_first_call_is_streamed() -> None:
    second_call = gemini_chunk([{"functionCall": {"name": "get_time", "args": {}}}])
    finish = gemini_chunk([{"text": ""}], "STOP", FINAL_USAGE)
    raw = TOOL_STREAM.removesuffix(finish) + second_call + finish  # a third call, in an event of its own
    assert run(raw, dataclasses.replace(ctx(), parallel_tool_calls=False)) == frames(
        chunk({"role": "assistant", "reasoning_content": "Looking up Oslo."}),
        chunk({"tool_calls": [OSLO_CALL]}),
        chunk({}, "tool_calls"),
    )


def test_lf_framed_stream_reads_the_same() -> None:
    assert run(TEXT_STREAM.replace(b"\r\n", b"\n"), ctx()) == run(TEXT_STREAM, ctx())


def test_finish_reason_and_usage_may_arrive_in_a_chunk_of_their_own() -> None:
    tail = {"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}]}
    usage_only = {"usageMetadata": FINAL_USAGE, "responseId": RESPONSE_ID}
    raw = gemini_chunk([{"text": "Hel"}]) + b"data: %b\n\ndata: %b\n\n" % (orjson.dumps(tail), orjson.dumps(usage_only))
    assert run(raw, ctx()) == frames(chunk({"role": "assistant", "content": "Hel"}), chunk({}, "length"))


def test_blocked_prompt_finishes_with_content_filter() -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": FINAL_USAGE, "responseId": RESPONSE_ID}
    raw = b"data: " + orjson.dumps(blocked) + b"\r\n\r\n"
    assert run(raw, ctx()) == frames(chunk({"role": "assistant"}, "content_filter"))


def test_stream_cut_before_a_finish_reason_is_an_error() -> None:
    truncated = gemini_chunk([{"text": "Hel"}]) + gemini_chunk([{"text": "lo"}])
    with pytest.raises(UpstreamStreamError) as caught:
        run(truncated, ctx())
    assert caught.value.status == 502
    assert caught.value.type == "upstream_error"
    assert "stream ended before a finish reason" in caught.value.message


def test_empty_stream_is_an_error() -> None:
    with pytest.raises(UpstreamStreamError):
        run(b"", ctx())


def test_in_band_error_is_raised_with_its_classification() -> None:
    error = {
        "error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}
    }
    raw = gemini_chunk([{"text": "Hel"}]) + b"data: " + orjson.dumps(error) + b"\r\n\r\n"
    with pytest.raises(UpstreamStreamError) as caught:
        run(raw, ctx())
    assert (caught.value.status, caught.value.code) == (503, "upstream_unavailable")
    assert "overloaded" in caught.value.message


@pytest.mark.parametrize("data", [b'{"candidates": [', b"<html>", b"42"])
def test_malformed_data_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedAnswer):  # the relay reports it for the credential: retried, or in-band
        run(b"data: " + data + b"\r\n\r\n", ctx())


@given(
    stream=st.sampled_from([TEXT_STREAM, TOOL_STREAM]),
    include_usage=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=len(TOOL_STREAM)), max_size=12),
)
def test_any_split_of_the_upstream_bytes_gives_the_same_output(
    stream: bytes, include_usage: bool, cuts: list[int]
) -> None:
    context = ctx(include_usage)
    cuts = [min(cut, len(stream)) for cut in cuts]
    assert run(stream, context, cuts) == run(stream, context)
