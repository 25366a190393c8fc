"""Whole Gemini answers translated to OpenAI ``chat.completion`` bodies."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from google.genai import types
from pydantic import SecretStr

from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext
from modelyard_proxy.providers.openai_chat_to_gemini.adapter import GeminiAdapter
from modelyard_routing import Credential
from modelyard_routing.specs import Provider

CTX = CallContext(
    public_model="smart",
    upstream_model="gemini-2.5-flash",
    credential=Credential(
        id="gemini-main",
        provider=Provider.GEMINI,
        base_url="https://generativelanguage.googleapis.com/v1beta",
        api_key=SecretStr("AIzaSyTestKey0000000000000000000000000"),
    ),
    created=1755133856,
    completion_id="chatcmpl-local",
)
USAGE = {
    "promptTokenCount": 20,
    "candidatesTokenCount": 6,
    "thoughtsTokenCount": 40,
    "cachedContentTokenCount": 8,
    "totalTokenCount": 66,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 20}],
}
SAFETY_RATINGS = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]


def answer(*candidates: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "candidates": list(candidates),
        "usageMetadata": USAGE,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mbpYaO6fLfKQ1dkPxvvE0Qk",
        **extra,
    }


def candidate(parts: list[dict[str, Any]], finish: str = "STOP", index: int = 0) -> dict[str, Any]:
    return {
        "content": {"role": "model", "parts": parts},
        "finishReason": finish,
        "index": index,
        "safetyRatings": SAFETY_RATINGS,
    }


#: Gemini's signed call for Oslo's weather, and what the client gets for it as an answer's first call.
OSLO_PART: dict[str, Any] = {
    "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
    "thoughtSignature": "c2ln",
}
OSLO_CALL = {
    "id": "call_mbpYaO6fLfKQ1dkPxvvE0Qk_0",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    "extra_content": {"google": {"thought_signature": "c2ln"}},
}


def translate(response: dict[str, Any], ctx: CallContext = CTX) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(GeminiAdapter().chat_result(orjson.dumps(response), ctx))
    return result


def test_text_answer_with_thoughts_and_usage() -> None:
    response = answer(
        candidate(
            [
                {"text": "The user wants the weather.", "thought": True},
                {"text": "It is 4C "},
                {"text": "and overcast.", "thoughtSignature": "c2ln"},
            ]
        )
    )
    assert translate(response) == {
        "id": "mbpYaO6fLfKQ1dkPxvvE0Qk",
        "object": "chat.completion",
        "created": 1755133856,
        "model": "gemini-2.5-flash",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "It is 4C and overcast.",
                    "refusal": None,
                    "reasoning_content": "The user wants the weather.",
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 46,
            "total_tokens": 66,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 40},
        },
    }


def test_function_calls_get_synthesized_ids_and_keep_signatures() -> None:
    response = answer(
        candidate(
            [
                {"text": "Let me check."},
                OSLO_PART,
                {"functionCall": {"name": "get_time", "args": {}}},
            ]
        )
    )
    (choice,) = translate(response)["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        OSLO_CALL,
        {
            "id": "call_mbpYaO6fLfKQ1dkPxvvE0Qk_1",
            "type": "function",
            "function": {"name": "get_time", "arguments": "{}"},
        },
    ]


def test_without_parallel_tool_calls_each_choice_keeps_only_its_first_call() -> None:
    calls = [OSLO_PART, {"functionCall": {"name": "get_weather", "args": {"city": "Bergen"}}}]
    response = answer(candidate(calls, index=0), candidate(calls[::-1], index=1))
    choices = translate(response, dataclasses.replace(CTX, parallel_tool_calls=False))["choices"]
    assert [c["message"]["tool_calls"] for c in choices] == [
        [OSLO_CALL],
        [
            {
                "id": "call_mbpYaO6fLfKQ1dkPxvvE0Qk_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Bergen"}'},
            }
        ],
    ]
    assert [c["finish_reason"] for c in choices] == ["tool_calls", "tool_calls"]


def test_tool_only_answer_has_null_content() -> None:
    response = answer(candidate([{"functionCall": {"name": "get_time", "args": {}}}]))
    assert translate(response)["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("RECITATION", "content_filter"),
        ("LANGUAGE", "content_filter"),
        ("OTHER", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_RECITATION", "content_filter"),
        ("IMAGE_OTHER", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("UNEXPECTED_TOOL_CALL", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        ("SOMETHING_NEW", "stop"),
    ],
)
def test_finish_reasons(finish: str, expected: str) -> None:
    assert translate(answer(candidate([{"text": "x"}], finish)))["choices"][0]["finish_reason"] == expected


def test_max_tokens_during_a_call_stays_length() -> None:
    response = answer(candidate([{"functionCall": {"name": "f", "args": {}}}], "MAX_TOKENS"))
    assert translate(response)["choices"][0]["finish_reason"] == "length"


def test_several_candidates_become_choices_with_unique_call_ids() -> None:
    response = answer(
        candidate([{"text": "Oslo is cold."}], index=0),
        candidate([{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}], index=1),
    )
    choices = translate(response)["choices"]
    assert [c["index"] for c in choices] == [0, 1]
    assert [c["finish_reason"] for c in choices] == ["stop", "tool_calls"]
    assert choices[1]["message"]["tool_calls"][0]["id"] == "call_mbpYaO6fLfKQ1dkPxvvE0Qk_0"


def test_blocked_prompt_is_an_empty_content_filter_answer() -> None:
    response = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "blk1",
    }
    result = translate(response)
    assert result["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": None},
            "logprobs": None,
            "finish_reason": "content_filter",
        }
    ]
    assert result["usage"]["prompt_tokens"] == 9
    assert result["usage"]["completion_tokens"] == 0


def test_missing_ids_and_usage_fall_back_to_the_context() -> None:
    result = translate({"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}]})
    assert result["id"] == "chatcmpl-local"
    assert result["model"] == "gemini-2.5-flash"
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_logprobs_are_translated() -> None:
    cand = candidate([{"text": "Hi!"}])
    cand["logprobsResult"] = {
        "topCandidates": [
            {"candidates": [{"token": "Hi", "logProbability": -0.1}, {"token": "Hello", "logProbability": -2.5}]},
            {"candidates": [{"token": "!", "logProbability": -0.01}]},
        ],
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}, {"token": "!", "logProbability": -0.01}],
    }
    assert translate(answer(cand))["choices"][0]["logprobs"] == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                    {"token": "Hello", "logprob": -2.5, "bytes": [72, 101, 108, 108, 111]},
                ],
            },
            {
                "token": "!",
                "logprob": -0.01,
                "bytes": [33],
                "top_logprobs": [{"token": "!", "logprob": -0.01, "bytes": [33]}],
            },
        ],
        "refusal": None,
    }


def test_odd_logprobs_read_as_far_as_they_go() -> None:
    """A certain token's zero log probability is omitted on the wire; stray shapes do not break the answer."""
    cand = candidate([{"text": "Hi"}])
    cand["logprobsResult"] = {"topCandidates": ["?", {"candidates": 7}], "chosenCandidates": [{"token": "Hi"}, 3]}
    assert translate(answer(cand))["choices"][0]["logprobs"]["content"] == [
        {"token": "Hi", "logprob": 0.0, "bytes": [72, 105], "top_logprobs": []},
        {"token": "", "logprob": 0.0, "bytes": [], "top_logprobs": []},
    ]


@pytest.mark.parametrize("payload", [b"", b"<html>502 Bad Gateway</html>", b"[1,2]", b'{"status": "ok"}'])
def test_unreadable_answers_are_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedAnswer):  # the relay reports it for the credential, and tries again
        GeminiAdapter().chat_result(payload, CTX)


def test_a_blocked_prompt_without_candidates_is_an_answer() -> None:
    blocked = orjson.dumps({"promptFeedback": {"blockReason": "SAFETY"}})
    (choice,) = orjson.loads(GeminiAdapter().chat_result(blocked, CTX))["choices"]
    assert choice["finish_reason"] == "content_filter"


def test_fixtures_match_the_google_sdk_schema() -> None:
    """Keeps the hand-written upstream fixtures honest: the official SDK's models forbid unknown fields."""
    parts: list[dict[str, Any]] = [
        {"text": "thinking", "thought": True},
        {"text": "Let me check."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2ln"},
    ]
    for response in (answer(candidate(parts)), answer(candidate([{"text": "x"}], "MAX_TOKENS"))):
        types.GenerateContentResponse.model_validate_json(orjson.dumps(response))
