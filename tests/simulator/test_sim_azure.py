"""The official Azure OpenAI client against the simulator's deployment and v1 paths."""

from __future__ import annotations

import aiohttp
import openai
import pytest
from aiohttp import test_utils
from openai.types.chat import ChatCompletionMessageParam

from modelyard_simulator import Behaviour, RequestLog, ScenarioBook
from tests.simulator.conftest import API_VERSION

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello azure"}]


async def test_deployment_chat_records_deployment_key_and_version(
    azure: openai.AsyncAzureOpenAI, sim_log: RequestLog, api_key: str
) -> None:
    raw = await azure.chat.completions.with_raw_response.create(model="my-gpt", messages=USER)
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello azure"
    assert raw.headers["apim-request-id"]
    received = sim_log.last()
    assert received.path == "/openai/deployments/my-gpt/chat/completions"
    assert received.deployment == "my-gpt"
    assert received.query == {"api-version": API_VERSION}
    assert received.header("api-key") == api_key
    assert received.header("authorization") is None


async def test_deployment_stream_starts_with_a_prompt_filter_chunk(azure: openai.AsyncAzureOpenAI) -> None:
    stream = await azure.chat.completions.create(
        model="my-gpt",
        messages=USER,
        stream=True,
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello azure"


async def test_deployment_embeddings(azure: openai.AsyncAzureOpenAI, sim_log: RequestLog) -> None:
    result = await azure.embeddings.create(model="my-embedder", input="text", dimensions=8)
    assert len(result.data[0].embedding) == 8
    assert sim_log.last().path == "/openai/deployments/my-embedder/embeddings"


async def test_per_deployment_behaviour_and_azure_rate_limit(
    azure: openai.AsyncAzureOpenAI, book: ScenarioBook
) -> None:
    book.models = {"busy": Behaviour(status=429, retry_after=3)}
    with pytest.raises(openai.RateLimitError) as caught:
        await azure.chat.completions.create(model="busy", messages=USER)
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.response.headers["retry-after-ms"] == "3000"
    assert caught.value.code == "rate_limit_exceeded"
    assert "Try again in 3 seconds" in caught.value.message


async def test_unknown_deployment_is_not_found(azure: openai.AsyncAzureOpenAI, book: ScenarioBook) -> None:
    book.deployments = ["known"]
    with pytest.raises(openai.NotFoundError) as caught:
        await azure.chat.completions.create(model="unknown", messages=USER)
    assert caught.value.code == "DeploymentNotFound"


async def test_wrong_api_key_gets_azure_wording(azure: openai.AsyncAzureOpenAI, book: ScenarioBook) -> None:
    book.default = Behaviour(require_key="other")
    with pytest.raises(openai.AuthenticationError) as caught:
        await azure.chat.completions.create(model="my-gpt", messages=USER)
    assert "Access denied due to invalid subscription key" in caught.value.message


async def test_missing_api_version_is_resource_not_found(sim: test_utils.TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        url = sim.make_url("/openai/deployments/my-gpt/chat/completions")
        async with session.post(url, json={"messages": USER}, headers={"api-key": "k"}) as response:
            assert response.status == 404
            assert await response.json() == {
                "error": {
                    "message": "Resource not found",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "404",
                }
            }


async def test_a_credential_is_always_required(sim: test_utils.TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        url = sim.make_url("/openai/deployments/my-gpt/chat/completions").with_query({"api-version": API_VERSION})
        async with session.post(url, json={"messages": USER}) as response:
            assert response.status == 401
            payload = await response.json()
    assert payload["error"]["code"] == "401"
    assert "missing subscription key" in payload["error"]["message"]


async def test_v1_path_with_the_plain_openai_client(sim: test_utils.TestServer, sim_log: RequestLog) -> None:
    base_url = str(sim.make_url("/openai/v1"))
    async with openai.AsyncOpenAI(base_url=base_url, api_key="azure-key", max_retries=0) as client:
        completion = await client.chat.completions.create(model="my-gpt", messages=USER)
        embedding = await client.embeddings.create(model="my-embedder", input="x")
    assert completion.choices[0].message.content == "echo: hello azure"
    assert len(embedding.data[0].embedding) == 16
    assert [r.path for r in sim_log] == ["/openai/v1/chat/completions", "/openai/v1/embeddings"]
