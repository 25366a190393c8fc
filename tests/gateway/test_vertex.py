"""Vertex AI through the gateway with the official SDKs, beyond what ``test_providers`` runs for every provider:
Vertex's framing and tokens, images, embeddings, Claude natively for Anthropic Messages clients, errors in either
shape, and fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from aiohttp import test_utils

from modelyard_simulator import RequestLog
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from modelyard_simulator.google_auth import GOOGLE_AUTH
from modelyard_simulator.google_keys import PROJECT
from tests.gateway.vertex_setup import CLAUDE, EMBEDDING, PATHS, REGION, STREAM_PATHS, vertex_gateway
from tests.harness import DEMO_KEY, GatewayFactory

#: A 1x1 transparent PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory, simulator: test_utils.TestServer) -> test_utils.TestServer:
    return await vertex_gateway(gateway_factory, simulator)


@pytest.fixture
async def claude(gateway: test_utils.TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=str(gateway.make_url("")), api_key=DEMO_KEY, max_retries=0) as sdk:
        yield sdk


def issued_bearer(simulator: test_utils.TestServer, header: str | None) -> bool:
    """Whether ``header`` carries a token the simulator issued and still honours."""
    scheme, _, token = (header or "").partition(" ")
    return scheme == "Bearer" and simulator.app[GOOGLE_AUTH].refusal(token) is None


@pytest.mark.parametrize("model", PATHS)
async def test_calls_carry_an_issued_token_and_no_key(
    client: openai.AsyncOpenAI, simulator: test_utils.TestServer, upstream_log: RequestLog, model: str
) -> None:
    await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    sent = upstream_log.last()
    assert sent.path == PATHS[model]
    assert issued_bearer(simulator, sent.header("authorization"))
    assert sent.header("x-goog-api-key") is None
    assert sent.header("x-api-key") is None


async def test_claude_is_framed_for_raw_predict(client: openai.AsyncOpenAI, upstream_log: RequestLog) -> None:
    await client.chat.completions.create(model="vertex-claude", messages=[{"role": "user", "content": "hi"}])
    sent = upstream_log.last()
    assert "model" not in sent.body
    assert sent.body["anthropic_version"] == "vertex-2023-10-16"
    assert sent.header("anthropic-version") is None


@pytest.mark.parametrize(("model", "where"), [("vertex-claude", "messages"), ("vertex-gemini", "contents")])
async def test_images_reach_both_publishers_inline(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str, where: str
) -> None:
    await client.chat.completions.create(
        model=model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    parts = upstream_log.last().body[where][0]["content" if where == "messages" else "parts"]
    images = [p for p in parts if p.get("type") == "image" or "inlineData" in p]
    assert len(images) == 1
    image = images[0].get("source") or images[0]["inlineData"]
    assert image["data"] == PNG


async def test_embeddings_through_predict_with_token_counts(
    client: openai.AsyncOpenAI, upstream_log: RequestLog
) -> None:
    floats = await client.embeddings.create(
        model="vertex-embedding", input=["one two", "three"], encoding_format="float", dimensions=8
    )
    assert [len(item.embedding) for item in floats.data] == [8, 8]
    assert floats.usage.prompt_tokens > 0
    sent = upstream_log.last()
    assert sent.path == f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/google/models/{EMBEDDING}:predict"
    assert sent.body == {
        "instances": [{"content": "one two"}, {"content": "three"}],
        "parameters": {"outputDimensionality": 8},
    }
    decoded = await client.embeddings.create(model="vertex-embedding", input=["one two", "three"], dimensions=8)
    for packed, plain in zip(decoded.data, floats.data, strict=True):
        assert packed.embedding == pytest.approx(plain.embedding, rel=1e-6)


async def test_claude_on_vertex_has_no_embeddings(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.embeddings.create(model="vertex-claude", input="one")
    assert caught.value.code == "unsupported_endpoint"


async def test_messages_clients_reach_claude_on_vertex_natively(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog
) -> None:
    message = await claude.messages.create(
        model="vertex-claude",
        max_tokens=64,
        messages=[{"role": "user", "content": "hello natively"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    assert "hello natively" in "".join(block.text for block in message.content if block.type == "text")
    sent = upstream_log.last()
    assert sent.path == PATHS["vertex-claude"]
    assert sent.body == {
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello natively"}],
        "anthropic_version": "vertex-2023-10-16",
    }
    assert sent.header("anthropic-beta") == "context-1m-2025-08-07"
    assert sent.header("anthropic-version") is None


async def test_messages_clients_stream_from_claude_on_vertex(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog
) -> None:
    async with claude.messages.stream(
        model="vertex-claude", max_tokens=64, messages=[{"role": "user", "content": "stream natively"}]
    ) as stream:
        text = "".join([delta async for delta in stream.text_stream])
        final = await stream.get_final_message()
    assert "stream natively" in text
    assert final.usage.output_tokens > 0
    assert upstream_log.last().path == STREAM_PATHS["vertex-claude"]


async def test_messages_clients_reach_gemini_on_vertex_through_the_codec(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog
) -> None:
    message = await claude.messages.create(
        model="vertex-gemini", max_tokens=64, messages=[{"role": "user", "content": "hello gemini"}]
    )
    assert "hello gemini" in "".join(block.text for block in message.content if block.type == "text")
    assert upstream_log.last().path == PATHS["vertex-gemini"]


async def test_a_vertex_429_falls_back_to_another_provider_and_back(
    client: openai.AsyncOpenAI, simulator: test_utils.TestServer
) -> None:
    async def served_by() -> str:
        raw = await client.chat.completions.with_raw_response.create(
            model="claude-anywhere", messages=[{"role": "user", "content": "hi"}]
        )
        return raw.headers["x-modelyard-provider"]

    simulator.app[SCENARIOS].models[CLAUDE] = Behaviour(status=429)
    assert await served_by() == "anthropic"
    del simulator.app[SCENARIOS].models[CLAUDE]
    assert await served_by() == "vertex-ai"


@pytest.mark.parametrize(
    ("model", "status", "error"),
    [
        ("vertex-gemini", 429, openai.RateLimitError),
        ("vertex-claude", 429, openai.RateLimitError),  # Vertex's front door: Google's shape
        ("vertex-claude", 529, openai.InternalServerError),  # Claude's own: Anthropic's shape
        ("vertex-gemini", 403, openai.APIStatusError),
        ("vertex-claude", 404, openai.APIStatusError),
    ],
)
async def test_vertex_errors_in_either_shape_become_the_gateways(
    client: openai.AsyncOpenAI, model: str, status: int, error: type[openai.APIStatusError]
) -> None:
    with pytest.raises(error) as caught:
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": f"hi [simulate status={status}]"}]
        )
    expected = {
        429: (429, "rate_limit_exceeded"),
        529: (503, "upstream_unavailable"),
        403: (502, "upstream_auth_failed"),
        404: (502, "upstream_not_found"),
    }[status]
    assert (caught.value.status_code, caught.value.code) == expected
    assert "vertex-" in caught.value.message  # the credential is named
