"""OpenAI chat requests translated to Bedrock Converse requests."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from modelyard_proxy.base.errors import GatewayError
from tests.providers_bedrock.common import BASE_URL, CLAUDE, KEYED, NOVA, chat_call, converse_body

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK"
HI = {"role": "user", "content": "Hi"}
DOCUMENT_NAME = f"document-{hashlib.sha256(PDF.encode()).hexdigest()[:12]}"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}
CALL = {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}


def refused(body: dict[str, Any], model: str = CLAUDE) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        converse_body(body, model)
    assert caught.value.status == 400
    return caught.value


def test_addressing_encodes_the_model_id_whole_and_picks_the_operation() -> None:
    whole = chat_call({"messages": [HI]})
    assert whole.url == f"{BASE_URL}/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    assert whole.headers == {"content-type": "application/json", "accept": "application/json"}
    streamed = chat_call({"messages": [HI]}, stream=True)
    assert streamed.url.endswith("%3A0/converse-stream")
    arn = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3"
    assert chat_call({"messages": [HI]}, arn).url == (
        f"{BASE_URL}/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-3"
        "/converse"
    )


def test_a_bedrock_api_key_is_a_bearer_token() -> None:
    call = chat_call({"messages": [HI]}, credential=KEYED)
    assert call.headers["authorization"] == "Bearer ABSKQmVkcm9ja0FQSUtleS0xMjM0NTY3ODkw"


def test_system_turns_and_sampling() -> None:
    body = converse_body(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
                HI,
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            ],
            "max_completion_tokens": 300,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
        }
    )
    assert body == {
        "system": [{"text": "Be brief."}, {"text": "Answer in English."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"text": "Hello!"}]},
            {"role": "user", "content": [{"text": "Weather?"}]},
        ],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
    }


def test_the_deprecated_max_tokens_is_read_too() -> None:
    assert converse_body({"messages": [HI], "max_tokens": 12})["inferenceConfig"] == {"maxTokens": 12}


def test_images_and_pdfs_travel_inline() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"}},
    ]
    blocks = converse_body({"messages": [{"role": "user", "content": content}]})["messages"][0]["content"]
    assert blocks == [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": PNG}}},
        {"document": {"format": "pdf", "name": DOCUMENT_NAME, "source": {"bytes": PDF}}},
    ]


def test_a_web_image_is_refused_naming_the_field() -> None:
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    error = refused({"messages": [{"role": "user", "content": [part]}]})
    assert error.param == "messages"
    assert "data: URLs" in error.message


def test_tools_round_trip_with_results_before_text() -> None:
    body = converse_body(
        {
            "messages": [
                HI,
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": '{"temp_c": 21}'},
                {"role": "user", "content": "thanks"},
            ],
            "tools": [WEATHER],
            "tool_choice": "required",
        }
    )
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}}],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": '{"temp_c": 21}'}]}},
                {"text": "thanks"},
            ],
        },
    ]
    spec = {
        "name": "get_weather",
        "description": "Weather for a city",
        "inputSchema": {"json": WEATHER["function"]["parameters"]},  # type: ignore[index]
    }
    assert body["toolConfig"] == {"tools": [{"toolSpec": spec}], "toolChoice": {"any": {}}}


@pytest.mark.parametrize(
    ("choice", "native"),
    [
        ("auto", {"auto": {}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
        (None, None),
    ],
)
def test_tool_choice(choice: Any, native: Any) -> None:
    body: dict[str, Any] = {"messages": [HI], "tools": [WEATHER]}
    if choice is not None:
        body["tool_choice"] = choice
    assert converse_body(body)["toolConfig"].get("toolChoice") == native


def test_tool_choice_none_sends_no_tools() -> None:
    assert "toolConfig" not in converse_body({"messages": [HI], "tools": [WEATHER], "tool_choice": "none"})


def test_tool_choice_none_cannot_drop_the_tools_of_a_conversation_that_used_them() -> None:
    messages = [HI, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "tooluse_1"}]
    error = refused({"messages": messages, "tools": [WEATHER], "tool_choice": "none"})
    assert error.param == "tool_choice"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("seed", 7),
        ("logprobs", True),
        ("presence_penalty", 0.5),
        ("response_format", {"type": "json_object"}),
        ("temperature", 1.5),
    ],
)
def test_what_converse_cannot_express_is_refused_naming_the_field(field: str, value: Any) -> None:
    assert refused({"messages": [HI], field: value}).param == field


def test_the_conversation_must_start_with_the_user() -> None:
    assert "start with a user message" in refused({"messages": [{"role": "assistant", "content": "Hi"}]}).message


def test_reasoning_effort_is_claudes_thinking_budget() -> None:
    body = converse_body({"messages": [HI], "reasoning_effort": "low", "max_completion_tokens": 8000})
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert body["inferenceConfig"] == {"maxTokens": 8000}


def test_reasoning_effort_on_a_model_without_a_known_switch_is_refused() -> None:
    assert refused({"messages": [HI], "reasoning_effort": "high"}, NOVA).param == "reasoning_effort"
    assert "additionalModelRequestFields" not in converse_body({"messages": [HI], "reasoning_effort": "none"}, NOVA)


def test_signed_reasoning_is_replayed_first_in_its_turn() -> None:
    kept = [
        {"type": "thinking", "thinking": "Need the weather.", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "b3BhcXVl"},
    ]
    assistant = {"role": "assistant", "tool_calls": [CALL], "extra_content": {"bedrock": {"thinking_blocks": kept}}}
    messages = [HI, assistant, {"role": "tool", "tool_call_id": "tooluse_1", "content": "sunny"}]
    body = converse_body({"messages": messages, "tools": [WEATHER], "reasoning_effort": "low"})
    assert body["messages"][1]["content"][:2] == [
        {"reasoningContent": {"reasoningText": {"text": "Need the weather.", "signature": "c2ln"}}},
        {"reasoningContent": {"redactedContent": "b3BhcXVl"}},
    ]
    assert "thinking" in body["additionalModelRequestFields"]


def test_a_tool_turn_without_its_reasoning_continues_without_thinking() -> None:
    """Converse refuses thinking when the last tool-use turn does not start with its reasoning."""
    messages = [HI, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "tooluse_1"}]
    body = converse_body({"messages": messages, "tools": [WEATHER], "reasoning_effort": "low"})
    assert "additionalModelRequestFields" not in body


def test_anthropics_own_blocks_are_not_replayed_to_bedrock() -> None:
    """Signatures are the signer's own: blocks an Anthropic upstream signed are not Bedrock's to verify."""
    kept = {"anthropic": {"thinking_blocks": [{"type": "thinking", "thinking": "x", "signature": "s"}]}}
    messages = [HI, {"role": "assistant", "content": "ok", "extra_content": kept}, HI]
    assert converse_body({"messages": messages})["messages"][1]["content"] == [{"text": "ok"}]
