"""The Responses pass-through to OpenAI and Azure OpenAI: addressing, untouched bytes, usage, in-band failures."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.providers.base import CallContext, Inbound, UpstreamStreamError
from modelyard_proxy.providers.openai_responses_to_openai_responses.adapter import (
    AzureResponsesAdapter,
    ResponsesPassthroughAdapter,
)
from modelyard_proxy.providers.registry import adapter_for
from modelyard_proxy.providers.schemas import Schema
from modelyard_routing import Credential, Provider
from modelyard_routing.specs import AzureOptions

KEY = "sk-proj-4fQmZx81LpT2vR9sNwB7yK3c"
OPENAI = Credential(
    id="openai-prod", provider=Provider.OPENAI, base_url="https://api.openai.com/v1", api_key=SecretStr(KEY)
)


def context(credential: Credential = OPENAI, **extra: Any) -> CallContext:
    return CallContext(public_model="gpt", upstream_model="gpt-4o-2024-08-06", credential=credential, **extra)


def inbound(**fields: Any) -> Inbound:
    body = {"model": "gpt", "input": "hi", **fields}
    return Inbound(body, orjson.dumps(body), Schema.OPENAI_RESPONSES)


def openai_adapter() -> ResponsesPassthroughAdapter:
    adapter = adapter_for(Provider.OPENAI, Schema.OPENAI_RESPONSES)
    assert isinstance(adapter, ResponsesPassthroughAdapter)
    return adapter


def sse(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\n".encode() + b"data: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


def test_openai_gets_the_body_with_its_model_and_store_false() -> None:
    call = openai_adapter().chat_call(inbound(tools=[{"type": "web_search"}], include=["x"]), context())
    assert call.url == "https://api.openai.com/v1/responses"
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert orjson.loads(call.body) == {
        "model": "gpt-4o-2024-08-06",
        "input": "hi",
        "tools": [{"type": "web_search"}],
        "include": ["x"],
        "store": False,
    }


def test_the_clients_own_store_false_is_kept() -> None:
    call = openai_adapter().chat_call(inbound(store=False), context())
    assert orjson.loads(call.body)["store"] is False


@pytest.mark.parametrize("api", ["deployments", "v1"])
def test_azure_is_addressed_on_its_v1_surface_with_the_deployment_as_model(api: str) -> None:
    azure = Credential(
        id="azure-prod",
        provider=Provider.AZURE_OPENAI,
        base_url="https://res.openai.azure.com",
        api_key=SecretStr("azkey"),
        azure=AzureOptions(api=api, deployment="gpt4o-east"),
    )
    adapter = adapter_for(Provider.AZURE_OPENAI, Schema.OPENAI_RESPONSES)
    assert isinstance(adapter, AzureResponsesAdapter)
    call = adapter.chat_call(inbound(), context(azure))
    assert call.url == "https://res.openai.azure.com/openai/v1/responses"
    assert call.headers["api-key"] == "azkey"
    assert "authorization" not in call.headers
    assert orjson.loads(call.body)["model"] == "gpt4o-east"


def test_azure_content_filter_errors_keep_their_code() -> None:
    adapter = adapter_for(Provider.AZURE_OPENAI, Schema.OPENAI_RESPONSES)
    payload = orjson.dumps({"error": {"code": "content_filter", "message": "blocked by policy"}})
    error = adapter.error_from(400, {}, payload, context())
    assert (error.status, error.code) == (400, "content_filter")


def test_upstream_errors_are_classified_like_chat() -> None:
    payload = orjson.dumps({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}})
    error = openai_adapter().error_from(429, {"retry-after": "3"}, payload, context())
    assert (error.status, error.code, error.retryable, error.retry_after) == (429, "rate_limit_exceeded", True, 3)
    bad = orjson.dumps({"error": {"message": "bad input", "param": "input", "code": "invalid_value"}})
    error = openai_adapter().error_from(400, {}, bad, context())
    assert (error.status, error.param, error.code) == (400, "input", "invalid_value")


def test_a_whole_answer_passes_untouched() -> None:
    answer = orjson.dumps({"id": "resp_1", "object": "response", "status": "completed", "error": None, "output": []})
    assert openai_adapter().chat_result(answer, context()) is answer


def test_a_failed_whole_answer_is_an_upstream_error() -> None:
    answer = orjson.dumps(
        {"id": "resp_1", "object": "response", "status": "failed", "error": {"code": "server_error", "message": "boom"}}
    )
    with pytest.raises(GatewayError) as caught:
        openai_adapter().chat_result(answer, context())
    assert (caught.value.status, caught.value.code) == (502, "upstream_error")
    assert "boom" in caught.value.message


def stream(frames: bytes, chunk_size: int = 7) -> tuple[bytes, Any]:
    translator = openai_adapter().chat_stream(context(stream=True))
    decoder = SSEDecoder()
    out = b"".join(translator.translate(decoder, frames[i : i + chunk_size]) for i in range(0, len(frames), chunk_size))
    return out + translator.close(decoder), translator


USAGE = {
    "input_tokens": 9,
    "input_tokens_details": {"cached_tokens": 4},
    "output_tokens": 3,
    "output_tokens_details": {"reasoning_tokens": 1},
    "total_tokens": 12,
}
STREAM = (
    sse("response.created", sequence_number=0, response={"id": "resp_1", "output": []})
    + sse("response.output_text.delta", sequence_number=1, item_id="m", output_index=0, content_index=0, delta="Hi")
    + sse("response.completed", sequence_number=2, response={"id": "resp_1", "output": [], "usage": USAGE})
)


def test_stream_events_pass_untouched_and_usage_is_read_from_the_terminal_event() -> None:
    out, translator = stream(STREAM)
    assert out == STREAM
    assert translator.usage == {
        "prompt_tokens": 9,
        "completion_tokens": 3,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }


def test_events_without_names_are_read_by_their_type() -> None:
    unnamed = b"".join(b"data: " + block.split(b"data: ", 1)[1] + b"\n\n" for block in STREAM.split(b"\n\n")[:-1])
    out, translator = stream(unnamed)
    assert out == STREAM
    assert translator.usage is not None


@pytest.mark.parametrize(
    "failure",
    [
        sse("error", sequence_number=2, error={"type": "server_error", "code": "server_error", "message": "boom"}),
        sse("error", sequence_number=2, code="server_error", message="boom", param=None),
        sse("response.failed", sequence_number=2, response={"status": "failed", "error": {"message": "boom"}}),
    ],
)
def test_an_in_band_failure_raises(failure: bytes) -> None:
    with pytest.raises(UpstreamStreamError) as caught:
        stream(STREAM.rsplit(b"event: response.completed", 1)[0] + failure)
    assert caught.value.code == "upstream_error"
    assert "boom" in caught.value.message


def test_a_stream_cut_before_its_terminal_event_raises() -> None:
    with pytest.raises(UpstreamStreamError) as caught:
        stream(STREAM.rsplit(b"event: response.completed", 1)[0])
    assert caught.value.code == "upstream_truncated"


def test_a_done_marker_is_not_relayed() -> None:
    out, _ = stream(STREAM + b"data: [DONE]\n\n")
    assert out == STREAM
