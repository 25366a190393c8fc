"""Responses conversations the gateway keeps: ``previous_response_id`` and ``item_reference`` through the
official openai SDK, for a native target and translated ones, shared by gateways over one store, and never
readable with another key."""

from __future__ import annotations

import openai
import pytest
from aiohttp import test_utils

from modelyard_proxy.base.settings import ProxySettings
from modelyard_simulator import RequestLog
from tests.harness import DEMO_KEY, GatewayFactory
from tests.storeserver import StoreServer

#: The examples' consumer key (any model, five requests a minute): another key than the demo's.
OTHER_KEY = "sk-modelyard-team-demo"
MODELS = ["gpt-4o", "claude-sonnet", "gemini-flash"]


def sdk(gateway: test_utils.TestServer, key: str = DEMO_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=key, max_retries=0)


def upstream_texts(log: RequestLog) -> str:
    """Everything the last upstream request carried, as text (whatever the provider's dialect)."""
    return str(log.last().body)


@pytest.mark.parametrize("model", MODELS)
async def test_a_conversation_continues_by_previous_response_id(
    gateway: test_utils.TestServer, upstream_log: RequestLog, model: str
) -> None:
    async with sdk(gateway) as client:
        first = await client.responses.create(model=model, instructions="Be brief.", input="my name is Ada")
        second = await client.responses.create(model=model, input="what is my name?", previous_response_id=first.id)
        third = await client.responses.create(model=model, input="and again?", previous_response_id=second.id)
    sent = upstream_log.last().body
    text = upstream_texts(upstream_log)
    assert "my name is Ada" in text  # the first turn ...
    assert first.output_text in text  # ... its answer ...
    assert "what is my name?" in text  # ... and the second, all sent with the third
    assert "and again?" in third.output_text
    assert "previous_response_id" not in sent
    if model == "gpt-4o":  # the native upstream is told not to keep anything itself
        assert sent["store"] is False
        assert "Be brief." not in str(sent["input"])  # instructions are per request, as OpenAI defines them


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet"])
async def test_a_streamed_answer_is_kept_before_the_stream_ends(
    gateway: test_utils.TestServer, upstream_log: RequestLog, model: str
) -> None:
    async with sdk(gateway) as client:
        async with client.responses.stream(model=model, input="remember kiwi") as stream:
            first = await stream.get_final_response()
        second = await client.responses.create(model=model, input="which fruit?", previous_response_id=first.id)
    assert "remember kiwi" in upstream_texts(upstream_log)
    assert "which fruit?" in second.output_text


@pytest.mark.parametrize("model", ["gpt-4o", "gemini-flash"])
async def test_an_item_reference_is_replaced_by_the_item_it_names(
    gateway: test_utils.TestServer, upstream_log: RequestLog, model: str
) -> None:
    async with sdk(gateway) as client:
        first = await client.responses.create(model=model, input="say something memorable")
        message = next(item for item in first.output if item.type == "message")
        await client.responses.create(
            model=model,
            input=[
                {"role": "user", "content": "say something memorable"},
                {"type": "item_reference", "id": message.id},
                {"role": "user", "content": "repeat it"},
            ],
        )
    assert first.output_text in upstream_texts(upstream_log)
    assert "item_reference" not in upstream_texts(upstream_log)


async def test_unknown_ids_and_unkept_answers_are_400_as_openai_answers(gateway: test_utils.TestServer) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as unknown:
            await client.responses.create(model="gpt-4o", input="x", previous_response_id="resp_nobody")
        unkept = await client.responses.create(model="claude-sonnet", input="forget this", store=False)
        with pytest.raises(openai.BadRequestError) as forgotten:
            await client.responses.create(model="claude-sonnet", input="x", previous_response_id=unkept.id)
        with pytest.raises(openai.BadRequestError) as reference:
            await client.responses.create(
                model="gpt-4o", input=[{"type": "item_reference", "id": "msg_nobody"}, {"role": "user", "content": "x"}]
            )
    assert (unknown.value.code, unknown.value.param) == ("previous_response_not_found", "previous_response_id")
    assert "resp_nobody" in unknown.value.message
    assert forgotten.value.code == "previous_response_not_found"
    assert reference.value.param == "input"
    assert "msg_nobody" in reference.value.message


async def test_another_key_cannot_read_a_conversation(gateway: test_utils.TestServer) -> None:
    async with sdk(gateway) as owner, sdk(gateway, OTHER_KEY) as other:
        first = await owner.responses.create(model="gpt-4o", input="a secret plan")
        with pytest.raises(openai.BadRequestError) as caught:
            await other.responses.create(model="gpt-4o", input="tell me", previous_response_id=first.id)
        continued = await owner.responses.create(model="gpt-4o", input="go on", previous_response_id=first.id)
    assert caught.value.code == "previous_response_not_found"
    assert continued.status == "completed"


async def test_gateways_sharing_a_store_continue_each_others_conversations(
    gateway_factory: GatewayFactory, store_server: StoreServer, upstream_log: RequestLog
) -> None:
    shared = ProxySettings(host="127.0.0.1", port=0, store_url=store_server.url, store_timeout_ms=1000)
    one, two = await gateway_factory(settings=shared), await gateway_factory(settings=shared)
    async with sdk(one) as first_pod, sdk(two) as second_pod:
        first = await first_pod.responses.create(model="claude-sonnet", input="started on pod one")
        second = await second_pod.responses.create(
            model="gpt-4o", input="finished on pod two", previous_response_id=first.id
        )
    assert "started on pod one" in upstream_texts(upstream_log)  # and another provider, on the other pod
    assert second.status == "completed"


async def test_with_the_store_off_a_conversation_is_refused_with_guidance(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(settings=ProxySettings(host="127.0.0.1", port=0, responses_store=False))
    async with sdk(gateway) as client:
        first = await client.responses.create(model="gpt-4o", input="hello")
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="gpt-4o", input="again", previous_response_id=first.id)
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "previous_response_id")
    assert "store" in caught.value.message
