"""Azure OpenAI: both addressing styles, the api-key header, and content filtering."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.providers.base import CallContext, Inbound
from modelyard_proxy.providers.openai_chat_to_openai_chat.azure import AzureOpenAIAdapter
from modelyard_routing import Credential, Provider
from modelyard_routing.specs import AzureOptions

KEY = "3f9c2b7e0d1a4c5f8e6b9a0d2c4e6f81"
ENDPOINT = "https://contoso-eastus.openai.azure.com"
ADAPTER = AzureOpenAIAdapter()


def context(azure: dict[str, Any] | None = None, upstream: str = "gpt-4o-prod") -> CallContext:
    cred = Credential(
        id="azure-eastus",
        provider=Provider.AZURE_OPENAI,
        base_url=ENDPOINT,
        api_key=SecretStr(KEY),
        azure=None if azure is None else AzureOptions.model_validate(azure),
    )
    return CallContext(public_model="gpt-4o", upstream_model=upstream, credential=cred)


def inbound(**body: Any) -> Inbound:
    return Inbound(body, orjson.dumps(body))


REQUEST = inbound(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], stream=True)


@pytest.mark.parametrize(
    ("azure", "operation", "url"),
    [
        (None, "chat", f"{ENDPOINT}/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"),
        (None, "embeddings", f"{ENDPOINT}/openai/deployments/gpt-4o-prod/embeddings?api-version=2024-10-21"),
        (
            {"api": "deployments", "apiVersion": "2025-04-01-preview", "deployment": "chat.v2"},
            "chat",
            f"{ENDPOINT}/openai/deployments/chat.v2/chat/completions?api-version=2025-04-01-preview",
        ),
        ({"api": "v1"}, "chat", f"{ENDPOINT}/openai/v1/chat/completions"),
        ({"api": "v1"}, "embeddings", f"{ENDPOINT}/openai/v1/embeddings"),
    ],
)
def test_urls(azure: dict[str, Any] | None, operation: str, url: str) -> None:
    call = (ADAPTER.chat_call if operation == "chat" else ADAPTER.embeddings_call)(REQUEST, context(azure))
    assert call.url == url


def test_the_deployment_name_is_quoted_into_the_path() -> None:
    call = ADAPTER.chat_call(REQUEST, context(upstream="team a/gpt"))
    assert call.url.startswith(f"{ENDPOINT}/openai/deployments/team%20a%2Fgpt/chat/completions?")


@pytest.mark.parametrize(
    ("azure", "deployment"),
    [(None, "gpt-4o-prod"), ({"api": "deployments", "deployment": "chat.v2"}, "chat.v2")],
)
@pytest.mark.parametrize("operation", ["chat", "embeddings"])
def test_deployment_style_names_the_deployment_never_the_public_model(
    azure: dict[str, Any] | None, deployment: str, operation: str
) -> None:
    call = (ADAPTER.chat_call if operation == "chat" else ADAPTER.embeddings_call)(REQUEST, context(azure))
    assert orjson.loads(call.body) == {**REQUEST.body, "model": deployment}


def test_deployment_style_sends_the_clients_bytes_when_they_name_the_deployment() -> None:
    request = inbound(model="gpt-4o-prod", messages=[{"role": "user", "content": "Hi"}])
    assert ADAPTER.chat_call(request, context()).body is request.raw


def test_v1_style_names_the_deployment_as_the_model() -> None:
    call = ADAPTER.chat_call(REQUEST, context({"api": "v1"}))
    assert orjson.loads(call.body) == {**REQUEST.body, "model": "gpt-4o-prod"}


def test_auth_is_the_api_key_header() -> None:
    call = ADAPTER.chat_call(REQUEST, context())
    assert call.headers == {"content-type": "application/json", "api-key": KEY}


CONTENT_FILTER_ERROR = orjson.dumps(
    {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
            "policy. Please modify your prompt and retry.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": False, "severity": "safe"},
                    "self_harm": {"filtered": False, "severity": "safe"},
                    "sexual": {"filtered": False, "severity": "safe"},
                    "violence": {"filtered": True, "severity": "medium"},
                },
            },
        }
    }
)


@pytest.mark.parametrize(
    "payload",
    [
        CONTENT_FILTER_ERROR,
        b'{"error":{"message":"Blocked.","code":"400","innererror":{"code":"ResponsibleAIPolicyViolation"}}}',
    ],
)
def test_content_filtering_is_a_400_content_filter(payload: bytes) -> None:
    error = ADAPTER.error_from(400, {}, payload, context())
    assert (error.status, error.code, error.retryable) == (400, "content_filter", False)


def test_other_azure_errors_are_classified_as_openais() -> None:
    payload = b'{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded call rate limit."}}'
    error = ADAPTER.error_from(429, {"retry-after": "7"}, payload, context())
    assert (error.status, error.code, error.retry_after) == (429, "rate_limit_exceeded", 7.0)
    denied = (
        b'{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}'
    )
    assert ADAPTER.error_from(401, {}, denied, context()).code == "upstream_auth_failed"


def test_a_content_filter_finish_passes_through() -> None:
    payload = orjson.dumps(
        {
            "id": "chatcmpl-AzX",
            "object": "chat.completion",
            "created": 1741570283,
            "model": "gpt-4o-2024-11-20",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"}
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23},
        }
    )
    assert ADAPTER.chat_result(payload, context()) is payload


def test_an_azure_stream_with_filter_annotations_passes_byte_for_byte() -> None:
    stream = (
        b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,'
        b'"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}\n\n'
        b'data: {"choices":[{"content_filter_results":{},"delta":{"content":"","role":"assistant"},"finish_reason":null,'
        b'"index":0,"logprobs":null}],"created":1741570283,"id":"chatcmpl-AzX","model":"gpt-4o-2024-11-20",'
        b'"object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0"}\n\n'
        b'data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"content_filter","index":0,'
        b'"logprobs":null}],"created":1741570283,"id":"chatcmpl-AzX","model":"gpt-4o-2024-11-20",'
        b'"object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0"}\n\n'
        b"data: [DONE]\n\n"
    )
    translator = ADAPTER.chat_stream(context())
    decoder = SSEDecoder()
    out = b"".join(translator.feed(event) for event in decoder.feed(stream))
    assert out + translator.finish() == stream
