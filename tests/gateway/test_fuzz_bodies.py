"""No request body, however malformed, makes the gateway answer a 5xx.

Hypothesis builds bodies with the API's real field names and values of any JSON type (plus plain garbage
bytes) and sends them to a gateway whose table has an OpenAI, an Azure, an Anthropic and a Gemini target,
all on the in-process simulator. Whatever the body, the answer is below 500, and a refusal comes in
OpenAI's error shape. Each example is one loopback round trip; hypothesis runs in a worker thread while the
servers keep serving on the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import orjson
from aiohttp import test_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import DEMO_KEY

CHAT_MODELS = ["gpt-4o", "azure-gpt-4o", "claude-sonnet", "gemini-flash"]
EMBEDDING_MODELS = ["text-embedding-3-small", "gemini-embedding", "azure-gpt-4o", "claude-sonnet"]
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
    derandomize=True,
)

#: Text without lone surrogates, which JSON parsers refuse (the arbitrary-bytes test covers undecodable bodies).
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)


def either(plausible: st.SearchStrategy[Any], odds: int = 3) -> st.SearchStrategy[Any]:
    """A field's value: one a client would send, or (one time in ``odds``) anything at all."""
    choices = [True] * (odds - 1) + [False]
    return st.sampled_from(choices).flatmap(lambda sensible: plausible if sensible else json_values)


def fields(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]], odds: int = 3
) -> Any:
    """Objects with the real field names; every field may carry any JSON value (required ones more rarely,
    so that most bodies get past the first check)."""
    return st.fixed_dictionaries(
        {name: either(value, odds * 4) for name, value in required.items()},
        optional={name: either(value, odds) for name, value in optional.items()},
    )


text_parts = st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), max_size=2)
image_parts = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": fields({"url": st.sampled_from(["data:image/png;base64,AAAA", "https://x/y.png"])}, {}),
        }
    ),
    max_size=1,
)
function_call = fields({"name": st.sampled_from(["get_weather", ""])}, {"arguments": st.sampled_from(["{}", "[1]"])})
tool_calls = st.lists(fields({"id": texts, "type": st.just("function"), "function": function_call}, {}), max_size=2)
message = fields(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"])},
    {
        "content": texts | text_parts | image_parts,
        "name": texts,
        "tool_calls": tool_calls,
        "tool_call_id": texts,
        "reasoning_content": texts,
    },
    odds=8,
)
user_message = fields({"role": st.just("user"), "content": texts | text_parts | image_parts}, {}, 8)
messages = st.builds(lambda first, rest: [first, *rest], user_message, st.lists(message, max_size=3))
schema = st.fixed_dictionaries({"type": st.just("object"), "properties": st.just({"a": {"type": "string"}})})
tools = st.lists(
    fields(
        {"type": st.just("function"), "function": fields({"name": st.just("get_weather")}, {"parameters": schema})},
        {},
    ),
    max_size=2,
)
tool_choice = st.sampled_from(["auto", "none", "required"]) | fields(
    {"type": st.just("function"), "function": fields({"name": st.just("get_weather")}, {})}, {}
)
response_format = fields(
    {"type": st.sampled_from(["text", "json_object", "json_schema"])},
    {"json_schema": fields({"name": st.just("answer")}, {"schema": schema, "strict": st.booleans()})},
)
small_numbers = st.integers(min_value=-3, max_value=30) | st.floats(min_value=-3, max_value=3)
chat_bodies = fields(
    {"model": st.sampled_from(CHAT_MODELS), "messages": messages},
    {
        "stream": st.booleans(),
        "stream_options": fields({}, {"include_usage": st.booleans()}),
        "max_tokens": small_numbers,
        "max_completion_tokens": small_numbers,
        "temperature": small_numbers,
        "top_p": small_numbers,
        "top_k": small_numbers,
        "n": small_numbers,
        "seed": small_numbers,
        "presence_penalty": small_numbers,
        "frequency_penalty": small_numbers,
        "stop": texts | st.lists(texts, max_size=3),
        "logprobs": st.booleans(),
        "top_logprobs": small_numbers,
        "logit_bias": st.dictionaries(texts, small_numbers, max_size=2),
        "tools": tools,
        "tool_choice": tool_choice,
        "parallel_tool_calls": st.booleans(),
        "response_format": response_format,
        "reasoning_effort": st.sampled_from(["none", "minimal", "low", "medium", "high", "bogus"]),
        "modalities": st.lists(st.sampled_from(["text", "audio"]), max_size=2),
        "verbosity": st.sampled_from(["low", "medium", "high"]),
        "user": texts,
        "metadata": st.dictionaries(texts, texts, max_size=2),
        "store": st.booleans(),
        "service_tier": st.sampled_from(["auto", "default", "flex"]),
    },
)
embedding_bodies = fields(
    {
        "model": st.sampled_from(EMBEDDING_MODELS),
        "input": texts | st.lists(texts, max_size=3),
    },
    {
        "encoding_format": st.sampled_from(["float", "base64"]),
        "dimensions": small_numbers,
        "user": texts,
    },
)
ENDPOINTS = {"/v1/chat/completions": chat_bodies, "/v1/embeddings": embedding_bodies}


def encoded(body: Any) -> bytes:
    """Bodies as JSON text; Python's encoder also writes what orjson refuses (NaN, huge integers)."""
    return json.dumps(body).encode()


async def post(session: aiohttp.ClientSession, path: str, payload: bytes) -> tuple[int, bytes]:
    headers = {"authorization": f"Bearer {DEMO_KEY}", "content-type": "application/json"}
    async with session.post(path, data=payload, headers=headers) as response:
        return response.status, await response.read()


def assert_clean(status: int, payload: bytes) -> None:
    assert status < 500, payload[:500]
    if status >= 400:
        error = orjson.loads(payload)["error"]
        assert isinstance(error["message"], str)
        assert error["message"]
        assert {"message", "type", "param", "code"} <= error.keys()


async def fuzz(gateway: test_utils.TestServer, path: str, bodies: st.SearchStrategy[bytes]) -> None:
    """Send every body hypothesis draws to ``path`` and check each answer."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(base_url=gateway.make_url("")) as session:

        @FUZZ
        @given(payload=bodies)
        def check(payload: bytes) -> None:
            status, answer = asyncio.run_coroutine_threadsafe(post(session, path, payload), loop).result()
            assert_clean(status, answer)

        await asyncio.to_thread(check)


async def test_chat_bodies(gateway: test_utils.TestServer) -> None:
    await fuzz(gateway, "/v1/chat/completions", chat_bodies.map(encoded))


async def test_embedding_bodies(gateway: test_utils.TestServer) -> None:
    await fuzz(gateway, "/v1/embeddings", embedding_bodies.map(encoded))


async def test_arbitrary_bytes(gateway: test_utils.TestServer) -> None:
    for path in ENDPOINTS:
        await fuzz(gateway, path, st.binary(max_size=64) | json_values.map(encoded))
