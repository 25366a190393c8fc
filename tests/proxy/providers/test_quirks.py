"""The vendor quirk table, applied by the one generic rewrite: translations, refusals, and untouched bodies."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.openai_chat_to_openai_chat.quirks import QUIRKS, Quirks, rewrite_chat, rewrite_embeddings
from modelyard_routing import Provider

USER = {"role": "user", "content": "What is the weather in Oslo?"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [USER], **fields}


@pytest.mark.parametrize("provider", list(QUIRKS))
def test_a_plain_request_is_untouched_by_every_vendor(provider: Provider) -> None:
    body = chat(temperature=0.2, top_p=0.9, stream=True, stop=["\n\n"], tools=[WEATHER], tool_choice="auto")
    assert rewrite_chat(body, QUIRKS[provider], "m") is None


def test_a_model_change_alone_rewrites_only_the_model() -> None:
    body = chat(temperature=0.2)
    assert rewrite_chat(body, QUIRKS[Provider.OPENAI], "gpt-4o-2024-08-06") == {**body, "model": "gpt-4o-2024-08-06"}


TRANSLATIONS: list[tuple[str, Provider, dict[str, Any], dict[str, Any]]] = [
    (
        "mistral token limit and seed spellings",
        Provider.MISTRAL,
        chat(max_completion_tokens=256, seed=7),
        chat(max_tokens=256, random_seed=7),
    ),
    (
        "mistral max_completion_tokens wins over max_tokens",
        Provider.MISTRAL,
        chat(max_tokens=100, max_completion_tokens=256),
        chat(max_tokens=256),
    ),
    (
        "a null source does not erase the target",
        Provider.MISTRAL,
        chat(max_tokens=100, max_completion_tokens=None),
        chat(max_tokens=100),
    ),
    (
        "mistral tool_choice required is any",
        Provider.MISTRAL,
        chat(tools=[WEATHER, TIME], tool_choice="required"),
        chat(tools=[WEATHER, TIME], tool_choice="any"),
    ),
    (
        "mistral named tool_choice is any over that one tool",
        Provider.MISTRAL,
        chat(tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_time"}}),
        chat(tools=[TIME], tool_choice="any"),
    ),
    (
        "mistral forbids nulls, names, and OpenAI-only extras",
        Provider.MISTRAL,
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Be brief.", "name": "ops"},
                {"role": "user", "content": "Hi", "name": "alice"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "name": "get_time", "content": "12:00"},
            ],
            "temperature": None,
            "user": "u-42",
            "store": False,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "name": "get_time", "content": "12:00"},
            ],
            "stream": True,
        },
    ),
    (
        "groq drops message names and OpenAI's service tiers",
        Provider.GROQ,
        chat(messages=[{"role": "user", "content": "Hi", "name": "alice"}], service_tier="default"),
        chat(messages=[{"role": "user", "content": "Hi"}]),
    ),
    (
        "deepseek token limit spelling, seed dropped",
        Provider.DEEPSEEK,
        chat(max_completion_tokens=512, seed=1),
        chat(max_tokens=512),
    ),
    (
        "deepseek reasoning_effort none is thinking disabled",
        Provider.DEEPSEEK,
        chat(reasoning_effort="none"),
        chat(thinking={"type": "disabled"}),
    ),
    (
        "qwen flattens text-only content and keeps images as parts",
        Provider.QWEN,
        chat(
            messages=[
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Line one"}, {"type": "text", "text": "line two"}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    ],
                },
            ]
        ),
        chat(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Line one\nline two"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    ],
                },
            ]
        ),
    ),
    (
        "qwen reasoning_effort is enable_thinking with a budget",
        Provider.QWEN,
        chat(reasoning_effort="low", max_completion_tokens=4096),
        chat(enable_thinking=True, thinking_budget=2048, max_tokens=4096),
    ),
    (
        "qwen reasoning_effort none turns thinking off",
        Provider.QWEN,
        chat(reasoning_effort="none"),
        chat(enable_thinking=False),
    ),
    (
        "together token limit spelling",
        Provider.TOGETHER,
        chat(max_completion_tokens=64),
        chat(max_tokens=64),
    ),
    (
        "developer role is system outside OpenAI",
        Provider.TOGETHER,
        chat(messages=[{"role": "developer", "content": "Be brief."}, USER]),
        chat(messages=[{"role": "system", "content": "Be brief."}, USER]),
    ),
]


@pytest.mark.parametrize(
    ("provider", "body", "expected"), [case[1:] for case in TRANSLATIONS], ids=[case[0] for case in TRANSLATIONS]
)
def test_translations(provider: Provider, body: dict[str, Any], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(body)
    assert rewrite_chat(body, QUIRKS[provider], "m") == expected
    assert body == before  # the client's parsed body is never mutated


PASSED_THROUGH: list[tuple[Provider, dict[str, Any]]] = [
    (Provider.OPENAI, chat(reasoning_effort="high", max_completion_tokens=1000)),
    (
        Provider.OPENAI,
        chat(response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}),
    ),
    (
        Provider.OPENAI,
        chat(messages=[{"role": "developer", "content": "Be brief."}, USER], logprobs=True, top_logprobs=3),
    ),
    (Provider.DEEPSEEK, chat(reasoning_effort="high", response_format={"type": "json_object"}, n=1)),
    (Provider.MISTRAL, chat(reasoning_effort="high", n=2, logprobs=False)),
    (Provider.MISTRAL, chat(response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": {}}})),
    (Provider.GROQ, chat(reasoning_effort="medium", n=1, logprobs=False, temperature=0)),
    (Provider.TOGETHER, chat(reasoning_effort="low", logit_bias={"50256": -100})),
    (
        Provider.OPENAI_COMPATIBLE,
        chat(reasoning_effort="high", max_completion_tokens=10, guided_json={"type": "object"}),
    ),
]


@pytest.mark.parametrize(("provider", "body"), PASSED_THROUGH)
def test_supported_parameters_pass_untouched(provider: Provider, body: dict[str, Any]) -> None:
    assert rewrite_chat(body, QUIRKS[provider], "m") is None


REFUSED: list[tuple[Provider, dict[str, Any], str]] = [
    (Provider.MISTRAL, chat(logprobs=True), "logprobs"),
    (Provider.MISTRAL, chat(top_logprobs=2), "top_logprobs"),
    (Provider.MISTRAL, chat(logit_bias={"1": 5}), "logit_bias"),
    (
        Provider.MISTRAL,
        chat(tools=[WEATHER], tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}),
        "tool_choice",
    ),
    (
        Provider.MISTRAL,
        chat(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_time"}}),
        "tool_choice",
    ),
    (Provider.GROQ, chat(logprobs=True), "logprobs"),
    (Provider.GROQ, chat(top_logprobs=5), "top_logprobs"),
    (Provider.GROQ, chat(logit_bias={"1": 5}), "logit_bias"),
    (Provider.GROQ, chat(n=3), "n"),
    (Provider.DEEPSEEK, chat(n=2), "n"),
    (Provider.DEEPSEEK, chat(logit_bias={"1": 5}), "logit_bias"),
    (Provider.DEEPSEEK, chat(tools=[WEATHER, {"type": "custom", "custom": {"name": "sql"}}]), "tools"),
    (Provider.DEEPSEEK, chat(tools=[{"type": ["function"], "function": {"name": "f"}}]), "tools"),
    (Provider.DEEPSEEK, chat(tools=[{"type": {"function": 1}, "function": {"name": "f"}}]), "tools"),
    (
        Provider.DEEPSEEK,
        chat(response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}),
        "response_format",
    ),
    (Provider.QWEN, chat(logit_bias={"1": 5}), "logit_bias"),
    (Provider.QWEN, chat(reasoning_effort="extreme"), "reasoning_effort"),
]


@pytest.mark.parametrize(("provider", "body", "param"), REFUSED)
def test_unsupported_parameters_are_refused(provider: Provider, body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        rewrite_chat(body, QUIRKS[provider], "m")
    assert caught.value.status == 400
    assert caught.value.param == param
    if caught.value.code == "unsupported_parameter":
        assert f"the {provider.value} provider" in caught.value.message


def test_reasoning_effort_is_refused_where_a_vendor_has_neither_the_field_nor_a_mapping() -> None:
    quirks = Quirks(name="plain", reasoning_effort=False)
    with pytest.raises(GatewayError) as caught:
        rewrite_chat(chat(reasoning_effort="high"), quirks, "m")
    assert (caught.value.status, caught.value.code, caught.value.param) == (
        400,
        "unsupported_parameter",
        "reasoning_effort",
    )
    assert rewrite_chat(chat(reasoning_effort=None), quirks, "m") is None


def test_a_mapping_wins_over_refusal_for_the_efforts_it_names() -> None:
    quirks = Quirks(name="plain", reasoning_effort=False, reasoning_fields={"none": {"thinking": False}})
    assert rewrite_chat(chat(reasoning_effort="none"), quirks, "m") == chat(thinking=False)
    with pytest.raises(GatewayError):
        rewrite_chat(chat(reasoning_effort="low"), quirks, "m")


def test_embeddings_follow_the_vendor_spelling() -> None:
    body = {"model": "m", "input": ["a", "b"], "dimensions": 256, "user": "u-1", "encoding_format": "float"}
    assert rewrite_embeddings(body, QUIRKS[Provider.MISTRAL], "codestral-embed") == {
        "model": "codestral-embed",
        "input": ["a", "b"],
        "output_dimension": 256,
        "encoding_format": "float",
    }
    assert rewrite_embeddings(body, QUIRKS[Provider.OPENAI], "m") is None


@pytest.mark.parametrize("provider", [Provider.DEEPSEEK, Provider.GROQ])
def test_embeddings_are_refused_by_vendors_without_the_endpoint(provider: Provider) -> None:
    with pytest.raises(GatewayError) as caught:
        rewrite_embeddings({"model": "m", "input": "a"}, QUIRKS[provider], "m")
    assert caught.value.status == 400


def test_every_openai_family_provider_has_a_row() -> None:
    family = set(Provider) - {
        Provider.AZURE_OPENAI,
        Provider.ANTHROPIC,
        Provider.GEMINI,
        Provider.BEDROCK,
        Provider.VERTEX_AI,
    }
    assert set(QUIRKS) == family
    assert all(quirks.name == provider.value for provider, quirks in QUIRKS.items())


def test_quirks_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        QUIRKS[Provider.OPENAI].strip_nulls = True  # type: ignore[misc]
