"""Messages to Chat Completions and back: requests, whole answers, and streams in Anthropic's event order."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.providers.anthropic_messages_to_openai_chat.codec import MESSAGES_CODEC
from modelyard_proxy.providers.base import CallContext, Inbound
from modelyard_proxy.providers.ingress.anthropic_messages import MESSAGES, events
from modelyard_proxy.providers.ingress.chain import ChainedAdapter
from modelyard_proxy.providers.openai_chat_to_openai_chat.adapter import OpenAIAdapter
from modelyard_proxy.providers.openai_chat_to_openai_chat.quirks import QUIRKS
from modelyard_proxy.providers.schemas import Schema
from modelyard_routing import Credential, Provider

CREDENTIAL = Credential(
    id="openai-prod", provider=Provider.OPENAI, base_url="https://api.openai.com/v1", api_key=SecretStr("sk-x")
)
CTX = CallContext("gpt", "gpt-4o", CREDENTIAL, completion_id="msg_req1")
PNG = "iVBORw0KGgo="


def chat(**fields: Any) -> dict[str, Any]:
    body = {"model": "gpt", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields}
    MESSAGES.check_request(body, 100)  # the codec only ever sees requests the protocol accepted
    return MESSAGES_CODEC.chat_request(body, CTX)


def test_a_plain_request_maps_field_for_field() -> None:
    assert chat(
        system=[
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be kind."},
        ],
        temperature=0.5,
        top_p=0.9,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        stream=True,
    ) == {
        "model": "gpt",
        "messages": [{"role": "system", "content": "Be brief.\nBe kind."}, {"role": "user", "content": "hi"}],
        "max_completion_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "user": "u-1",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_images_and_documents_become_chat_parts() -> None:
    content = [
        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        {
            "type": "document",
            "title": "spec.pdf",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
    ]
    assert chat(messages=[{"role": "user", "content": content}])["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                {"type": "file", "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
                {"type": "text", "text": "plain words"},
            ],
        }
    ]


def test_tool_calls_and_results_become_tool_messages_with_images_after_them() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "map", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21 C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "map failed"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    ],
                },
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]
    assert chat(messages=messages)["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "map", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "21 C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: map failed"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]


def test_an_assistant_turn_of_tool_calls_alone_has_no_content() -> None:
    turn = {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}
    sent = chat(messages=[{"role": "user", "content": "go"}, turn])["messages"][1]
    assert sent["content"] is None


TOOL = {"name": "weather", "description": "Weather", "input_schema": {"type": "object"}, "cache_control": {"type": "x"}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        ({"type": "tool", "name": "weather"}, {"tool_choice": {"type": "function", "function": {"name": "weather"}}}),
        ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
    ],
)
def test_tools_and_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    sent = chat(tools=[TOOL], tool_choice=choice)
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {"name": "weather", "parameters": {"type": "object"}, "description": "Weather"},
        }
    ]
    assert {key: sent[key] for key in expected} == expected


@pytest.mark.parametrize("choice", [{"type": "auto"}, {"type": "none", "disable_parallel_tool_use": True}])
def test_a_tool_choice_without_tools_that_changes_nothing_is_left_out(choice: dict[str, Any]) -> None:
    sent = chat(tool_choice=choice)
    assert "tool_choice" not in sent
    assert "parallel_tool_calls" not in sent


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, "medium"),
        ({"type": "enabled", "budget_tokens": 16383}, "medium"),
        ({"type": "enabled", "budget_tokens": 16384}, "high"),
        ({"type": "disabled"}, None),
        ({"type": "adaptive"}, None),
    ],
)
def test_thinking_becomes_a_reasoning_effort(thinking: dict[str, Any], effort: str | None) -> None:
    assert chat(max_tokens=32000, thinking=thinking).get("reasoning_effort") == effort


def test_output_config_maps_to_effort_and_json_schema() -> None:
    sent = chat(output_config={"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}})
    assert sent["reasoning_effort"] == "low"
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": True},
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"top_k": 5}, "top_k"),
        ({"container": "c1"}, "container"),
        ({"service_tier": "standard_only"}, "service_tier"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}],
                    }
                ]
            },
            "messages",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "search_result", "content": []}]}]}, "messages"),
    ],
)
def test_what_chat_cannot_express_is_refused_naming_it(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        chat(**fields)
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, param, "unsupported_parameter")


def completion(message: dict[str, Any], finish: str = "stop", **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, **choice}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "prompt_tokens_details": {"cached_tokens": 100}},
    }


def answer(chat_completion: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(MESSAGES_CODEC.answer(chat_completion, CTX))
    return decoded


def test_a_whole_answer_becomes_a_message_with_blocks_in_anthropics_order() -> None:
    message = {
        "role": "assistant",
        "content": "Checking.",
        "reasoning_content": "Think first.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
        ],
    }
    assert answer(completion(message, "tool_calls")) == {
        "id": "msg_req1",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o-2024-08-06",
        "content": [
            {"type": "thinking", "thinking": "Think first.", "signature": ""},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "output_tokens": 30,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 100,
        },
    }


@pytest.mark.parametrize(
    ("finish", "extra", "stop_reason", "stop_sequence"),
    [
        ("stop", {}, "end_turn", None),
        ("length", {}, "max_tokens", None),
        ("tool_calls", {}, "tool_use", None),
        ("content_filter", {}, "refusal", None),
        ("stop", {"stop_reason": "END"}, "stop_sequence", "END"),
    ],
)
def test_finish_reasons_become_stop_reasons(
    finish: str, extra: dict[str, Any], stop_reason: str, stop_sequence: str | None
) -> None:
    read = answer(completion({"role": "assistant", "content": "x"}, finish, **extra))
    assert (read["stop_reason"], read["stop_sequence"]) == (stop_reason, stop_sequence)
    usage, refused = MESSAGES.read_answer(orjson.dumps(read))
    assert refused is (stop_reason == "refusal")
    assert usage is not None
    assert (usage["prompt_tokens"], usage["prompt_tokens_details"]) == (120, {"cached_tokens": 100})


def test_arguments_that_are_not_an_object_become_an_empty_input() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"cut'}}
    read = answer(completion({"role": "assistant", "content": None, "tool_calls": [call]}, "length"))
    assert read["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": {}}]


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-2024-08-06",
        "choices": choices,
        **extra,
    }


def convert(*chunks: dict[str, Any]) -> list[dict[str, Any]]:
    converter = MESSAGES_CODEC.stream(CTX)
    out = b"".join(converter.feed(c) for c in chunks) + converter.finish()
    return list(events(out))


def summary(converted: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event as (type, index, what it carries)."""
    rows: list[tuple[Any, ...]] = []
    for event in converted:
        kind = event["type"]
        if kind == "content_block_start":
            rows.append((kind, event["index"], event["content_block"]["type"]))
        elif kind == "content_block_delta":
            delta = event["delta"]
            rows.append((kind, event["index"], delta["type"], next(v for k, v in delta.items() if k != "type")))
        elif kind == "content_block_stop":
            rows.append((kind, event["index"]))
        elif kind == "message_delta":
            rows.append((kind, event["delta"]["stop_reason"]))
        else:
            rows.append((kind,))
    return rows


def call(index: int, call_id: str | None = None, name: str | None = None, arguments: str = "") -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    entry: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        entry |= {"id": call_id, "type": "function"}
    return entry


def test_a_stream_converts_in_anthropics_order_with_block_indices() -> None:
    converted = convert(
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Let me "}),
        chunk({"reasoning_content": "think."}),
        chunk({"content": "Checking"}),
        chunk({"content": " now."}),
        chunk({"tool_calls": [call(0, "call_a", "weather")]}),
        chunk({"tool_calls": [call(0, arguments='{"city":')]}),
        chunk({"tool_calls": [call(0, arguments='"Oslo"}')]}),
        chunk({"tool_calls": [call(1, "call_b", "map", "{}")]}),
        chunk({}, "tool_calls"),
        chunk(
            None, usage={"prompt_tokens": 50, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 20}}
        ),
    )
    assert summary(converted) == [
        ("message_start",),
        ("ping",),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta", "Let me "),
        ("content_block_delta", 0, "thinking_delta", "think."),
        ("content_block_stop", 0),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta", "Checking"),
        ("content_block_delta", 1, "text_delta", " now."),
        ("content_block_stop", 1),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta", '{"city":'),
        ("content_block_delta", 2, "input_json_delta", '"Oslo"}'),
        ("content_block_stop", 2),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta", "{}"),
        ("content_block_stop", 3),
        ("message_delta", "tool_use"),
        ("message_stop",),
    ]
    start = converted[0]["message"]
    assert (start["id"], start["model"], start["usage"]) == (
        "msg_req1",
        "gpt-4o-2024-08-06",
        {"input_tokens": 0, "output_tokens": 0},
    )
    assert converted[10]["content_block"] == {"type": "tool_use", "id": "call_a", "name": "weather", "input": {}}
    assert converted[-2]["usage"] == {
        "input_tokens": 30,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 20,
    }


def test_an_empty_stream_still_starts_and_stops_a_message() -> None:
    assert summary(convert()) == [("message_start",), ("ping",), ("message_delta", "end_turn"), ("message_stop",)]


def test_a_refused_stream_ends_on_refusal() -> None:
    converted = convert(chunk({"refusal": "I can't help with that."}), chunk({}, "stop"))
    assert summary(converted)[2:] == [
        ("content_block_start", 0, "text"),
        ("content_block_delta", 0, "text_delta", "I can't help with that."),
        ("content_block_stop", 0),
        ("message_delta", "refusal"),
        ("message_stop",),
    ]


def test_a_chained_openai_stream_ends_once_its_done_frame_is_seen() -> None:
    """Through the OpenAI adapter's own translator: its ``[DONE]`` frame is not a chunk to convert."""
    ctx = CallContext("gpt", "gpt-4o", CREDENTIAL, stream=True, completion_id="msg_req1")
    adapter = ChainedAdapter(MESSAGES_CODEC, OpenAIAdapter(QUIRKS[Provider.OPENAI]))
    body = {"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    sent = orjson.loads(adapter.chat_call(Inbound(body, orjson.dumps(body), Schema.ANTHROPIC_MESSAGES), ctx).body)
    assert sent["stream_options"] == {"include_usage": True}
    translator = adapter.chat_stream(ctx)
    decoder = SSEDecoder()
    upstream = b"".join(
        b"data: " + orjson.dumps(c) + b"\n\n"
        for c in [
            chunk({"role": "assistant", "content": "Hi"}),
            chunk({}, "stop"),
            chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 1}),
        ]
    )
    out = translator.translate(decoder, upstream + b"data: [DONE]\n\n") + translator.close(decoder)
    assert [event["type"] for event in events(out)][-2:] == ["message_delta", "message_stop"]
    assert translator.usage is not None
    assert translator.usage["prompt_tokens"] == 3
