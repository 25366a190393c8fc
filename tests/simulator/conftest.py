"""Fixtures: the simulator on a real loopback socket, and official SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from aiohttp import test_utils
from google import genai
from google.genai import types

from modelyard_simulator import REQUEST_LOG, SCENARIOS, RequestLog, ScenarioBook, create_app

KEY = "sk-sim-test-key"
API_VERSION = "2024-10-21"


@pytest.fixture
def api_key() -> str:
    return KEY


@pytest.fixture
async def sim() -> AsyncIterator[test_utils.TestServer]:
    """A simulator with the default scenario book on a real loopback socket."""
    server = test_utils.TestServer(create_app(ScenarioBook()), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def sim_log(sim: test_utils.TestServer) -> RequestLog:
    return sim.app[REQUEST_LOG]


@pytest.fixture
def book(sim: test_utils.TestServer) -> ScenarioBook:
    """The running simulator's scenario book; tests change it to script behaviour."""
    return sim.app[SCENARIOS]


@pytest.fixture
async def oai(sim: test_utils.TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=str(sim.make_url("/v1")), api_key=KEY, max_retries=0) as client:
        yield client


@pytest.fixture
async def claude(sim: test_utils.TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=str(sim.make_url("")), api_key=KEY, max_retries=0) as client:
        yield client


@pytest.fixture
async def gemini(sim: test_utils.TestServer) -> AsyncIterator[genai.Client]:
    options = types.HttpOptions(base_url=str(sim.make_url("")), retry_options=types.HttpRetryOptions(attempts=1))
    client = genai.Client(api_key=KEY, http_options=options)
    yield client
    await client.aio.aclose()


@pytest.fixture
async def azure(sim: test_utils.TestServer) -> AsyncIterator[openai.AsyncAzureOpenAI]:
    """Azure's client on its dated API: ``/openai/deployments/...`` and ``/openai/responses``."""
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=str(sim.make_url("")).rstrip("/"), api_key=KEY, api_version=API_VERSION, max_retries=0
    ) as client:
        yield client
