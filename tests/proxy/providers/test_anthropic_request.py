"""OpenAI chat requests translated to Anthropic Messages requests."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext, Inbound
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.adapter import AnthropicAdapter
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.json_answer import JSON_TOOL, JSON_TOOL_DEFINITION
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.request import DEFAULT_MAX_TOKENS
from modelyard_routing import Credential, Provider

CREDENTIAL = Credential(
    id="claude-prod",
    provider=Provider.ANTHROPIC,
    base_url="https://api.anthropic.com/v1",
    api_key=SecretStr("sk-ant-api03-0123456789abcdefghij"),
    headers={"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"},
)
MODEL = "claude-sonnet-4-5-20250929"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK"
HI = {"role": "user", "content": "Hi"}


def ctx(stream: bool = False) -> CallContext:
    return CallContext("claude", MODEL, CREDENTIAL, stream=stream, created=1_700_000_000, completion_id="chatcmpl-1")


def translate(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    call = AnthropicAdapter().chat_call(Inbound(body, orjson.dumps(body)), ctx(stream))
    result: dict[str, Any] = orjson.loads(call.body)
    return result


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def test_call_targets_messages_with_anthropic_headers() -> None:
    body = {"model": "claude", "messages": [HI]}
    call = AnthropicAdapter().chat_call(Inbound(body, orjson.dumps(body)), ctx())
    assert call.method == "POST"
    assert call.url == "https://api.anthropic.com/v1/messages"
    assert call.headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-ant-api03-0123456789abcdefghij",
        "anthropic-beta": "fine-grained-tool-streaming-2025-05-14",
    }
    assert orjson.loads(call.body) == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [text("Hi")]}],
    }


def test_stream_flag_follows_the_context() -> None:
    assert translate({"messages": [HI]}, stream=True)["stream"] is True
    assert "stream" not in translate({"messages": [HI], "stream": True})


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
    {"type": "function", "function": {"name": "now", "strict": True}},
]
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "description": "Current weather for a city",
    },
    {"name": "now", "input_schema": {"type": "object", "properties": {}}, "strict": True},
]
WEATHER_CALLS = {
    "role": "assistant",
    "content": "Checking both.",
    "tool_calls": [
        {"id": "toolu_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
        {"id": "toolu_b", "type": "function", "function": {"name": "now", "arguments": ""}},
    ],
}
WEATHER_USES = [
    text("Checking both."),
    {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
    {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}},
]

# (case, OpenAI request fields, expected Anthropic fields; None means the field must be absent)
TRANSLATIONS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "system and developer turns are hoisted wherever they stand",
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [text("Answer in French."), text("No emoji.")]},
                HI,
                {"role": "system", "content": ""},
                {"role": "system", "content": "Late rule."},
            ]
        },
        {
            "system": [text("Be brief."), text("Answer in French.\nNo emoji."), text("Late rule.")],
            "messages": [{"role": "user", "content": [text("Hi")]}],
        },
    ),
    (
        "images inline and by URL, PDFs as documents",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        text("Compare these"),
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {"type": "image_url", "image_url": {"url": f"data:application/pdf;base64,{PDF}"}},
                        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"}},
                    ],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        text("Compare these"),
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        },
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        },
                    ],
                }
            ]
        },
    ),
    (
        "tool calls become tool_use; results merge into one user turn, results before text",
        {
            "messages": [
                {"role": "user", "content": "Weather in Oslo, and the time?"},
                WEATHER_CALLS,
                {"role": "tool", "tool_call_id": "toolu_a", "content": "12°C, rain"},
                {"role": "tool", "tool_call_id": "toolu_b", "content": [text("14:05")]},
                {"role": "user", "content": "Thanks, and tomorrow?"},
            ],
            "tools": TOOLS,
        },
        {
            "messages": [
                {"role": "user", "content": [text("Weather in Oslo, and the time?")]},
                {"role": "assistant", "content": WEATHER_USES},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "12°C, rain"},
                        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "14:05"},
                        text("Thanks, and tomorrow?"),
                    ],
                },
            ],
            "tools": ANTHROPIC_TOOLS,
            "tool_choice": None,
        },
    ),
    (
        "a tool result after user text still goes first; empty results carry no content",
        {
            "messages": [
                HI,
                {"role": "assistant", "content": None, "tool_calls": WEATHER_CALLS["tool_calls"][1:]},
                {"role": "user", "content": "Also this."},
                {"role": "tool", "tool_call_id": "toolu_b", "content": ""},
            ],
            "tools": TOOLS,
        },
        {
            "messages": [
                {"role": "user", "content": [text("Hi")]},
                {"role": "assistant", "content": WEATHER_USES[2:]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_b"}, text("Also this.")]},
            ]
        },
    ),
    (
        "consecutive same-role turns merge and empty turns vanish",
        {
            "messages": [
                HI,
                {"role": "user", "content": [text("there")]},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": "Hello!"},
                {"role": "assistant", "content": [text("How can I help?")]},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": [text("Hi"), text("there")]},
                {"role": "assistant", "content": [text("Hello!"), text("How can I help?")]},
            ]
        },
    ),
    ("stop as a string", {"messages": [HI], "stop": "END"}, {"stop_sequences": ["END"]}),
    ("stop as a list", {"messages": [HI], "stop": ["\n\n", "END"]}, {"stop_sequences": ["\n\n", "END"]}),
    (
        "sampling within Anthropic's range",
        {"messages": [HI], "temperature": 1, "top_p": 0.9},
        {"temperature": 1.0, "top_p": 0.9},
    ),
    ("max_completion_tokens", {"messages": [HI], "max_completion_tokens": 300}, {"max_tokens": 300}),
    (
        "max_completion_tokens wins over max_tokens",
        {"messages": [HI], "max_completion_tokens": 300, "max_tokens": 50},
        {"max_tokens": 300},
    ),
    ("legacy max_tokens", {"messages": [HI], "max_tokens": 50}, {"max_tokens": 50}),
    (
        "reasoning without a limit raises max_tokens above the budget",
        {"messages": [HI], "reasoning_effort": "low"},
        {"max_tokens": 2048 + DEFAULT_MAX_TOKENS, "thinking": {"type": "enabled", "budget_tokens": 2048}},
    ),
    (
        "reasoning within a generous limit keeps its budget",
        {"messages": [HI], "reasoning_effort": "medium", "max_completion_tokens": 20000},
        {"max_tokens": 20000, "thinking": {"type": "enabled", "budget_tokens": 8192}},
    ),
    (
        "reasoning budget shrinks below a tight limit",
        {"messages": [HI], "reasoning_effort": "high", "max_completion_tokens": 5000},
        {"max_tokens": 5000, "thinking": {"type": "enabled", "budget_tokens": 4999}},
    ),
    (
        "reasoning_effort none means no thinking",
        {"messages": [HI], "reasoning_effort": "none"},
        {"max_tokens": DEFAULT_MAX_TOKENS, "thinking": None},
    ),
    (
        "json_schema uses native structured output with closed objects",
        {
            "messages": [HI],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "person",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "pets": {"type": "array", "items": {"type": "object", "properties": {}}},
                            "meta": {"type": ["object", "null"], "additionalProperties": True},
                        },
                    },
                },
            },
        },
        {
            "output_config": {
                "format": {
                    "type": "json_schema",
                    "schema": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "pets": {
                                "type": "array",
                                "items": {"type": "object", "properties": {}, "additionalProperties": False},
                            },
                            "meta": {"type": ["object", "null"], "additionalProperties": True},
                        },
                        "additionalProperties": False,
                    },
                }
            },
            "system": None,
        },
    ),
    (
        "json_object forces the JSON answer tool",
        {"messages": [{"role": "system", "content": "Be brief."}, HI], "response_format": {"type": "json_object"}},
        {
            "system": [text("Be brief.")],
            "tools": [JSON_TOOL_DEFINITION],
            "tool_choice": {"type": "tool", "name": JSON_TOOL, "disable_parallel_tool_use": True},
            "output_config": None,
        },
    ),
    (
        "json_object with client tools: a tool call or the JSON answer",
        {"messages": [HI], "tools": TOOLS, "response_format": {"type": "json_object"}},
        {"tools": [*ANTHROPIC_TOOLS, JSON_TOOL_DEFINITION], "tool_choice": {"type": "any"}},
    ),
    (
        "json_object with tool_choice none: the JSON answer only",
        {"messages": [HI], "tools": TOOLS, "tool_choice": "none", "response_format": {"type": "json_object"}},
        {"tool_choice": {"type": "tool", "name": JSON_TOOL, "disable_parallel_tool_use": True}},
    ),
    (
        "json_object keeps a client's named tool choice",
        {
            "messages": [HI],
            "tools": TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "now"}},
            "response_format": {"type": "json_object"},
        },
        {"tool_choice": {"type": "tool", "name": "now"}},
    ),
    ("response_format text is the default", {"messages": [HI], "response_format": {"type": "text"}}, {"system": None}),
    (
        "tool_choice required means any",
        {"messages": [HI], "tools": TOOLS, "tool_choice": "required"},
        {"tools": ANTHROPIC_TOOLS, "tool_choice": {"type": "any"}},
    ),
    (
        "named tool_choice",
        {"messages": [HI], "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "now"}}},
        {"tool_choice": {"type": "tool", "name": "now"}},
    ),
    (
        "tool_choice none",
        {"messages": [HI], "tools": TOOLS, "tool_choice": "none", "parallel_tool_calls": False},
        {"tool_choice": {"type": "none"}},
    ),
    (
        "parallel_tool_calls false disables parallel use",
        {"messages": [HI], "tools": TOOLS, "parallel_tool_calls": False},
        {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
    ),
    (
        "parallel_tool_calls false on a forced tool",
        {"messages": [HI], "tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False},
        {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
    ),
    (
        "tool_choice without tools is dropped when it asks for nothing",
        {"messages": [HI], "tool_choice": "none", "parallel_tool_calls": False},
        {"tools": None, "tool_choice": None},
    ),
    ("user becomes metadata.user_id", {"messages": [HI], "user": "u-42"}, {"metadata": {"user_id": "u-42"}}),
    (
        "harmless values of unsupported and dropped parameters",
        {
            "messages": [HI],
            "n": 1,
            "logprobs": False,
            "presence_penalty": 0,
            "frequency_penalty": 0.0,
            "modalities": ["text"],
            "store": True,
            "metadata": {"team": "a"},
            "service_tier": "auto",
            "stream_options": {"include_usage": True},
        },
        {"metadata": None, "service_tier": None, "n": None, "store": None, "stream_options": None},
    ),
]


@pytest.mark.parametrize(("openai", "anthropic"), [case[1:] for case in TRANSLATIONS], ids=[c[0] for c in TRANSLATIONS])
def test_translation(openai: dict[str, Any], anthropic: dict[str, Any]) -> None:
    body = translate({"model": "claude", **openai})
    assert {name: body.get(name) for name in anthropic} == anthropic


def test_client_body_is_not_mutated() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "object"}}}
    body = {
        "messages": [HI, WEATHER_CALLS],
        "tools": TOOLS,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    before = orjson.dumps(body)
    translate(body)
    assert orjson.dumps(body) == before


# (case, OpenAI request fields, the param the 400 names)
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("several choices", {"n": 2}, "n"),
    ("logprobs", {"logprobs": True}, "logprobs"),
    ("top_logprobs", {"top_logprobs": 3}, "top_logprobs"),
    ("logit_bias", {"logit_bias": {"1734": -100}}, "logit_bias"),
    ("presence_penalty", {"presence_penalty": 0.5}, "presence_penalty"),
    ("frequency_penalty", {"frequency_penalty": -0.2}, "frequency_penalty"),
    ("seed", {"seed": 7}, "seed"),
    ("audio output", {"audio": {"voice": "alloy", "format": "mp3"}}, "audio"),
    ("audio modality", {"modalities": ["text", "audio"]}, "modalities"),
    ("legacy functions", {"functions": [{"name": "f"}]}, "functions"),
    ("temperature above Anthropic's range", {"temperature": 1.5}, "temperature"),
    ("negative temperature", {"temperature": -0.1}, "temperature"),
    ("top_p above 1", {"top_p": 1.1}, "top_p"),
    ("thinking budget cannot fit", {"reasoning_effort": "low", "max_completion_tokens": 1024}, "max_completion_tokens"),
    ("thinking budget cannot fit (legacy)", {"reasoning_effort": "high", "max_tokens": 800}, "max_tokens"),
    ("unknown reasoning effort", {"reasoning_effort": "extreme"}, "reasoning_effort"),
    (
        "JSON mode cannot think",
        {"response_format": {"type": "json_object"}, "reasoning_effort": "low"},
        "reasoning_effort",
    ),
    (
        "JSON mode cannot think, even where a history without signatures turns thinking off",
        {
            "messages": [HI, WEATHER_CALLS, {"role": "tool", "tool_call_id": "toolu_a", "content": "4C"}],
            "response_format": {"type": "json_object"},
            "reasoning_effort": "low",
        },
        "reasoning_effort",
    ),
    (
        "a client tool named like the JSON answer tool",
        {"response_format": {"type": "json_object"}, "tools": [{"type": "function", "function": {"name": JSON_TOOL}}]},
        "tools",
    ),
    ("negative max_tokens", {"max_tokens": -5}, "max_tokens"),
    (
        "negative max_tokens beside a valid max_completion_tokens",
        {"max_completion_tokens": 50, "max_tokens": -1},
        "max_tokens",
    ),
    ("zero max_completion_tokens", {"max_completion_tokens": 0}, "max_completion_tokens"),
    (
        "thinking block without its signature",
        {
            "messages": [
                HI,
                {
                    **WEATHER_CALLS,
                    "extra_content": {"anthropic": {"thinking_blocks": [{"type": "thinking", "thinking": "x"}]}},
                },
            ]
        },
        "messages",
    ),
    (
        "thinking_blocks that are not a list",
        {"messages": [HI, {**WEATHER_CALLS, "extra_content": {"anthropic": {"thinking_blocks": "sig"}}}]},
        "messages",
    ),
    ("forced tool without tools", {"tool_choice": "required"}, "tool_choice"),
    ("allowed_tools choice", {"tools": TOOLS, "tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
    ("custom tools", {"tools": [{"type": "custom", "custom": {"name": "grep"}}]}, "tools"),
    ("bad response_format", {"response_format": {"type": "xml"}}, "response_format"),
    (
        "audio input",
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA"}}]}]},
        "messages",
    ),
    (
        "unsupported image type",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": f"data:image/bmp;base64,{PNG}"}}],
                }
            ]
        },
        "messages",
    ),
    (
        "file by id",
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]},
        "messages",
    ),
    (
        "non-web image URL",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
        "messages",
    ),
    ("assistant speaks first", {"messages": [{"role": "assistant", "content": "Hello!"}, HI]}, "messages"),
    ("only a system prompt", {"messages": [{"role": "system", "content": "Be brief."}]}, "messages"),
    ("no messages", {"messages": []}, "messages"),
    ("legacy function role", {"messages": [HI, {"role": "function", "name": "f", "content": "1"}]}, "messages"),
    (
        "tool arguments that are not JSON",
        {"messages": [HI, {**WEATHER_CALLS, "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "{"}}]}]},
        "messages",
    ),
    ("tool result without an id", {"messages": [HI, {"role": "tool", "content": "1"}]}, "messages"),
]


@pytest.mark.parametrize(("openai", "param"), [case[1:] for case in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_refusal(openai: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        translate({"model": "claude", "messages": [HI], **openai})
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"
    assert caught.value.param == param


def test_embeddings_are_refused_with_the_reason() -> None:
    body = {"model": "claude", "input": "hello"}
    with pytest.raises(GatewayError) as caught:
        AnthropicAdapter().embeddings_call(Inbound(body, orjson.dumps(body)), ctx())
    assert caught.value.status == 400
    assert "no embeddings" in caught.value.message
    assert caught.value.param == "model"


SIGNED = {"type": "thinking", "thinking": "Oslo needs the weather tool.", "signature": "EqQBCkYIBxgCKkA="}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
WEATHER_RESULT = {"role": "tool", "tool_call_id": "toolu_a", "content": "4C"}


def tool_turn(thinking_blocks: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The assistant turn that called the weather tools, with the thinking blocks the gateway returned."""
    if thinking_blocks is None:
        return WEATHER_CALLS
    return {**WEATHER_CALLS, "extra_content": {"anthropic": {"thinking_blocks": thinking_blocks}}}


def test_signed_thinking_is_replayed_at_the_start_of_the_tool_turn() -> None:
    # The SDKs' stream accumulators leave each streamed block's ``index`` in place; it is not sent on.
    blocks = [{"index": 0, **SIGNED}, {"index": 1, **REDACTED}]
    body = translate({"messages": [HI, tool_turn(blocks), WEATHER_RESULT], "reasoning_effort": "low"})
    assert body["messages"][1] == {"role": "assistant", "content": [SIGNED, REDACTED, *WEATHER_USES]}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_a_tool_turn_without_signed_thinking_is_continued_without_thinking() -> None:
    body = translate({"messages": [HI, tool_turn(None), WEATHER_RESULT], "reasoning_effort": "low"})
    assert "thinking" not in body
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert body["messages"][1]["content"] == WEATHER_USES


def test_thinking_needs_no_signature_when_the_last_assistant_turn_called_no_tool() -> None:
    answered = {"role": "assistant", "content": "It is 4C."}
    messages = [HI, tool_turn(None), WEATHER_RESULT, answered, {"role": "user", "content": "And tomorrow?"}]
    assert translate({"messages": messages, "reasoning_effort": "low"})["thinking"]["type"] == "enabled"


def test_signed_thinking_is_kept_when_thinking_is_off() -> None:
    body = translate({"messages": [HI, tool_turn([SIGNED]), WEATHER_RESULT]})
    assert "thinking" not in body
    assert body["messages"][1]["content"] == [SIGNED, *WEATHER_USES]
