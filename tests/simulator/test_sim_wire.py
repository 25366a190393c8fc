"""Raw-wire checks: request recording, control endpoints, cuts, corruption and validation errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import test_utils

from modelyard_simulator import REQUEST_LOG, Behaviour, RequestLog, ScenarioBook, create_app, serve
from modelyard_simulator.log import MAX_RECORDED_BODY_BYTES

CHAT = {"model": "gpt-sim", "messages": [{"role": "user", "content": "one two three"}]}


async def post(
    sim: test_utils.TestServer, path: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with aiohttp.ClientSession() as session, session.post(sim.make_url(path), data=data, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_http_view_redacts_credentials_and_delete_clears(sim: test_utils.TestServer, sim_log: RequestLog) -> None:
    secrets = {"Authorization": "Bearer sk-1", "x-api-key": "k2", "api-key": "k3", "x-goog-api-key": "k4"}
    await post(sim, "/v1/chat/completions", CHAT, secrets)
    await post(sim, "/v1beta/models/g:generateContent?key=k5", {"contents": []})
    assert sim_log.last().query == {"key": "k5"}
    assert next(iter(sim_log)).header("authorization") == "Bearer sk-1"  # raw in memory for tests

    async with aiohttp.ClientSession() as session:
        async with session.get(sim.make_url("/_simulator/requests")) as response:
            recorded: list[dict[str, Any]] = await response.json()
        async with session.delete(sim.make_url("/_simulator/requests")) as response:
            assert response.status == 204
        async with session.get(sim.make_url("/_simulator/requests")) as response:
            assert await response.json() == []

    assert len(recorded) == 2  # control-plane calls are not recorded
    first, second = recorded
    assert first["body"] == CHAT
    assert all(first["headers"][name.lower()] == "<redacted>" for name in secrets)
    assert second["query"] == {"key": "<redacted>"}
    assert len(sim_log) == 0


async def test_request_log_is_a_bounded_ring() -> None:
    server = test_utils.TestServer(create_app(ScenarioBook(record_limit=2)), host="127.0.0.1")
    await server.start_server()
    try:
        for word in ("a", "b", "c"):
            await post(server, "/v1/embeddings", {"model": "e", "input": word})
        assert [r.body["input"] for r in server.app[REQUEST_LOG]] == ["b", "c"]
    finally:
        await server.close()


async def test_request_log_keeps_large_bodies_by_size_only(sim: test_utils.TestServer, sim_log: RequestLog) -> None:
    large = {**CHAT, "messages": [{"role": "user", "content": "x" * MAX_RECORDED_BODY_BYTES}]}
    status, _, _ = await post(sim, "/v1/chat/completions", large)
    assert status == 200
    await post(sim, "/v1/chat/completions", CHAT)
    big, small = sim_log
    assert (big.body, big.body_bytes) == (None, len(orjson.dumps(large)))
    assert (small.body, small.body_bytes) == (CHAT, len(orjson.dumps(CHAT)))
    async with aiohttp.ClientSession() as session, session.get(sim.make_url("/_simulator/requests")) as response:
        assert [r["bodyBytes"] for r in await response.json()] == [big.body_bytes, small.body_bytes]


async def read_into(response: aiohttp.ClientResponse, received: bytearray) -> None:
    """Read the body as it arrives, keeping what came before any failure."""
    async for chunk in response.content.iter_any():
        received.extend(chunk)


def events(raw: bytes) -> list[bytes]:
    return [block.removeprefix(b"data: ") for block in raw.split(b"\n\n") if block]


async def test_cut_closes_the_connection_without_terminator(sim: test_utils.TestServer) -> None:
    body = {**CHAT, "stream": True}
    received = bytearray()
    async with aiohttp.ClientSession() as session:
        headers = {"x-simulator-cut-after-chunks": "2"}
        async with session.post(sim.make_url("/v1/chat/completions"), json=body, headers=headers) as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await read_into(response, received)
    chunks = [orjson.loads(e) for e in events(bytes(received))]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "echo:", " one"]
    assert b"[DONE]" not in received


async def test_cut_after_more_chunks_than_the_answer_still_cuts(sim: test_utils.TestServer) -> None:
    body = {"model": "claude", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    received = bytearray()
    async with aiohttp.ClientSession() as session:
        headers = {"anthropic-version": "2023-06-01", "x-simulator-cut-after-chunks": "99"}
        async with session.post(sim.make_url("/v1/messages"), json=body, headers=headers) as response:
            with pytest.raises(aiohttp.ClientPayloadError):
                await read_into(response, received)
    assert b"content_block_delta" in received
    assert b"message_stop" not in received


async def test_client_leaving_mid_stream_is_not_a_server_error(
    sim: test_utils.TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"x-simulator-token-interval-ms": "10"}
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "a b c d e f g h"}]}
    async with aiohttp.ClientSession() as session:
        response = await session.post(sim.make_url("/v1/chat/completions"), json=body, headers=headers)
        await response.content.readline()
        response.close()
    await asyncio.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_non_stream_body_can_be_malformed_or_cut(sim: test_utils.TestServer) -> None:
    status, headers, raw = await post(sim, "/v1/chat/completions", CHAT, {"x-simulator-malformed": "true"})
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)

    with pytest.raises(aiohttp.ClientPayloadError):
        await post(sim, "/v1/chat/completions", CHAT, {"x-simulator-cut-after-chunks": "0"})


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/chat/completions", CHAT, {}),
        ("/v1/messages", {**CHAT, "max_tokens": 16}, {"anthropic-version": "2023-06-01"}),
        ("/v1beta/models/g:generateContent", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, {}),
    ],
)
async def test_a_shapeless_answer_is_json_of_no_dialect(
    sim: test_utils.TestServer, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    status, _, raw = await post(sim, path, body, {**headers, "x-simulator-shapeless": "true"})
    assert (status, orjson.loads(raw)) == (200, {"status": "ok"})


async def test_a_stream_can_end_cleanly_without_its_last_events(sim: test_utils.TestServer) -> None:
    body = {**CHAT, "stream": True}
    _, _, whole = await post(sim, "/v1/chat/completions", body)
    _, _, short = await post(sim, "/v1/chat/completions", body, {"x-simulator-drop-last-events": "1"})
    assert whole.endswith(b"data: [DONE]\n\n")
    assert short.endswith(b'"finish_reason":"stop"}]}\n\n')  # the final chunk, then a clean end
    assert short.count(b"data: ") == whole.count(b"data: ") - 1


@pytest.mark.parametrize(
    ("path", "headers", "check"),
    [
        ("/v1/chat/completions", {}, lambda p: p["error"]["type"] == "invalid_request_error"),
        ("/v1/messages", {"anthropic-version": "2023-06-01"}, lambda p: p["error"]["type"] == "invalid_request_error"),
        ("/v1beta/models/g:generateContent", {}, lambda p: p["error"]["status"] == "INVALID_ARGUMENT"),
    ],
)
async def test_invalid_json_gets_each_dialects_400(
    sim: test_utils.TestServer, path: str, headers: dict[str, str], check: Any
) -> None:
    status, _, raw = await post(sim, path, b"{not json", headers)
    assert status == 400
    assert check(orjson.loads(raw))


async def test_invalid_override_is_a_400_naming_the_field(sim: test_utils.TestServer) -> None:
    status, _, raw = await post(sim, "/v1/chat/completions", CHAT, {"x-simulator-stauts": "500"})
    assert status == 400
    assert "stauts" in orjson.loads(raw)["error"]["message"]


async def test_openai_validation_names_the_missing_parameter(sim: test_utils.TestServer) -> None:
    status, _, raw = await post(sim, "/v1/chat/completions", {"model": "m"})
    assert status == 400
    assert orjson.loads(raw)["error"] == {
        "message": "Missing required parameter: 'messages'.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "missing_required_parameter",
    }


async def test_models_endpoints_per_dialect(sim: test_utils.TestServer, book: ScenarioBook) -> None:
    book.models = {"m1": Behaviour()}
    async with aiohttp.ClientSession() as session:
        async with session.get(sim.make_url("/v1/models"), headers={"anthropic-version": "2023-06-01"}) as response:
            anthropic_list = await response.json()
        async with session.get(sim.make_url("/v1beta/models")) as response:
            gemini_list = await response.json()
    assert anthropic_list["data"][0]["type"] == "model"
    assert anthropic_list["has_more"] is False
    assert gemini_list["models"][0]["name"] == "models/m1"


async def test_serve_runs_until_cancelled() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    task = asyncio.create_task(serve("127.0.0.1", port, ScenarioBook(models={"served": Behaviour()})))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientConnectorError):
                    async with session.get(f"http://127.0.0.1:{port}/v1/models") as response:
                        payload = await response.json()
                        break
                await asyncio.sleep(0.01)
        assert payload["data"][0]["id"] == "served"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
