"""The Vercel AI SDK's default OpenAI provider (``openai(model)`` speaks the Responses API) against every
provider family: a tool round trip with ``generateText`` and ``streamText``.

Runs the real SDK in Node.js (installed from tests/node/package-lock.json by ``make test``); skips where Node.js
is not installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import test_utils

from modelyard_simulator import RequestLog
from tests.harness import DEMO_KEY

NODE_CLIENTS = Path(__file__).resolve().parents[1] / "node"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


async def run_sdk(gateway: test_utils.TestServer, mode: str, model: str) -> dict[str, Any]:
    """One ``vercel_ai.mjs`` run against ``gateway``: its JSON summary (or the error it printed)."""
    assert NODE is not None
    if not (NODE_CLIENTS / "node_modules" / "ai").is_dir():
        pytest.fail("the Node.js clients are not installed: run tools/ensure-node-clients (make test does)")
    env = {**os.environ, "MODELYARD_URL": str(gateway.make_url("/v1")), "MODELYARD_KEY": DEMO_KEY}
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(NODE_CLIENTS / "vercel_ai.mjs"),
        mode,
        model,
        cwd=NODE_CLIENTS,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert stdout, stderr.decode()
    result: dict[str, Any] = orjson.loads(stdout)
    assert "error" not in result, (result, stderr.decode()[-2000:])
    return result


@pytest.mark.parametrize("mode", ["generate", "stream"])
@pytest.mark.parametrize("model", ["gpt-4o", "azure-gpt-4o", "claude-sonnet", "gemini-flash"])
async def test_a_tool_round_trip(gateway: test_utils.TestServer, mode: str, model: str) -> None:
    result = await run_sdk(gateway, mode, model)
    first, last = result["steps"][0], result["steps"][-1]
    assert first["toolCalls"] == [{"name": "get_weather", "input": {"city": first["toolCalls"][0]["input"]["city"]}}]
    assert first["toolResults"] == [
        {"city": first["toolCalls"][0]["input"]["city"], "forecast": "sunny", "celsius": 21}
    ]
    assert first["finishReason"] == "tool-calls"
    assert last["toolCalls"] == []
    assert result["finishReason"] == "stop"
    assert result["text"]
    assert result["usage"]["input"] > 0
    assert result["usage"]["output"] > 0
    if mode == "stream":
        assert result["streamed"] == result["text"]


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet"])
async def test_a_second_turn_refers_to_the_first_answer_by_id(
    gateway: test_utils.TestServer, upstream_log: RequestLog, model: str
) -> None:
    """The SDK sends the first answer back as an ``item_reference`` (it assumes ``store``): the gateway kept it."""
    result = await run_sdk(gateway, "conversation", model)
    assert "Remember the word kiwi." in result["first"]
    assert "Which word was it?" in result["second"]
    assert result["first"] in str(upstream_log.last().body)
