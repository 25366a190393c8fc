"""Azure OpenAI's addressing, one model by name, and the key headers each SDK family sends."""

from __future__ import annotations

import aiohttp
import anthropic
import openai
import pytest
from aiohttp import test_utils

from tests.harness import DEMO_KEY

API_VERSION = "2024-10-21"


def azure_client(gateway: test_utils.TestServer, key: str = DEMO_KEY) -> openai.AsyncAzureOpenAI:
    """The SDK's Azure client pointed at the gateway as if it were an Azure resource."""
    return openai.AsyncAzureOpenAI(
        azure_endpoint=str(gateway.make_url("")).rstrip("/"), api_key=key, api_version=API_VERSION, max_retries=0
    )


@pytest.mark.parametrize("deployment", ["gpt-4o", "claude-sonnet", "gemini-flash", "azure-gpt-4o"])
async def test_azure_clients_reach_any_route_by_deployment_name(
    gateway: test_utils.TestServer, deployment: str
) -> None:
    async with azure_client(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=deployment, messages=[{"role": "user", "content": "hello"}]
        )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert raw.headers["x-modelyard-route"].endswith(deployment)


async def test_azure_streams_and_embeddings(gateway: test_utils.TestServer) -> None:
    async with azure_client(gateway) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "count"}], stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        vectors = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert text
    assert [len(item.embedding) > 0 for item in vectors.data] == [True, True]


async def test_the_deployment_in_the_path_wins_over_the_body(gateway: test_utils.TestServer) -> None:
    """Azure ignores a body's ``model``: the path names the deployment."""
    async with azure_client(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gemini-flash",
            messages=[{"role": "user", "content": "hello"}],
            extra_body={"model": "gpt-4o"},
        )
    assert raw.headers["x-modelyard-provider"] == "gemini"


async def test_azure_errors_reach_the_sdk_as_its_classes(gateway: test_utils.TestServer) -> None:
    async with azure_client(gateway) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="no-such", messages=[{"role": "user", "content": "x"}])
    async with azure_client(gateway, key="sk-wrong") as client:
        with pytest.raises(openai.AuthenticationError) as refused:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found"
    assert refused.value.code == "invalid_api_key"


async def test_one_model_by_name_in_each_sdks_shape(gateway: test_utils.TestServer, client: openai.AsyncOpenAI) -> None:
    model = await client.models.retrieve("claude-sonnet")
    assert (model.id, model.object) == ("claude-sonnet", "model")
    with pytest.raises(openai.NotFoundError) as caught:
        await client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
    async with anthropic.AsyncAnthropic(base_url=str(gateway.make_url("")), api_key=DEMO_KEY) as claude:
        info = await claude.models.retrieve("gpt-4o")
        listed = [m.id async for m in claude.models.list()]
    assert (info.type, info.id) == ("model", "gpt-4o")
    assert {"gpt-4o", "claude-sonnet"} <= set(listed)


@pytest.mark.parametrize("header", ["x-api-key", "api-key"])
async def test_a_key_header_is_as_good_as_a_bearer_token(gateway: test_utils.TestServer, header: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(gateway.make_url("/v1/models"), headers={header: DEMO_KEY}) as response:
            assert response.status == 200
        async with session.get(gateway.make_url("/v1/models"), headers={header: "sk-wrong"}) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "invalid_api_key"
