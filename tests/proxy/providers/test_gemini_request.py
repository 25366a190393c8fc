"""OpenAI chat requests translated to Gemini ``generateContent`` calls."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from google.genai import types
from pydantic import SecretStr

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext, Inbound
from modelyard_proxy.providers.openai_chat_to_gemini.adapter import GeminiAdapter
from modelyard_routing import Credential
from modelyard_routing.specs import Provider

KEY = "AIzaSyTestKey0000000000000000000000000"
CREDENTIAL = Credential(
    id="gemini-main",
    provider=Provider.GEMINI,
    base_url="https://generativelanguage.googleapis.com/v1beta",
    api_key=SecretStr(KEY),
    headers={"x-goog-user-project": "acme"},
)
USER = {"role": "user", "content": "Weather in Oslo?"}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def ctx(stream: bool = False, model: str = "gemini-2.5-flash") -> CallContext:
    return CallContext(public_model="smart", upstream_model=model, credential=CREDENTIAL, stream=stream)


def call(body: dict[str, Any], *, stream: bool = False, model: str = "gemini-2.5-flash") -> dict[str, Any]:
    body = {"model": "smart", "messages": [USER], **body}
    upstream = GeminiAdapter().chat_call(Inbound(body, orjson.dumps(body)), ctx(stream, model))
    parsed: dict[str, Any] = orjson.loads(upstream.body)
    return parsed


def refused(body: dict[str, Any], *, stream: bool = False) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        call(body, stream=stream)
    assert caught.value.status == 400
    return caught.value


def test_url_and_headers_use_the_header_key_never_the_query() -> None:
    adapter = GeminiAdapter()
    body = {"model": "smart", "messages": [USER]}
    plain = adapter.chat_call(Inbound(body, b""), ctx())
    streamed = adapter.chat_call(Inbound(body, b""), ctx(stream=True))
    base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
    assert plain.url == f"{base}:generateContent"
    assert streamed.url == f"{base}:streamGenerateContent?alt=sse"
    assert plain.method == "POST"
    assert plain.headers == {
        "x-goog-user-project": "acme",
        "content-type": "application/json",
        "x-goog-api-key": KEY,
    }
    assert KEY not in plain.url
    assert adapter.name == "gemini"


def test_tuned_model_names_keep_their_collection() -> None:
    upstream = GeminiAdapter().chat_call(Inbound({"messages": [USER]}, b""), ctx(model="tunedModels/my-model-42"))
    assert upstream.url.endswith("/v1beta/tunedModels/my-model-42:generateContent")


def test_plain_conversation() -> None:
    body = call(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": [{"type": "text", "text": "Weather"}, {"type": "text", "text": "Oslo?"}]},
            ]
        }
    )
    assert body == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in English."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "Weather"}, {"text": "Oslo?"}]},
        ],
    }


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
            {"inlineData": {"mimeType": "image/png", "data": PNG}},
        ),
        (
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png?size=large"}},
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png?size=large"}},
        ),
        (
            {"type": "image_url", "image_url": {"url": "https://example.com/render"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/render"}},
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        ),
        (
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg==", "filename": "a.pdf"}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}},
        ),
    ],
)
def test_user_media_parts(part: dict[str, Any], expected: dict[str, Any]) -> None:
    body = call({"messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, part]}]})
    assert body["contents"] == [{"role": "user", "parts": [{"text": "What is this?"}, expected]}]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "flac"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "video", "video": {}},
    ],
)
def test_unusable_user_parts_are_refused(part: dict[str, Any]) -> None:
    error = refused({"messages": [{"role": "user", "content": [part]}]})
    assert error.param == "messages"


def history(second_call: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = [
        {
            "id": "call_r1_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            "extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}},
        }
    ]
    if second_call is not None:
        calls.append(second_call)
    return [
        USER,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_r1_0", "content": '{"temp_c": 4, "sky": "overcast"}'},
    ]


def test_tool_round_trip_maps_ids_back_to_names_and_merges_results() -> None:
    second = {"id": "call_r1_1", "type": "function", "function": {"name": "get_time", "arguments": ""}}
    messages = [
        *history(second),
        {"role": "tool", "tool_call_id": "call_r1_1", "content": [{"type": "text", "text": "14:05"}]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    body = call({"messages": messages, "tools": [WEATHER_TOOL], "tool_choice": "auto"})
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Oslo?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2lnbmF0dXJl"},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": {"temp_c": 4, "sky": "overcast"}}}},
                {"functionResponse": {"name": "get_time", "response": {"output": "14:05"}}},
                {"text": "And tomorrow?"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
                }
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


@pytest.mark.parametrize("content", ["[1, 2]", "not json {", "{broken", "42"])
def test_tool_results_that_are_not_json_objects_stay_text(content: str) -> None:
    messages = history()
    messages[-1] = {**messages[-1], "content": content}
    body = call({"messages": messages})
    assert body["contents"][-1]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"output": content}}}
    ]


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gemini-3-pro-preview", "skip_thought_signature_validator"), ("gemini-2.5-pro", None)],
)
def test_unsigned_calls_get_the_documented_bypass_on_models_that_validate(model: str, expected: str | None) -> None:
    messages = history()
    del messages[1]["tool_calls"][0]["extra_content"]
    part = call({"messages": messages}, model=model)["contents"][1]["parts"][0]
    assert part.get("thoughtSignature") == expected


def test_unknown_tool_call_id_is_refused() -> None:
    messages = history()
    messages[-1] = {**messages[-1], "tool_call_id": "call_from_elsewhere"}
    error = refused({"messages": messages})
    assert "call_from_elsewhere" in error.message


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = call({"tools": [WEATHER_TOOL], "tool_choice": choice})
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_no_parallel_tool_calls_with_a_named_function_allows_that_function_only() -> None:
    """LangChain's ``with_structured_output(method="function_calling")`` sends exactly this."""
    body = call(
        {
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
        }
    )
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert "parallel_tool_calls" not in orjson.dumps(body).decode()


def test_generation_config_mapping() -> None:
    body = call(
        {
            "max_completion_tokens": 512,
            "max_tokens": 99,
            "temperature": 1.5,
            "top_p": 0.9,
            "top_k": 40,
            "stop": "END",
            "seed": 7,
            "n": 2,
            "presence_penalty": 0.5,
            "frequency_penalty": -0.25,
            "response_format": {"type": "json_object"},
            "user": "u-1",
            "store": False,
            "metadata": {"team": "a"},
            "service_tier": "auto",
            "parallel_tool_calls": True,
        }
    )
    assert body["generationConfig"] == {
        "maxOutputTokens": 512,
        "temperature": 1.5,
        "topP": 0.9,
        "topK": 40,
        "stopSequences": ["END"],
        "seed": 7,
        "candidateCount": 2,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.25,
        "responseMimeType": "application/json",
    }


def test_json_schema_and_logprobs() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    body = call(
        {
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
            "logprobs": True,
            "top_logprobs": 3,
        }
    )
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
        "responseLogprobs": True,
        "logprobs": 3,
    }


@pytest.mark.parametrize(
    ("effort", "expected"),
    [
        ("none", {"thinkingBudget": 0}),
        ("minimal", {"thinkingBudget": 1024, "includeThoughts": True}),
        ("low", {"thinkingBudget": 2048, "includeThoughts": True}),
        ("medium", {"thinkingBudget": 8192, "includeThoughts": True}),
        ("high", {"thinkingBudget": 16384, "includeThoughts": True}),
    ],
)
def test_reasoning_effort_becomes_a_thinking_budget(effort: str, expected: dict[str, Any]) -> None:
    assert call({"reasoning_effort": effort})["generationConfig"] == {"thinkingConfig": expected}


def test_no_generation_config_when_nothing_is_asked() -> None:
    assert "generationConfig" not in call({})


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"verbosity": "low"}, "verbosity"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"tools": [WEATHER_TOOL], "parallel_tool_calls": "no"}, "parallel_tool_calls"),
        ({"tools": [WEATHER_TOOL], "parallel_tool_calls": 0}, "parallel_tool_calls"),
        ({"tools": [{"type": "custom", "custom": {"name": "grep"}}]}, "tools"),
        ({"tool_choice": {"type": "allowed_tools", "allowed_tools": {}}}, "tool_choice"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"n": 0}, "n"),
        ({"seed": "7"}, "seed"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"reasoning_effort": {"effort": "high"}}, "reasoning_effort"),
        ({"response_format": {"type": {"json": True}}}, "response_format"),
        ({"response_format": {"type": ["json_object"]}}, "response_format"),
    ],
)
def test_refused_parameters(extra: dict[str, Any], param: str) -> None:
    assert refused(extra).param == param


@pytest.mark.parametrize(("extra", "param"), [({"n": 2}, "n"), ({"logprobs": True}, "logprobs")])
def test_parameters_refused_only_when_streaming(extra: dict[str, Any], param: str) -> None:
    call(extra)
    assert refused(extra, stream=True).param == param


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "system", "content": "Only a system prompt"}],
        [{"role": "function", "name": "f", "content": "legacy"}],
        ["not an object"],
        [USER, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {}}]}],
    ],
)
def test_malformed_conversations_are_refused(messages: list[Any]) -> None:
    assert refused({"messages": messages}).param == "messages"


def test_harmless_defaults_are_accepted() -> None:
    body = call({"logit_bias": {}, "modalities": ["text"], "verbosity": "medium", "stop": [], "logprobs": False})
    assert "generationConfig" not in body


def test_translation_matches_the_google_sdk_schema() -> None:
    """The official SDK's models forbid unknown fields: a misspelt field name would fail here."""
    second = {"id": "call_r1_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look"}, image]},
        *history(second),
        {"role": "tool", "tool_call_id": "call_r1_1", "content": "14:05"},
    ]
    body = call(
        {
            "messages": messages,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "max_completion_tokens": 100,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": ["END"],
            "seed": 1,
            "n": 1,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.1,
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
            "logprobs": True,
            "top_logprobs": 2,
            "reasoning_effort": "low",
        },
        model="gemini-3-flash-preview",
    )
    assert set(body) == {"systemInstruction", "contents", "tools", "toolConfig", "generationConfig"}
    types.Content.model_validate_json(orjson.dumps(body["systemInstruction"]))
    for content in body["contents"]:
        types.Content.model_validate_json(orjson.dumps(content))
    for tool in body["tools"]:
        types.Tool.model_validate_json(orjson.dumps(tool))
    types.ToolConfig.model_validate_json(orjson.dumps(body["toolConfig"]))
    config = types.GenerationConfig.model_validate_json(orjson.dumps(body["generationConfig"]))
    assert config.thinking_config == types.ThinkingConfig(thinking_budget=2048, include_thoughts=True)
