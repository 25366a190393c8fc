"""The official google-genai SDK against the simulator's Gemini API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import test_utils
from google import genai
from google.genai import errors, types

from modelyard_simulator import Behaviour, RequestLog, ScenarioBook, ToolCall

# google-genai subclasses aiohttp.ClientSession, which aiohttp deprecates; nothing to fix on our side.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession from ClientSession is discouraged:DeprecationWarning"
)

MODEL = "gemini-sim"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
        )
    ]
)


async def drain(
    stream: AsyncIterator[types.GenerateContentResponse], into: list[types.GenerateContentResponse]
) -> None:
    async for chunk in stream:
        into.append(chunk)


def headers(**values: str) -> types.GenerateContentConfig:
    """Per-request ``x-simulator-*`` headers through the SDK's http options."""
    scripted = {f"x-simulator-{name.replace('_', '-')}": value for name, value in values.items()}
    return types.GenerateContentConfig(http_options=types.HttpOptions(headers=scripted))


async def test_generate_content(gemini: genai.Client, sim_log: RequestLog, api_key: str) -> None:
    response = await gemini.aio.models.generate_content(model=MODEL, contents="Weather in Oslo?")
    assert response.text == "echo: Weather in Oslo?"
    assert response.candidates is not None
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content is not None
    assert candidate.content.role == "model"
    assert response.model_version == MODEL
    assert response.response_id
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (3, 4, 7)
    received = sim_log.last()
    assert received.path.endswith(f"/models/{MODEL}:generateContent")
    assert received.header("x-goog-api-key") == api_key


async def test_generate_content_stream(gemini: genai.Client) -> None:
    chunks = [
        chunk
        async for chunk in await gemini.aio.models.generate_content_stream(model=MODEL, contents="Weather in Oslo?")
    ]
    assert "".join(c.text or "" for c in chunks) == "echo: Weather in Oslo?"
    assert len(chunks) == 4
    assert [c.candidates[0].finish_reason for c in chunks if c.candidates] == [
        None,
        None,
        None,
        types.FinishReason.STOP,
    ]
    last_usage = chunks[-1].usage_metadata
    assert last_usage is not None
    assert last_usage.candidates_token_count == 4
    assert len({c.response_id for c in chunks}) == 1


async def test_function_call_and_function_response(gemini: genai.Client, book: ScenarioBook) -> None:
    book.default = Behaviour(tool_call=ToolCall(name="get_weather", arguments={"city": "Oslo"}))
    config = types.GenerateContentConfig(tools=[WEATHER])
    response = await gemini.aio.models.generate_content(model=MODEL, contents="Weather in Oslo?", config=config)
    assert response.function_calls is not None
    call = response.function_calls[0]
    assert (call.name, call.args) == ("get_weather", {"city": "Oslo"})

    history = [
        types.Content(role="user", parts=[types.Part.from_text(text="Weather in Oslo?")]),
        types.Content(role="model", parts=[types.Part(function_call=call)]),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"output": "4C"})],
        ),
    ]
    answer = await gemini.aio.models.generate_content(model=MODEL, contents=history, config=config)
    assert answer.function_calls is None
    assert answer.text == 'echo: {"output":"4C"}'


async def test_thoughts_and_json_mode(gemini: genai.Client) -> None:
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024),
        response_mime_type="application/json",
        response_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    response = await gemini.aio.models.generate_content(model=MODEL, contents="Oslo", config=config)
    assert response.candidates is not None
    assert response.candidates[0].content is not None
    parts = response.candidates[0].content.parts or []
    assert parts[0].thought is True
    assert parts[0].text == "The user said: Oslo"
    assert response.parsed == {"city": "Oslo"}
    assert response.usage_metadata is not None
    assert response.usage_metadata.thoughts_token_count == 4


async def test_candidates_with_log_probabilities(gemini: genai.Client) -> None:
    config = types.GenerateContentConfig(candidate_count=2, response_logprobs=True, logprobs=3)
    response = await gemini.aio.models.generate_content(model=MODEL, contents="Weather in Oslo?", config=config)
    candidates = response.candidates or []
    assert [c.index for c in candidates] == [0, 1]
    for candidate in candidates:
        assert candidate.content is not None
        assert candidate.content.parts is not None
        assert candidate.content.parts[0].text == "echo: Weather in Oslo?"
        result = candidate.logprobs_result
        assert result is not None
        chosen = result.chosen_candidates or []
        assert "".join(c.token or "" for c in chosen) == "echo: Weather in Oslo?"
        probabilities = [c.log_probability or 0.0 for c in chosen]
        assert all(p < 0 for p in probabilities)
        assert candidate.avg_logprobs == pytest.approx(sum(probabilities) / len(probabilities))
        assert result.log_probability_sum == pytest.approx(sum(probabilities))
        steps = result.top_candidates or []
        assert [len(step.candidates or []) for step in steps] == [3] * len(chosen)
        for step, token in zip(steps, chosen, strict=True):
            ranked = step.candidates or []
            assert (ranked[0].token, ranked[0].log_probability) == (token.token, token.log_probability)
            assert [r.log_probability or 0.0 for r in ranked] == sorted(
                (r.log_probability or 0.0 for r in ranked), reverse=True
            )
    assert response.usage_metadata is not None
    assert response.usage_metadata.candidates_token_count == 2 * 4


async def test_log_probabilities_without_top_candidates(gemini: genai.Client) -> None:
    config = types.GenerateContentConfig(response_logprobs=True)
    response = await gemini.aio.models.generate_content(model=MODEL, contents="Oslo", config=config)
    (candidate,) = response.candidates or []
    assert candidate.logprobs_result is not None
    assert len(candidate.logprobs_result.chosen_candidates or []) == 2
    assert not candidate.logprobs_result.top_candidates


@pytest.mark.parametrize(
    "config",
    [
        types.GenerateContentConfig(candidate_count=9),
        types.GenerateContentConfig(candidate_count=0),
        types.GenerateContentConfig(response_logprobs=True, logprobs=21),
        types.GenerateContentConfig(logprobs=2),
    ],
    ids=["too-many-candidates", "no-candidates", "too-many-top-logprobs", "logprobs-without-response-logprobs"],
)
async def test_generation_settings_out_of_range_are_invalid_arguments(
    gemini: genai.Client, config: types.GenerateContentConfig
) -> None:
    with pytest.raises(errors.ClientError) as caught:
        await gemini.aio.models.generate_content(model=MODEL, contents="Oslo", config=config)
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")


async def test_embed_content(gemini: genai.Client, sim_log: RequestLog) -> None:
    result = await gemini.aio.models.embed_content(
        model="text-embedding-sim",
        contents=["alpha", "beta"],
        config=types.EmbedContentConfig(output_dimensionality=8),
    )
    assert result.embeddings is not None
    assert [len(e.values or []) for e in result.embeddings] == [8, 8]
    assert result.embeddings[0].values != result.embeddings[1].values
    assert sim_log.last().path.endswith(":batchEmbedContents")


async def test_count_tokens(gemini: genai.Client) -> None:
    counted = await gemini.aio.models.count_tokens(model=MODEL, contents="one two three")
    assert counted.total_tokens == 3


async def test_rate_limit_is_a_client_error_with_retry_info(gemini: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        await gemini.aio.models.generate_content(
            model=MODEL, contents="hi", config=headers(status="429", retry_after="7")
        )
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "7s"


async def test_unavailable_is_a_server_error(gemini: genai.Client) -> None:
    with pytest.raises(errors.ServerError) as caught:
        await gemini.aio.models.generate_content(model=MODEL, contents="[simulate status=503] hi")
    assert caught.value.code == 503
    assert caught.value.status == "UNAVAILABLE"


async def test_wrong_key_is_api_key_invalid(gemini: genai.Client, book: ScenarioBook) -> None:
    book.default = Behaviour(require_key="other")
    with pytest.raises(errors.ClientError) as caught:
        await gemini.aio.models.generate_content(model=MODEL, contents="hi")
    assert caught.value.code == 400
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


async def test_mid_stream_error_raises(gemini: genai.Client) -> None:
    stream = await gemini.aio.models.generate_content_stream(
        model=MODEL, contents="Weather in Oslo?", config=headers(mid_stream_error="true", cut_after_chunks="2")
    )
    chunks: list[types.GenerateContentResponse] = []
    with pytest.raises(errors.ServerError) as caught:
        await drain(stream, chunks)
    assert [c.text for c in chunks] == ["echo:", " Weather"]
    assert caught.value.code == 503


async def test_cut_stream_raises(gemini: genai.Client) -> None:
    stream = await gemini.aio.models.generate_content_stream(
        model=MODEL, contents="Weather in Oslo?", config=headers(cut_after_chunks="1")
    )
    # google-genai has no connection error class of its own (its errors module covers HTTP statuses only): its
    # async client documents aiohttp as its transport and lets aiohttp's public payload error through.
    with pytest.raises(aiohttp.ClientPayloadError):
        await drain(stream, [])


async def test_key_in_query_and_crlf_events(sim: test_utils.TestServer, book: ScenarioBook) -> None:
    book.default = Behaviour(require_key="query-key")
    url = sim.make_url(f"/v1beta/models/{MODEL}:streamGenerateContent").with_query(alt="sse", key="query-key")
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        assert response.status == 200
        raw = await response.read()
    assert raw.startswith(b"data: {")
    assert raw.endswith(b"}\r\n\r\n")
    assert raw.count(b"\r\n\r\n") == 2


async def test_unknown_action_is_not_found(sim: test_utils.TestServer) -> None:
    async with aiohttp.ClientSession() as session, session.post(sim.make_url(f"/v1beta/models/{MODEL}:fly")) as resp:
        assert resp.status == 404
        payload = await resp.json()
    assert payload["error"]["status"] == "NOT_FOUND"
