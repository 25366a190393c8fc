"""The gateway's own API contract: auth, models, probes, and every request error in OpenAI's shape."""

from __future__ import annotations

import io
import re

import aiohttp
import openai
import pytest
from aiohttp import test_utils

from modelyard_proxy.base.settings import ProxySettings
from tests.harness import DEMO_KEY, GatewayFactory

AUTH = {"Authorization": f"Bearer {DEMO_KEY}"}


async def post(
    gateway: test_utils.TestServer, path: str, data: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.make_url(path),
            data=io.BytesIO(data),
            headers={**AUTH, "Content-Type": "application/json", **(headers or {})},
        ) as response,
    ):
        return response.status, await response.json()


async def test_models_lists_every_public_name_and_alias(client: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in client.models.list()]
    assert models == sorted(models)
    assert {
        "gpt-4o",
        "gpt-4o-latest",
        "claude-sonnet",
        "gemini-flash",
        "azure-gpt-4o",
        "text-embedding-3-small",
    } <= set(models)


async def test_probes_report_the_loaded_table(gateway: test_utils.TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(gateway.make_url("/healthz")) as response:
            assert response.status == 200
        async with session.get(gateway.make_url("/readyz")) as response:
            body = await response.json()
    assert response.status == 200
    assert body["ready"] is True
    assert body["generation"] == 1
    assert len(body["sha256"]) == 64


async def test_missing_and_unknown_keys_are_401(gateway: test_utils.TestServer) -> None:
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key="sk-wrong", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk.models.list()
    assert caught.value.code == "invalid_api_key"
    async with aiohttp.ClientSession() as session, session.get(gateway.make_url("/v1/models")) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "missing_api_key"


async def test_unknown_model_is_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"
    assert "no-such-model" in caught.value.message


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", b"{not json", None),
        ("/v1/chat/completions", b"[1, 2]", None),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        ("/v1/chat/completions", b'{"model": "gpt-4o"}', "messages"),
        ("/v1/chat/completions", b'{"model": "gpt-4o", "messages": []}', "messages"),
        ("/v1/chat/completions", b'{"model": "gpt-4o", "messages": ["hi"]}', "messages"),
        (
            "/v1/chat/completions",
            b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        ("/v1/embeddings", b'{"model": "text-embedding-3-small"}', "input"),
    ],
)
async def test_malformed_requests_are_400(
    gateway: test_utils.TestServer, path: str, body: bytes, param: str | None
) -> None:
    status, payload = await post(gateway, path, body)
    assert status == 400
    error = payload["error"]
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


async def test_body_over_the_limit_is_413_and_the_default_limit_is_far_above_one_mebibyte(
    gateway_factory: GatewayFactory,
) -> None:
    big = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "' + b"x" * (3 * 1024 * 1024) + b'"}]}'
    default = await gateway_factory()
    status, payload = await post(default, "/v1/chat/completions", big)
    assert status == 200, payload
    small = await gateway_factory(settings=ProxySettings(host="127.0.0.1", port=0, max_body_bytes=1024))
    status, payload = await post(small, "/v1/chat/completions", big)
    assert status == 413
    error = payload["error"]
    assert isinstance(error, dict)
    assert error["code"] == "request_too_large"


async def test_unknown_path_is_404_in_openai_shape(gateway: test_utils.TestServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.make_url("/v1/nothing"), headers=AUTH) as response,
    ):
        assert response.status == 404
        error = (await response.json())["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "unsupported_endpoint")  # as OpenAI says


async def test_every_answer_carries_a_request_id_the_callers_when_safe(gateway: test_utils.TestServer) -> None:
    seen = []
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(gateway.make_url("/v1/models"), headers=AUTH) as response:
                seen.append(response.headers["x-request-id"])
        async with session.get(
            gateway.make_url("/v1/models"), headers={"Authorization": "Bearer sk-wrong"}
        ) as response:
            assert response.status == 401
            seen.append(response.headers["x-request-id"])
        async with session.get(
            gateway.make_url("/v1/models"), headers={**AUTH, "x-request-id": "trace-42.a"}
        ) as response:
            assert response.headers["x-request-id"] == "trace-42.a"
        unsafe = {**AUTH, "x-request-id": "bad id\\u2028"}
        async with session.get(gateway.make_url("/v1/models"), headers=unsafe) as response:
            seen.append(response.headers["x-request-id"])
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in seen)
    assert len(set(seen)) == len(seen)
