"""Messages clients to Anthropic: the body and events pass through, watched for usage, errors and cuts."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.providers.anthropic_messages_to_anthropic_messages.adapter import AnthropicPassthroughAdapter
from modelyard_proxy.providers.base import CallContext, Inbound, UpstreamStreamError
from modelyard_proxy.providers.schemas import Schema
from modelyard_routing import Credential, Provider

CREDENTIAL = Credential(
    id="claude-prod",
    provider=Provider.ANTHROPIC,
    base_url="https://api.anthropic.com/v1",
    api_key=SecretStr("sk-ant-api03-0123456789abcdefghij"),
    headers={"anthropic-workspace": "w1"},
)
ADAPTER = AnthropicPassthroughAdapter()


def context(**forwarded: str) -> CallContext:
    return CallContext("claude", "claude-sonnet-4-5", CREDENTIAL, stream=True, forwarded_headers=forwarded)


def inbound(body: dict[str, Any], raw: bytes | None = None) -> Inbound:
    return Inbound(body, raw or orjson.dumps(body), Schema.ANTHROPIC_MESSAGES)


def test_the_body_goes_upstream_with_only_the_model_swapped() -> None:
    body = {
        "model": "claude",
        "max_tokens": 10,
        "top_k": 3,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "x"}}]}],
    }
    call = ADAPTER.chat_call(inbound(body), context())
    assert call.url == "https://api.anthropic.com/v1/messages"
    assert orjson.loads(call.body) == {**body, "model": "claude-sonnet-4-5"}


def test_a_body_naming_the_upstream_model_goes_as_its_bytes() -> None:
    raw = b'{"model":"claude-sonnet-4-5",  "max_tokens":10,"messages":[]}'
    call = ADAPTER.chat_call(inbound(orjson.loads(raw), raw), context())
    assert call.body is raw


def test_headers_carry_the_credential_and_the_clients_version_and_betas() -> None:
    call = ADAPTER.chat_call(
        inbound({"model": "claude"}), context(**{"anthropic-version": "2024-01-01", "anthropic-beta": "b1,b2"})
    )
    assert call.headers["x-api-key"] == "sk-ant-api03-0123456789abcdefghij"
    assert call.headers["anthropic-version"] == "2024-01-01"
    assert call.headers["anthropic-beta"] == "b1,b2"
    assert call.headers["anthropic-workspace"] == "w1"
    default = ADAPTER.chat_call(inbound({"model": "claude"}), context()).headers
    assert default["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in default


def test_a_whole_answer_comes_back_untouched() -> None:
    payload = b'{"type":"message","content":[],"extra":"kept"}'
    assert ADAPTER.chat_result(payload, context()) is payload


def test_embeddings_are_refused() -> None:
    with pytest.raises(GatewayError) as caught:
        ADAPTER.embeddings_call(inbound({"model": "claude", "input": "x"}), context())
    assert caught.value.code == "unsupported_endpoint"


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps({"type": name, **data}) + b"\n\n"


STREAM = [
    sse("message_start", {"message": {"id": "msg_1", "usage": {"input_tokens": 10, "cache_read_input_tokens": 90}}}),
    sse("ping", {}),
    sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
    sse("some_future_event", {"payload": [1, 2]}),
    sse("content_block_stop", {"index": 0}),
    sse("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}}),
    sse("message_stop", {}),
]


def test_every_event_passes_through_unchanged_and_usage_is_read() -> None:
    translator = ADAPTER.chat_stream(context())
    decoder = SSEDecoder()
    out = b"".join(translator.translate(decoder, piece) for piece in STREAM) + translator.close(decoder)
    assert out == b"".join(STREAM)
    assert translator.usage == {
        "prompt_tokens": 100,
        "completion_tokens": 4,
        "total_tokens": 104,
        "prompt_tokens_details": {"cached_tokens": 90},
    }


def test_an_event_split_over_data_lines_stays_valid_sse() -> None:
    translator = ADAPTER.chat_stream(context())
    out = translator.translate(SSEDecoder(), b'event: message_stop\ndata: {"type":\ndata: "message_stop"}\n\n')
    assert out == b'event: message_stop\ndata: {"type":\ndata: "message_stop"}\n\n'


def test_an_in_band_error_event_raises() -> None:
    translator = ADAPTER.chat_stream(context())
    decoder = SSEDecoder()
    translator.translate(decoder, STREAM[0])
    with pytest.raises(UpstreamStreamError) as caught:
        translator.translate(decoder, sse("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}))
    assert caught.value.code == "upstream_unavailable"


def test_a_stream_that_ends_before_message_stop_is_truncated() -> None:
    translator = ADAPTER.chat_stream(context())
    decoder = SSEDecoder()
    for piece in STREAM[:-1]:
        translator.translate(decoder, piece)
    with pytest.raises(UpstreamStreamError) as caught:
        translator.close(decoder)
    assert caught.value.code == "upstream_truncated"
