"""Upstreams that break HTTP itself, seen through the OpenAI SDK: each failure is named and falls back.

The simulator always speaks valid HTTP, so these upstreams are raw sockets writing exactly the bytes of
each case; the gateway's own HTTP/1.1 client must classify what it reads, never hang, never relay it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest

from tests.gateway.test_fault_matrix import RETRIED, ask, assert_fell_back
from tests.harness import DEMO_KEY, GatewayFactory

BROKEN = {
    "malformed-status": (b"HTTP/1.1 OK\r\n\r\n", "upstream_malformed"),
    "bad-content-length": (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n{}", "upstream_malformed"),
    "cut-mid-body": (b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"id":', "upstream_truncated"),
    "closed-before-answering": (b"", "upstream_unreachable"),
}

Start = Callable[[bytes], Awaitable[str]]
#: Time the broken attempts may take before the fallback answers: well under the route's 2 s ``firstToken``, so
#: a broken answer is classified as it arrives, never waited out. Looser than the fault matrix's backoff budget:
#: these routes are built per test and a loaded machine (a collection over the suite's heap) adds pauses.
NOT_WAITED_OUT = 0.6


@pytest.fixture
async def broken_upstream() -> AsyncIterator[Start]:
    """Start raw servers that read a request, write the given bytes and close the connection."""
    servers: list[asyncio.Server] = []

    async def start(answer: bytes) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def manifests(base_url: str, *, fallback: bool) -> list[dict[str, Any]]:
    credential = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ProviderCredential",
        "metadata": {"name": "broken", "namespace": "default"},
        "spec": {"provider": "openai-compatible", "baseURL": base_url},
    }
    targets: list[dict[str, Any]] = [{"credentialRef": {"name": "broken"}, "model": "primary", "priority": 0}]
    if fallback:
        targets.append({"credentialRef": {"name": "sim-openai"}, "model": "backup", "priority": 1})
    route = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": "broken-route", "namespace": "default"},
        "spec": {
            "model": "broken-route",
            "targets": targets,
            "retry": {"attempts": 2, "backoff": {"initial": "20ms", "max": "50ms"}},
            "timeouts": {"firstToken": "2s", "total": "5s"},
            "fallbackOn": ["serverError", "connectError"],
            "circuitBreaker": {"minRequests": 1000},
        },
    }
    return [credential, route]


async def ask_route(gateway_factory: GatewayFactory, base_url: str, *, fallback: bool, stream: bool) -> Any:
    gateway = await gateway_factory(*manifests(base_url, fallback=fallback))
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client:
        return await ask(client, "broken-route", stream=stream)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", list(BROKEN))
async def test_broken_http_is_a_named_502(
    gateway_factory: GatewayFactory, broken_upstream: Start, case: str, *, stream: bool
) -> None:
    """With nowhere to fall back to, the client gets a 502 whose code says what the upstream did, after retries."""
    answer, code = BROKEN[case]
    seen = await ask_route(gateway_factory, await broken_upstream(answer), fallback=False, stream=stream)
    assert (seen.status, seen.error, seen.attempts) == (502, code, 2), seen


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", list(BROKEN))
async def test_broken_http_falls_back(
    gateway_factory: GatewayFactory, broken_upstream: Start, case: str, *, stream: bool
) -> None:
    """A route with a fallback serves the whole answer from it; nothing of the broken bytes reaches the client."""
    answer, _ = BROKEN[case]
    seen = await ask_route(gateway_factory, await broken_upstream(answer), fallback=True, stream=stream)
    assert_fell_back(seen, RETRIED, NOT_WAITED_OUT)
