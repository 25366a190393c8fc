"""What the Bedrock unit tests share: a credential, call contexts and the adapter's translations."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import SecretStr

from modelyard_proxy.providers.base import CallContext, Inbound, UpstreamCall
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.adapter import BedrockAdapter
from modelyard_routing import Credential, Provider

BASE_URL = "https://bedrock-runtime.eu-west-1.amazonaws.com"
CREDENTIAL = Credential(id="bedrock-eu", provider=Provider.BEDROCK, base_url=BASE_URL, region="eu-west-1")
KEYED = CREDENTIAL.model_copy(update={"api_key": SecretStr("ABSKQmVkcm9ja0FQSUtleS0xMjM0NTY3ODkw")})
CLAUDE = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
ADAPTER = BedrockAdapter()


def ctx(model: str = CLAUDE, *, stream: bool = False, credential: Credential = CREDENTIAL, **extra: Any) -> CallContext:
    return CallContext(
        "public", model, credential, stream=stream, created=1_700_000_000, completion_id="chatcmpl-1", **extra
    )


def chat_call(body: dict[str, Any], model: str = CLAUDE, **extra: Any) -> UpstreamCall:
    return ADAPTER.chat_call(Inbound(body, orjson.dumps(body)), ctx(model, **extra))


def converse_body(body: dict[str, Any], model: str = CLAUDE) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(chat_call(body, model).body)
    return result


def completion(answer: dict[str, Any], **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(ADAPTER.chat_result(orjson.dumps(answer), ctx(**extra)))
    return result
