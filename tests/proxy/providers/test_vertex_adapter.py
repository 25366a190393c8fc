"""Vertex AI's addressing and framing: the URL of each publisher's methods, Claude's body for ``rawPredict``,
``predict`` embeddings, and errors in Google's or Anthropic's shape."""

from __future__ import annotations

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, Inbound, JSONObject
from modelyard_proxy.providers.registry import adapter_for
from modelyard_proxy.providers.schemas import Schema
from modelyard_routing import Credential, Provider
from modelyard_routing.specs import VertexOptions, VertexPublisher

BASE = "https://us-east5-aiplatform.googleapis.com/v1"
CHAT: JSONObject = {"model": "public", "messages": [{"role": "user", "content": "hi"}]}


def context(
    publisher: VertexPublisher,
    model: str = "claude-sonnet-4-5@20250929",
    *,
    region: str | None = "us-east5",
    stream: bool = False,
    forwarded: dict[str, str] | None = None,
) -> CallContext:
    credential = Credential(
        id="default/vertex",
        provider=Provider.VERTEX_AI,
        base_url=BASE,
        region=region,
        vertex=VertexOptions(project="my-project", publisher=publisher),
        service_account=SecretStr("{}"),
        headers={"x-team": "search"},
    )
    return CallContext(
        public_model="public",
        upstream_model=model,
        credential=credential,
        stream=stream,
        forwarded_headers=forwarded or {},
    )


@pytest.mark.parametrize(
    ("publisher", "model", "stream", "method"),
    [
        (VertexPublisher.ANTHROPIC, "claude-sonnet-4-5@20250929", False, "rawPredict"),
        (VertexPublisher.ANTHROPIC, "claude-sonnet-4-5@20250929", True, "streamRawPredict"),
        (VertexPublisher.GOOGLE, "gemini-2.5-flash", False, "generateContent"),
        (VertexPublisher.GOOGLE, "gemini-2.5-flash", True, "streamGenerateContent?alt=sse"),
    ],
)
def test_one_adapter_addresses_each_publishers_method(
    publisher: VertexPublisher, model: str, *, stream: bool, method: str
) -> None:
    call = adapter_for(Provider.VERTEX_AI).chat_call(Inbound(CHAT, None), context(publisher, model, stream=stream))
    assert call.url == (
        f"{BASE}/projects/my-project/locations/us-east5/publishers/{publisher.value}/models/{model}:{method}"
    )
    assert call.headers == {"x-team": "search", "content-type": "application/json"}  # the token is added later


def test_a_model_name_is_one_path_segment_and_no_region_is_global() -> None:
    ctx = context(VertexPublisher.GOOGLE, "tuned/model name", region=None)
    call = adapter_for(Provider.VERTEX_AI).chat_call(Inbound(CHAT, None), ctx)
    assert call.url.endswith("/locations/global/publishers/google/models/tuned%2Fmodel%20name:generateContent")


def test_claude_bodies_carry_the_vertex_version_and_no_model() -> None:
    ctx = context(VertexPublisher.ANTHROPIC, stream=True)
    body = orjson.loads(adapter_for(Provider.VERTEX_AI).chat_call(Inbound(CHAT, None), ctx).body)
    assert "model" not in body
    assert body["anthropic_version"] == "vertex-2023-10-16"
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_messages_clients_body_passes_through_but_for_model_and_version() -> None:
    client_body: JSONObject = {
        "model": "public",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        "metadata": {"user_id": "u1"},
    }
    forwarded = {"anthropic-version": "2023-06-01", "anthropic-beta": "context-1m-2025-08-07"}
    ctx = context(VertexPublisher.ANTHROPIC, forwarded=forwarded)
    call = adapter_for(Provider.VERTEX_AI, Schema.ANTHROPIC_MESSAGES).chat_call(Inbound(client_body, None), ctx)
    body = orjson.loads(call.body)
    assert body == {**{k: v for k, v in client_body.items() if k != "model"}, "anthropic_version": "vertex-2023-10-16"}
    assert call.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert "anthropic-version" not in call.headers


def test_messages_clients_of_gemini_on_vertex_are_translated() -> None:
    body: JSONObject = {"model": "public", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    ctx = context(VertexPublisher.GOOGLE, "gemini-2.5-flash")
    call = adapter_for(Provider.VERTEX_AI, Schema.ANTHROPIC_MESSAGES).chat_call(Inbound(body, None), ctx)
    assert call.url.endswith("/publishers/google/models/gemini-2.5-flash:generateContent")
    assert orjson.loads(call.body)["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_embeddings_are_one_predict_instance_per_input() -> None:
    adapter = adapter_for(Provider.VERTEX_AI)
    ctx = context(VertexPublisher.GOOGLE, "text-embedding-005")
    call = adapter.embeddings_call(Inbound({"model": "m", "input": ["a", "b"], "dimensions": 4}, None), ctx)
    assert call.url.endswith("/publishers/google/models/text-embedding-005:predict")
    assert orjson.loads(call.body) == {
        "instances": [{"content": "a"}, {"content": "b"}],
        "parameters": {"outputDimensionality": 4},
    }
    answer = {
        "predictions": [
            {"embeddings": {"values": [0.5, 0.25], "statistics": {"token_count": 3, "truncated": False}}},
            {"embeddings": {"values": [1.0, 0.0], "statistics": {"token_count": 2.0, "truncated": False}}},
        ]
    }
    listed = orjson.loads(adapter.embeddings_result(orjson.dumps(answer), ctx))
    assert [item["embedding"] for item in listed["data"]] == [[0.5, 0.25], [1.0, 0.0]]
    assert listed["usage"] == {"prompt_tokens": 5, "total_tokens": 5}


@pytest.mark.parametrize("answer", [{"predictions": [{"embeddings": {}}]}, {"embeddings": []}])
def test_an_answer_without_prediction_vectors_is_malformed(answer: JSONObject) -> None:
    ctx = context(VertexPublisher.GOOGLE, "text-embedding-005")
    with pytest.raises(MalformedAnswer):
        adapter_for(Provider.VERTEX_AI).embeddings_result(orjson.dumps(answer), ctx)


def test_token_arrays_and_claude_embeddings_are_refused() -> None:
    adapter = adapter_for(Provider.VERTEX_AI)
    with pytest.raises(Exception, match="token arrays are not supported"):
        adapter.embeddings_call(Inbound({"input": [[1, 2]]}, None), context(VertexPublisher.GOOGLE))
    with pytest.raises(Exception, match="Claude on Vertex AI, which has no embeddings API"):
        adapter.embeddings_call(Inbound({"input": "a"}, None), context(VertexPublisher.ANTHROPIC))


def _google(code: int, status: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "status": status}})


@pytest.mark.parametrize("publisher", list(VertexPublisher))
@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        # Vertex's 429 is a throughput limit, retried and fallen back from whatever its wording.
        (429, _google(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota"), (429, "rate_limit_exceeded", True)),
        (401, _google(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."), (502, "upstream_auth_failed", False)),
        (404, _google(404, "NOT_FOUND", "Publisher Model `x` was not found."), (502, "upstream_not_found", False)),
        (529, b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', (503, "upstream_unavailable", True)),
        (400, b'{"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}', (400, None, False)),
        (503, b"upstream connect error", (503, "upstream_unavailable", True)),
    ],
)  # fmt: skip
def test_errors_in_either_shape(
    publisher: VertexPublisher, status: int, payload: bytes, expected: tuple[int, str | None, bool]
) -> None:
    error = adapter_for(Provider.VERTEX_AI).error_from(status, {}, payload, context(publisher))
    assert (error.status, error.code, error.retryable) == expected
    assert "default/vertex" in error.message or status == 400
