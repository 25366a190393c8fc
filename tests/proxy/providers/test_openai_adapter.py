"""The OpenAI-family adapter: byte-cheap passthrough, vendor fixes on answers, streams, and upstream errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.providers.base import CallContext, Inbound, StreamTranslator, UpstreamStreamError
from modelyard_proxy.providers.openai_chat_to_openai_chat.adapter import OpenAIAdapter
from modelyard_proxy.providers.openai_chat_to_openai_chat.quirks import QUIRKS, rewrite_chat
from modelyard_routing import Credential, Provider

KEY = "sk-proj-4fQmZx81LpT2vR9sNwB7yK3c"
BASE_URLS = {
    Provider.OPENAI: "https://api.openai.com/v1",
    Provider.MISTRAL: "https://api.mistral.ai/v1",
    Provider.DEEPSEEK: "https://api.deepseek.com/v1",
    Provider.OPENAI_COMPATIBLE: "http://vllm.models.svc.cluster.local:8000/v1",
}


def credential(provider: Provider = Provider.OPENAI, key: str | None = KEY, **extra: Any) -> Credential:
    return Credential(
        id=f"{provider.value}-prod",
        provider=provider,
        base_url=BASE_URLS[provider],
        api_key=None if key is None else SecretStr(key),
        **extra,
    )


def context(provider: Provider = Provider.OPENAI, upstream: str = "gpt-4o-2024-08-06", **extra: Any) -> CallContext:
    return CallContext(public_model="gpt-4o", upstream_model=upstream, credential=credential(provider, **extra))


def adapter(provider: Provider = Provider.OPENAI) -> OpenAIAdapter:
    return OpenAIAdapter(QUIRKS[provider])


def inbound(**body: Any) -> Inbound:
    return Inbound(body, orjson.dumps(body))


# -- requests ------------------------------------------------------------------------------------------------


def test_an_unchanged_body_goes_as_the_clients_own_bytes() -> None:
    request = inbound(model="gpt-4o-2024-08-06", messages=[{"role": "user", "content": "Hi"}], stream=True)
    call = adapter().chat_call(request, context())
    assert call.body is request.raw
    assert call.method == "POST"
    assert call.url == "https://api.openai.com/v1/chat/completions"


@pytest.mark.parametrize("provider", [Provider.OPENAI, Provider.OPENAI_COMPATIBLE])
@pytest.mark.parametrize(
    "body",
    [
        {"model": "gpt-4o-2024-08-06", "messages": [{"role": "developer", "content": "x", "name": "n"}]},
        {"model": "alias", "messages": [], "max_completion_tokens": 5, "seed": 1, "tool_choice": "required"},
        {"model": "alias", "reasoning_effort": "high", "response_format": {"type": "json_schema"}, "user": None},
    ],
)
def test_openais_own_dialect_skips_the_quirk_rewrite_with_the_same_result(
    provider: Provider, body: dict[str, Any]
) -> None:
    plain = QUIRKS[provider]
    assert not plain.rewrites_requests
    every_step = dataclasses.replace(plain)
    object.__setattr__(every_step, "rewrites_requests", True)  # the same facts, every check and rewrite run
    assert rewrite_chat(body, plain, "gpt-4o-2024-08-06") == rewrite_chat(body, every_step, "gpt-4o-2024-08-06")
    assert all(
        quirks.rewrites_requests
        for p, quirks in QUIRKS.items()
        if p not in {provider, Provider.OPENAI, Provider.OPENAI_COMPATIBLE}
    )


def test_the_model_is_rewritten_to_the_upstream_name() -> None:
    request = inbound(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], temperature=0.3)
    call = adapter().chat_call(request, context())
    assert orjson.loads(call.body) == {**request.body, "model": "gpt-4o-2024-08-06"}
    assert request.body["model"] == "gpt-4o"


def test_a_vendor_quirk_forces_a_rewrite_even_when_the_model_matches() -> None:
    request = inbound(model="mistral-large-latest", messages=[{"role": "user", "content": "Hi"}], seed=3)
    call = adapter(Provider.MISTRAL).chat_call(request, context(Provider.MISTRAL, "mistral-large-latest"))
    assert orjson.loads(call.body) == {
        "model": "mistral-large-latest",
        "messages": [{"role": "user", "content": "Hi"}],
        "random_seed": 3,
    }
    assert call.url == "https://api.mistral.ai/v1/chat/completions"


def test_headers_carry_bearer_auth_json_and_the_credential_extras() -> None:
    call = adapter().chat_call(inbound(model="gpt-4o"), context(headers={"OpenAI-Project": "proj_123"}))
    assert call.headers == {
        "OpenAI-Project": "proj_123",
        "content-type": "application/json",
        "authorization": f"Bearer {KEY}",
    }


def test_keyless_in_cluster_servers_get_no_authorization() -> None:
    ctx = context(Provider.OPENAI_COMPATIBLE, "meta-llama/Llama-3.1-8B-Instruct", key=None)
    call = adapter(Provider.OPENAI_COMPATIBLE).chat_call(inbound(model="gpt-4o"), ctx)
    assert call.headers == {"content-type": "application/json"}
    assert call.url == "http://vllm.models.svc.cluster.local:8000/v1/chat/completions"


def test_embeddings_go_to_the_embeddings_path() -> None:
    request = inbound(model="text-embedding-3-small", input=["a", "b"])
    call = adapter().embeddings_call(request, context(upstream="text-embedding-3-small"))
    assert call.url == "https://api.openai.com/v1/embeddings"
    assert call.body is request.raw
    renamed = adapter().embeddings_call(request, context(upstream="text-embedding-3-large"))
    assert orjson.loads(renamed.body)["model"] == "text-embedding-3-large"


def test_embeddings_are_refused_where_the_vendor_has_none() -> None:
    with pytest.raises(GatewayError) as caught:
        adapter(Provider.DEEPSEEK).embeddings_call(inbound(model="e", input="a"), context(Provider.DEEPSEEK, "e"))
    assert caught.value.status == 400


# -- non-stream answers --------------------------------------------------------------------------------------

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        "service_tier": "default",
        "system_fingerprint": "fp_fc9f1d7035",
    }
)


def test_a_completion_passes_as_the_same_bytes() -> None:
    assert adapter().chat_result(COMPLETION, context()) is COMPLETION
    assert adapter().embeddings_result(b'{"object":"list","data":[]}', context()) == b'{"object":"list","data":[]}'


def test_deepseek_queue_blank_lines_are_stripped() -> None:
    assert adapter(Provider.DEEPSEEK).chat_result(b"\n\n\n" + COMPLETION, context(Provider.DEEPSEEK)) == COMPLETION


def mistral_completion(finish_reason: str) -> bytes:
    return orjson.dumps(
        {
            "id": "cmpl-e5cc70bb28c444948073e77776eb30ef",
            "object": "chat.completion",
            "created": 1702256327,
            "model": "mistral-large-latest",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Once upon", "tool_calls": None},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {"prompt_tokens": 16, "completion_tokens": 34, "total_tokens": 50},
        }
    )


def test_mistral_model_length_is_openai_length() -> None:
    answer = adapter(Provider.MISTRAL).chat_result(mistral_completion("model_length"), context(Provider.MISTRAL))
    assert orjson.loads(answer)["choices"][0]["finish_reason"] == "length"
    plain = mistral_completion("stop")
    assert adapter(Provider.MISTRAL).chat_result(plain, context(Provider.MISTRAL)) is plain


def test_mistral_error_finish_is_an_upstream_failure() -> None:
    with pytest.raises(GatewayError) as caught:
        adapter(Provider.MISTRAL).chat_result(mistral_completion("error"), context(Provider.MISTRAL))
    assert (caught.value.status, caught.value.type, caught.value.retryable) == (502, "upstream_error", True)


def test_an_error_body_sent_with_200_is_not_passed_off_as_an_answer() -> None:
    payload = b'{"error":{"message":"model overloaded","type":"server_error","param":null,"code":null}}'
    with pytest.raises(GatewayError) as caught:
        adapter(Provider.OPENAI_COMPATIBLE).chat_result(payload, context(Provider.OPENAI_COMPATIBLE))
    assert caught.value.status == 502
    assert "model overloaded" in caught.value.message


# -- streams -------------------------------------------------------------------------------------------------


def sse(*payloads: bytes | dict[str, Any]) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, bytes) else orjson.dumps(p)) + b"\n\n" for p in payloads)


HEAD = {
    "id": "chatcmpl-BdmKq0Hk1Tn7w2FDrwOuYRSLuhDT9",
    "object": "chat.completion.chunk",
    "created": 1748860080,
    "model": "gpt-4o-2024-08-06",
    "service_tier": "default",
    "system_fingerprint": "fp_07871e2ad8",
}
USAGE = {
    "prompt_tokens": 81,
    "completion_tokens": 36,
    "total_tokens": 117,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {**HEAD, "choices": [choice], "usage": None, "obfuscation": "pB1x", **extra}


def tool_delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, **fields}]}


OPENAI_STREAM = sse(
    chunk({"role": "assistant", "content": None, "refusal": None}),
    chunk(tool_delta(0, id="call_Qd8YhjZnm", type="function", function={"name": "get_weather", "arguments": ""})),
    chunk(tool_delta(0, function={"arguments": '{"ci'})),
    chunk(tool_delta(0, function={"arguments": 'ty": "Oslo"}'})),
    chunk(tool_delta(1, id="call_Xk29LmQp", type="function", function={"name": "get_time", "arguments": ""})),
    chunk(tool_delta(1, function={"arguments": '{"tz": "Europe/Oslo"}'})),
    chunk({}, "tool_calls"),
    {**HEAD, "choices": [], "usage": USAGE, "obfuscation": "Zq"},
    b"[DONE]",
)


def translate(translator: StreamTranslator, pieces: list[bytes]) -> bytes:
    """The stream as the relay translates it: read by read."""
    decoder = SSEDecoder()
    out = b""
    for piece in pieces:
        out += translator.translate(decoder, piece)
    return out + translator.close(decoder)


def translate_event_by_event(translator: StreamTranslator, raw: bytes) -> bytes:
    """The reference: every event decoded and fed on its own."""
    decoder = SSEDecoder()
    out = b"".join(translator.feed(event) for event in [*decoder.feed(raw), *decoder.close()])
    return out + translator.finish()


def test_an_openai_stream_passes_byte_for_byte_and_usage_is_read() -> None:
    translator = adapter().chat_stream(dataclasses.replace(context(), stream=True, include_usage=True))
    assert translate(translator, [OPENAI_STREAM]) == OPENAI_STREAM
    assert translator.usage == USAGE


def test_the_usage_chunk_the_gateway_asked_for_is_read_and_kept_from_a_client_that_did_not() -> None:
    translator = adapter().chat_stream(dataclasses.replace(context(), stream=True))
    out = translate(translator, [OPENAI_STREAM])
    assert translator.usage == USAGE
    assert b'"choices":[]' not in out
    usage_frame = next(f for f in OPENAI_STREAM.split(b"\n\n") if b'"choices":[]' in f) + b"\n\n"
    assert out == OPENAI_STREAM.replace(usage_frame, b"")  # only the usage chunk is left out


@pytest.mark.parametrize("provider", [Provider.OPENAI, Provider.DEEPSEEK, Provider.OPENAI_COMPATIBLE])
def test_streams_always_ask_the_upstream_for_usage(provider: Provider) -> None:
    ctx = dataclasses.replace(context(provider), stream=True)
    inbound = Inbound({"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}, b"")
    body = orjson.loads(adapter(provider).chat_call(inbound, ctx).body)
    assert body["stream_options"] == {"include_usage": True}
    whole = adapter(provider).chat_call(Inbound({**inbound.body, "stream": False}, b"{}"), context(provider))
    assert b"stream_options" not in whole.body


def test_usage_on_the_last_content_chunk_is_read_too() -> None:
    stream = sse(
        chunk({"role": "assistant", "content": "Hi"}),
        chunk({}, "stop", usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}),
        b"[DONE]",
    )
    translator = adapter(Provider.OPENAI_COMPATIBLE).chat_stream(context(Provider.OPENAI_COMPATIBLE))
    assert translate(translator, [stream]) == stream
    assert translator.usage == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}


def test_a_stream_without_done_is_truncated() -> None:
    translator = adapter().chat_stream(context())
    cut = OPENAI_STREAM[: OPENAI_STREAM.index(b'data: {"id"', 600)]
    with pytest.raises(UpstreamStreamError) as caught:
        translate(translator, [cut])
    assert (caught.value.status, caught.value.type) == (502, "upstream_error")
    assert "[DONE]" in caught.value.message


WITHOUT_DONE = OPENAI_STREAM.removesuffix(b"data: [DONE]\n\n")
WITHOUT_USAGE = WITHOUT_DONE[: WITHOUT_DONE.rindex(b"data: ")]


@pytest.mark.parametrize(
    "complete",
    [
        pytest.param(WITHOUT_DONE, id="usage-then-close"),
        pytest.param(WITHOUT_USAGE, id="finish-then-close"),
        pytest.param(
            sse(chunk({"content": "Hi"}), b'{"choices": [{"index": 0, "finish_reason": "stop"}]}'), id="spaced"
        ),
    ],
)
@pytest.mark.parametrize("reads", ["whole", "event-by-event"])
def test_a_clean_end_after_a_finish_reason_is_complete_and_gets_done(complete: bytes, reads: str) -> None:
    translator = adapter().chat_stream(dataclasses.replace(context(), stream=True, include_usage=True))
    relayed = translate(translator, [complete]) if reads == "whole" else translate_event_by_event(translator, complete)
    assert relayed == complete + b"data: [DONE]\n\n"


def test_done_may_be_optional_for_a_vendor_that_omits_it() -> None:
    lenient = OpenAIAdapter(dataclasses.replace(QUIRKS[Provider.OPENAI_COMPATIBLE], requires_done=False))
    stream = sse(chunk({"role": "assistant", "content": "Hi"}), chunk({}, "stop"))
    assert translate(lenient.chat_stream(context()), [stream]) == stream + b"data: [DONE]\n\n"


def test_nothing_after_done_is_forwarded() -> None:
    translator = adapter().chat_stream(context())
    assert translate(translator, [sse(chunk({}, "stop"), b"[DONE]", chunk({"content": "late"}))]) == sse(
        chunk({}, "stop"), b"[DONE]"
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {
                "error": {
                    "message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
            "The server had an error while processing your request",
        ),
        (
            {
                "object": "error",
                "message": "The model ran out of KV cache blocks",
                "type": "InternalServerError",
                "param": None,
                "code": 500,
            },
            "ran out of KV cache blocks",
        ),
    ],
)
def test_an_in_band_error_ends_the_stream_with_the_upstreams_message(payload: dict[str, Any], message: str) -> None:
    translator = adapter(Provider.OPENAI_COMPATIBLE).chat_stream(context(Provider.OPENAI_COMPATIBLE))
    first = chunk({"role": "assistant", "content": "Par"})
    decoder = SSEDecoder()
    events = decoder.feed(sse(first, payload))
    assert translator.feed(events[0]) == sse(first)
    with pytest.raises(UpstreamStreamError) as caught:
        translator.feed(events[1])
    assert (caught.value.status, caught.value.type) == (502, "upstream_error")
    assert message in caught.value.message


def test_the_word_error_inside_content_is_not_an_error() -> None:
    stream = sse(chunk({"role": "assistant", "content": 'He said "error"'}), chunk({}, "stop"), b"[DONE]")
    assert translate(adapter().chat_stream(context()), [stream]) == stream


def test_an_in_band_error_is_scrubbed_of_the_key() -> None:
    payload = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error"}}
    with pytest.raises(UpstreamStreamError) as caught:
        translate(adapter().chat_stream(context()), [sse(payload)])
    assert KEY not in caught.value.message


MISTRAL_HEAD = {
    "id": "c8d6d1b7a4c54f4f9c1f",
    "object": "chat.completion.chunk",
    "created": 1748860080,
    "model": "mistral-large-latest",
}
MISTRAL_STREAM = (
    b": keep-alive\n\n"
    + sse(
        {
            **MISTRAL_HEAD,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        },
        {**MISTRAL_HEAD, "choices": [{"index": 0, "delta": {"content": "Once upon a time"}, "finish_reason": None}]},
    )
    + b": keep-alive\r\n\r\n"
    + sse(
        {
            **MISTRAL_HEAD,
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "model_length"}],
            "usage": {"prompt_tokens": 12, "total_tokens": 4108, "completion_tokens": 4096},
        },
        b"[DONE]",
    )
)
MISTRAL_EXPECTED = sse(
    {**MISTRAL_HEAD, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
    {**MISTRAL_HEAD, "choices": [{"index": 0, "delta": {"content": "Once upon a time"}, "finish_reason": None}]},
    {
        **MISTRAL_HEAD,
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 12, "total_tokens": 4108, "completion_tokens": 4096},
    },
    b"[DONE]",
)


def test_mistral_stream_is_respelled_and_keep_alives_dropped() -> None:
    translator = adapter(Provider.MISTRAL).chat_stream(context(Provider.MISTRAL))
    assert translate(translator, [MISTRAL_STREAM]) == MISTRAL_EXPECTED
    assert translator.usage == {"prompt_tokens": 12, "total_tokens": 4108, "completion_tokens": 4096}


def test_mistral_error_finish_in_a_stream_is_an_upstream_failure() -> None:
    stream = sse({**MISTRAL_HEAD, "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]}, b"[DONE]")
    with pytest.raises(UpstreamStreamError):
        translate(adapter(Provider.MISTRAL).chat_stream(context(Provider.MISTRAL)), [stream])


def test_json_split_over_data_lines_is_sent_on_one() -> None:
    stream = b'data: {"id":"x","choices":\ndata: []}\n\ndata: [DONE]\n\n'
    assert translate(adapter().chat_stream(context()), [stream]) == b'data: {"id":"x","choices":[]}\n\ndata: [DONE]\n\n'


@given(st.sampled_from([Provider.OPENAI, Provider.MISTRAL]), st.lists(st.floats(0, 1), max_size=12))
def test_any_split_of_the_upstream_bytes_gives_the_same_stream(provider: Provider, cuts: list[float]) -> None:
    raw = OPENAI_STREAM if provider is Provider.OPENAI else MISTRAL_STREAM
    points = sorted(int(cut * len(raw)) for cut in cuts)
    pieces = [raw[start:end] for start, end in zip([0, *points], [*points, len(raw)], strict=True)]
    whole = translate(adapter(provider).chat_stream(context(provider)), [raw])
    assert translate(adapter(provider).chat_stream(context(provider)), pieces) == whole


#: Events a read may hold, plain ones and every kind the pass-through path must not forward as they came.
STREAM_PARTS = [
    sse(chunk({"content": "Hello"})),
    sse(chunk({"content": "two"}), chunk({"content": " events"})),
    sse(chunk({"content": 'a "data: {" inside the text\n\n'})),
    b": keep-alive\n\n",
    b"data: \n\n",
    b"data: " + orjson.dumps(chunk({"content": "crlf"})) + b"\r\n\r\n",
    b'data: {"id":"x","choices":\ndata: []}\n\n',
    b"event: message\n" + sse(chunk({"content": "named"})),
    sse({**HEAD, "choices": [], "usage": USAGE}),
    sse(chunk({}, "stop")),
]


@given(st.lists(st.sampled_from(STREAM_PARTS), max_size=8), st.lists(st.floats(0, 1), max_size=6))
def test_reads_passed_through_whole_equal_the_event_by_event_translation(parts: list[bytes], cuts: list[float]) -> None:
    raw = b"".join(parts) + b"data: [DONE]\n\n"
    points = sorted(int(cut * len(raw)) for cut in cuts)
    pieces = [raw[start:end] for start, end in zip([0, *points], [*points, len(raw)], strict=True)]
    expected = translate_event_by_event(adapter().chat_stream(context()), raw)
    translator = adapter().chat_stream(context())
    assert translate(translator, pieces) == expected
    assert translator.usage == (USAGE if sse({**HEAD, "choices": [], "usage": USAGE}) in parts else None)


def test_a_read_of_plain_events_is_forwarded_without_decoding() -> None:
    translator = adapter().chat_stream(context())
    read = sse(chunk({"content": "a"}), chunk({"content": "b"}))
    out = translator.translate(SSEDecoder(), read)
    assert out is read  # the very same bytes object: nothing was decoded or re-framed


# -- errors --------------------------------------------------------------------------------------------------


def openai_error(message: str, type_: str | None, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


ERRORS: list[tuple[str, Provider, int, dict[str, str], bytes, dict[str, Any]]] = [
    (
        "openai 401 key echo",
        Provider.OPENAI,
        401,
        {},
        openai_error(
            "Incorrect API key provided: sk-abc123def456ghi789jkl...xyz. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        {"status": 502, "type": "upstream_error", "code": "upstream_auth_failed", "retryable": False},
    ),
    (
        "openai 429 rate limit",
        Provider.OPENAI,
        429,
        {"retry-after-ms": "1500", "x-ratelimit-remaining-tokens": "0"},
        openai_error(
            "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 30000, "
            "Requested 812. Please try again in 1.5s.",
            "tokens",
            "rate_limit_exceeded",
        ),
        {
            "status": 429,
            "type": "rate_limit_error",
            "code": "rate_limit_exceeded",
            "retryable": True,
            "retry_after": 1.5,
        },
    ),
    (
        "openai 429 quota",
        Provider.OPENAI,
        429,
        {},
        openai_error(
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        ),
        {"status": 429, "type": "insufficient_quota", "code": "insufficient_quota", "retryable": False},
    ),
    (
        "openai 400 context length",
        Provider.OPENAI,
        400,
        {},
        openai_error(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. "
            "Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        ),
        {"status": 400, "type": "invalid_request_error", "code": "context_length_exceeded", "param": "messages"},
    ),
    (
        "openai 400 keeps the param",
        Provider.OPENAI,
        400,
        {},
        openai_error(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            "invalid_request_error",
            "unsupported_parameter",
            "max_tokens",
        ),
        {"status": 400, "code": "unsupported_parameter", "param": "max_tokens", "retryable": False},
    ),
    (
        "mistral flat 429",
        Provider.MISTRAL,
        429,
        {"retry-after": "2"},
        b'{"object":"error","message":"Service tier capacity exceeded for this model.","type":"rate_limit_error","param":null,"code":"3505"}',
        {"status": 429, "type": "rate_limit_error", "retryable": True, "retry_after": 2.0},
    ),
    (
        "mistral 422 validation object",
        Provider.MISTRAL,
        422,
        {},
        b'{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","foo"],"msg":"Extra inputs are not permitted"}]},"type":"invalid_request_message_error","param":null,"code":null}',
        {"status": 422, "retryable": False},
    ),
    (
        "deepseek 402 balance",
        Provider.DEEPSEEK,
        402,
        {},
        openai_error("Insufficient Balance", "unknown_error", "invalid_request_error"),
        {"status": 502, "code": "upstream_billing", "retryable": False},
    ),
    (
        "non-JSON 502 page",
        Provider.OPENAI_COMPATIBLE,
        502,
        {},
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
        {"status": 502, "type": "upstream_error", "code": "upstream_error", "retryable": True},
    ),
]


@pytest.mark.parametrize(
    ("provider", "status", "headers", "payload", "expected"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_upstream_errors_are_classified(
    provider: Provider, status: int, headers: dict[str, str], payload: bytes, expected: dict[str, Any]
) -> None:
    error = adapter(provider).error_from(status, headers, payload, context(provider))
    assert {name: getattr(error, name) for name in expected} == expected
    assert "sk-abc123" not in error.message
    assert error.message


def test_error_messages_keep_the_upstreams_words() -> None:
    html = ERRORS[-1][4]
    assert "502 Bad Gateway" in adapter().error_from(502, {}, html, context()).message
    detail = ERRORS[6][4]
    assert "Extra inputs are not permitted" in adapter(Provider.MISTRAL).error_from(422, {}, detail, context()).message


def test_the_registry_serves_one_adapter_per_openai_family_provider() -> None:
    from modelyard_proxy.providers import registry  # noqa: PLC0415 - imports every dialect's adapter

    for provider in QUIRKS:
        found = registry.adapter_for(provider)
        assert isinstance(found, OpenAIAdapter)
        assert found.name == provider.value
        assert registry.adapter_for(provider) is found
    azure = registry.adapter_for(Provider.AZURE_OPENAI)
    assert azure.name == "azure-openai"
    assert registry.adapter_for(Provider.AZURE_OPENAI) is azure
    assert all(registry.adapter_for(provider) is not None for provider in Provider)
