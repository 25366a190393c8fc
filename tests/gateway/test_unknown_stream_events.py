"""Event types an upstream adds after these SDKs were released: the native pass-throughs relay them as they
came, and the official SDKs still assemble the whole answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import orjson
import pytest
from aiohttp import test_utils, web

from tests.harness import DEMO_KEY, GatewayFactory, start_server


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps({"type": name, **data}) + b"\n\n"


MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [],
    "stop_reason": None,
}
ANTHROPIC_STREAM = [
    sse("message_start", {"message": {**MESSAGE, "usage": {"input_tokens": 10, "output_tokens": 0}}}),
    sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    sse("some_future_event", {"payload": [1, 2]}),
    sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
    sse("content_block_delta", {"index": 0, "delta": {"type": "future_delta", "hint": "x"}}),
    sse("content_block_stop", {"index": 0}),
    sse("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}}),
    sse("message_stop", {}),
]
RESPONSE: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "model": "m",
    "output": [],
    "status": "in_progress",
}
ITEM = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed"}
TEXT = {"type": "output_text", "text": "Hello", "annotations": []}
DONE = {**RESPONSE, "status": "completed", "output": [{**ITEM, "content": [TEXT]}]}
USAGE = {"input_tokens": 10, "output_tokens": 4, "total_tokens": 14}
RESPONSES_STREAM = [
    sse("response.created", {"response": RESPONSE, "sequence_number": 0}),
    sse("response.output_item.added", {"output_index": 0, "item": {**ITEM, "content": []}, "sequence_number": 1}),
    sse("response.future_event", {"payload": [1, 2], "sequence_number": 2}),
    sse(
        "response.content_part.added",
        {"item_id": "msg_1", "output_index": 0, "content_index": 0, "part": {**TEXT, "text": ""}, "sequence_number": 3},
    ),
    sse(
        "response.output_text.delta",
        {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Hello", "sequence_number": 4},
    ),
    sse("response.completed", {"response": {**DONE, "usage": USAGE}, "sequence_number": 5}),
]


async def replay(request: web.Request) -> web.StreamResponse:
    """Anthropic's ``/v1/messages`` or OpenAI's ``/v1/responses``, streaming the fixed events."""
    events = ANTHROPIC_STREAM if request.path.endswith("/messages") else RESPONSES_STREAM
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for event in events:
        await response.write(event)
    return response


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> AsyncIterator[test_utils.TestServer]:
    app = web.Application()
    app.router.add_post("/v1/messages", replay)
    app.router.add_post("/v1/responses", replay)
    upstream = await start_server(app)
    docs: list[dict[str, Any]] = []
    for provider, name in (("anthropic", "future-claude"), ("openai", "future-gpt")):
        docs.append(
            {
                "apiVersion": "modelyard.io/v1alpha1",
                "kind": "ProviderCredential",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {
                    "provider": provider,
                    "baseURL": str(upstream.make_url("/v1")),
                    "secretRef": {"name": "simulator-keys", "key": provider},
                },
            }
        )
        docs.append(
            {
                "apiVersion": "modelyard.io/v1alpha1",
                "kind": "ModelRoute",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"model": name, "targets": [{"credentialRef": {"name": name}, "model": "m"}]},
            }
        )
    yield await gateway_factory(*docs)
    await upstream.close()


async def test_the_anthropic_sdk_gets_an_unknown_event_and_still_the_whole_message(
    gateway: test_utils.TestServer,
) -> None:
    url = str(gateway.make_url("")).rstrip("/")
    async with (
        anthropic.AsyncAnthropic(base_url=url, api_key=DEMO_KEY, max_retries=0) as claude,
        claude.messages.stream(
            model="future-claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        kinds = [event.type async for event in stream]
        message = await stream.get_final_message()
    assert "some_future_event" in kinds  # relayed as it came; the SDK hands it on and its accumulator skips it
    assert [block.text for block in message.content if block.type == "text"] == ["Hello"]
    assert message.usage.output_tokens == 4


async def test_the_openai_sdk_skips_an_unknown_responses_event_relayed_to_it(gateway: test_utils.TestServer) -> None:
    async with (
        openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client,
        client.responses.stream(model="future-gpt", input="hi", store=False) as stream,
    ):
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.output_text.delta" in kinds
    assert final.output_text == "Hello"
    assert final.usage is not None
    assert final.usage.output_tokens == 4
