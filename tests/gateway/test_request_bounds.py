"""What a request may cost and where it may go: unknown endpoints, body limits, encodings, slow bodies.

Every refusal is in OpenAI's error shape, through the official SDK where a client sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import logging
import zlib
from collections.abc import Iterator

import aiohttp
import openai
import orjson
import pytest
from aiohttp import test_utils

from modelyard_proxy.base.settings import ProxySettings
from tests.gateway.rawhttp import read_error
from tests.harness import DEMO_KEY, GatewayFactory, audit_records

AUTH = {"Authorization": f"Bearer {DEMO_KEY}"}
SERVED = (
    "POST /v1/chat/completions, POST /v1/messages, POST /v1/responses, POST /v1/messages/count_tokens, "
    "POST /v1/embeddings, GET /v1/models, GET /v1/models/{model}, "
    "POST /openai/deployments/{deployment}/chat/completions, POST /openai/deployments/{deployment}/embeddings, "
    "GET /healthz, GET /readyz"
)


@pytest.fixture(autouse=True)
def _audit_lines(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.INFO, logger="modelyard.audit"):
        yield


def settings(**limits: float) -> ProxySettings:
    return ProxySettings(host="127.0.0.1", port=0, **limits)  # type: ignore[arg-type]


def sdk(gateway: test_utils.TestServer, path: str = "/v1") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(gateway.make_url(path)), api_key=DEMO_KEY, max_retries=0)


def chat(messages: int, **extra: object) -> dict[str, object]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}] * messages, **extra}


async def post_raw(
    gateway: test_utils.TestServer,
    data: bytes,
    headers: dict[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> tuple[int, dict[str, object]]:
    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(aiohttp.ClientSession(auto_decompress=False))
        response = await stack.enter_async_context(
            session.post(
                gateway.make_url("/v1/chat/completions"),
                data=io.BytesIO(data),
                headers={**AUTH, "Content-Type": "application/json", **(headers or {})},
            )
        )
        payload = await response.json()
        return response.status, payload.get("error", payload)


async def test_an_unknown_endpoint_is_404_naming_it_and_the_served_ones(
    gateway: test_utils.TestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.images.generate(model="gpt-4o", prompt="hi")
    assert caught.value.code == "unsupported_endpoint"
    assert caught.value.message.endswith(f"Invalid URL (POST /v1/images/generations): this gateway serves {SERVED}")
    refusals = [r for r in audit_records(gateway.app, capsys) if r.get("code") == "unsupported_endpoint"]
    assert [(r["status"], r["method"], r["path"]) for r in refusals] == [(404, "POST", "/v1/images/generations")]


async def test_a_base_url_without_v1_gets_a_404_that_says_so(
    gateway: test_utils.TestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sdk(gateway, "/") as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "unsupported_endpoint"
    assert "(POST /chat/completions) (the base URL lacks /v1?)" in caught.value.message
    assert [(r["method"], r["path"]) for r in audit_records(gateway.app, capsys)] == [("POST", "/chat/completions")]


async def test_a_wrong_method_is_405_with_allow(gateway: test_utils.TestServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.make_url("/v1/chat/completions"), headers=AUTH) as response,
    ):
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        error = (await response.json())["error"]
    assert error["code"] == "method_not_allowed"
    assert error["message"] == "GET is not allowed on /v1/chat/completions; it takes POST"


async def test_refusals_on_known_endpoints_record_method_and_path(
    gateway: test_utils.TestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.models.list()
    [record] = audit_records(gateway.app, capsys)
    assert (record["code"], record["method"], record["path"]) == ("invalid_api_key", "GET", "/v1/models")


async def test_too_many_messages_is_400_naming_the_limit(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(settings=settings(max_messages=3))
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(**chat(3))  # type: ignore[call-overload]
        assert answer.choices[0].message.content
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(**chat(4))  # type: ignore[call-overload]
    assert (caught.value.code, caught.value.param) == ("array_above_max_length", "messages")
    assert "4 messages" in caught.value.message
    assert "limit of 3" in caught.value.message


async def test_too_many_json_values_is_413_before_parsing(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(settings=settings(max_json_values=100))
    async with sdk(gateway) as client:
        await client.chat.completions.create(**chat(20))  # type: ignore[call-overload]  # ~60 values
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(**chat(40))  # type: ignore[call-overload]
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"
    assert "more than 100 JSON values" in caught.value.message


async def test_commas_and_brackets_inside_strings_are_not_values(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(settings=settings(max_json_values=100, max_json_depth=4))
    prose = 'a, [b], {c}, \\"d\\", ' * 500  # thousands of structural characters, all inside one string
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": prose}])
    assert answer.choices[0].message.content


async def test_nesting_past_the_depth_limit_is_400(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(settings=settings(max_json_depth=8))
    nested: object = "leaf"
    for _ in range(8):
        nested = [nested]
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(**chat(1), extra_body={"metadata": nested})  # type: ignore[call-overload]
        await client.chat.completions.create(**chat(1), extra_body={"metadata": {"a": ["b"]}})  # type: ignore[call-overload]
    assert caught.value.code == "nesting_too_deep"
    assert "deeper than 8 levels" in caught.value.message


async def test_a_body_that_is_not_the_encoding_it_claims_is_400(gateway: test_utils.TestServer) -> None:
    body = orjson.dumps(chat(1))
    async with aiohttp.ClientSession() as session:  # one connection, if the gateway keeps it open
        for encoding in ("gzip", "deflate"):
            status, error = await post_raw(gateway, body, {"Content-Encoding": encoding}, session)
            assert (status, error["code"]) == (400, "invalid_body_encoding")
            assert error["message"] == f"request body could not be read: Can not decode content-encoding: {encoding}"
        # The undecodable body is not read as the next request: the connection was closed after the 400.
        status, _ = await post_raw(gateway, gzip.compress(body), {"Content-Encoding": "gzip"}, session)
        assert status == 200


async def test_a_gzip_bomb_is_bounded_by_the_limit_after_decompression(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(settings=settings(max_body_bytes=1024 * 1024))
    padding = b" " * (64 * 1024 * 1024)  # JSON whitespace: 64 MiB that compress to ~64 KiB
    compressor = zlib.compressobj(wbits=31)
    bomb = compressor.compress(b'{"model": "gpt-4o",' + padding) + compressor.flush()
    assert len(bomb) < 128 * 1024
    status, error = await post_raw(gateway, bomb, {"Content-Encoding": "gzip"})
    assert (status, error["code"]) == (413, "request_too_large")


async def test_a_body_slower_than_the_body_timeout_is_408(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(settings=settings(body_timeout=0.3))
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {DEMO_KEY}\r\nContent-Length: 100\r\n\r\n"
    )
    writer.write(head.encode() + b'{"model":')
    status, error = await asyncio.wait_for(read_error(reader), timeout=10)
    writer.close()
    assert status == 408
    assert error["code"] == "request_timeout"
    assert "0.3 s" in error["message"]
