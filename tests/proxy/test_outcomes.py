"""Reading an upstream's 2xx answer: whatever an adapter cannot read is ``upstream_malformed`` for the credential
that sent it (retryable), never a 500, whichever provider answered."""

from __future__ import annotations

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext
from modelyard_proxy.providers.ingress.openai_chat import CHAT
from modelyard_proxy.providers.registry import adapter_for
from modelyard_proxy.relay.outcomes import read_embeddings, translated, whole_answer
from modelyard_proxy.table.store import ResolvedTarget
from modelyard_routing import Credential, Provider, Target


def resolved(provider: Provider) -> ResolvedTarget:
    credential = Credential(
        id=f"team/{provider.value}", provider=provider, base_url="http://127.0.0.1:9", api_key=SecretStr("sk-x")
    )
    target = Target(id=f"team/{provider.value}|m", credential=credential.id, model="m")
    return ResolvedTarget(target, credential, adapter_for(provider), ("r", provider.value, "m"), None)


def read(provider: Provider, body: object) -> bytes:
    served = resolved(provider)
    ctx = CallContext(public_model="chat", upstream_model="m", credential=served.credential)
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return whole_answer(served, translated(served, served.adapter.chat_result, payload, ctx), CHAT.read_answer).body


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        pytest.param(Provider.ANTHROPIC, {"type": "message", "content": [{"type": "text", "text": 5}]}, id="text-5"),
        pytest.param(Provider.ANTHROPIC, {"type": "message", "content": "hi"}, id="content-not-a-list"),
        pytest.param(Provider.GEMINI, {"candidates": [{"index": "first"}]}, id="index-not-a-number"),
        pytest.param(Provider.GEMINI, {"candidates": [], "usageMetadata": {"promptTokenCount": "many"}}, id="usage"),
        pytest.param(Provider.GEMINI, {"modelVersion": "gemini-2.5-flash"}, id="no-candidates"),
        pytest.param(Provider.OPENAI, {"object": "chat.completion"}, id="no-choices"),
        pytest.param(Provider.OPENAI, [1, 2], id="not-an-object"),
        pytest.param(Provider.OPENAI, b"<html>OK</html>", id="not-json"),
    ],
)
def test_an_answer_of_the_wrong_shape_is_malformed_for_its_credential(provider: Provider, body: object) -> None:
    with pytest.raises(GatewayError) as caught:
        read(provider, body)
    error = caught.value
    assert (error.status, error.code, error.retryable) == (502, "upstream_malformed", True)
    assert error.message == f"upstream {provider.value} (team/{provider.value}) sent a malformed answer"


def test_a_readable_answer_is_relayed() -> None:
    answer = {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}
    assert orjson.loads(read(Provider.GEMINI, answer))["choices"][0]["message"]["content"] == "hi"


@pytest.mark.parametrize("provider", [Provider.GEMINI, Provider.OPENAI])
def test_embeddings_of_the_wrong_shape_are_malformed(provider: Provider) -> None:
    served = resolved(provider)
    ctx = CallContext(public_model="embed", upstream_model="m", credential=served.credential)
    translate = served.adapter.embeddings_result
    with pytest.raises(GatewayError) as caught:
        whole_answer(served, translated(served, translate, b'{"status": "ok"}', ctx), read_embeddings)
    assert (caught.value.code, caught.value.retryable) == ("upstream_malformed", True)
