"""The registry picks each provider's translator by (ingress, egress) schema pair."""

from __future__ import annotations

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.providers import registry
from modelyard_proxy.providers.base import CallContext, Inbound, JSONObject
from modelyard_proxy.providers.schemas import Pair, Schema
from modelyard_routing import Credential, Provider


@pytest.mark.parametrize("provider", list(Provider))
def test_every_provider_has_a_translator_for_its_chat_pair(provider: Provider) -> None:
    adapter = registry.adapter_for(provider)
    chat = Pair(Schema.OPENAI_CHAT, registry.EGRESS[provider])
    assert chat in adapter.pairs
    for pair in adapter.pairs:
        built = registry.translator_for(pair)(provider)
        assert type(built) is type(adapter)


def test_the_pairs_the_providers_need_are_exactly_the_registered_ones() -> None:
    needed = {pair for provider in Provider for pair in registry.adapter_for(provider).pairs}
    assert needed == set(registry.TRANSLATORS)


def test_an_unregistered_pair_is_named_in_the_lookup_error() -> None:
    with pytest.raises(LookupError, match="openai-embeddings to anthropic-messages"):
        registry.translator_for(Pair(Schema.OPENAI_EMBEDDINGS, Schema.ANTHROPIC_MESSAGES))


@pytest.mark.parametrize(
    ("pair", "passthrough"),
    [
        (Pair(Schema.OPENAI_CHAT, Schema.OPENAI_CHAT), True),
        (Pair(Schema.OPENAI_EMBEDDINGS, Schema.OPENAI_EMBEDDINGS), True),
        (Pair(Schema.OPENAI_CHAT, Schema.ANTHROPIC_MESSAGES), False),
        (Pair(Schema.OPENAI_CHAT, Schema.GEMINI_GENERATE_CONTENT), False),
    ],
)
def test_a_pair_is_a_passthrough_when_both_sides_speak_one_schema(pair: Pair, *, passthrough: bool) -> None:
    assert pair.passthrough is passthrough


def _call(provider: Provider, pair: Pair, operation: str, body: JSONObject) -> tuple[bytes, bytes]:
    """The client's bytes and the upstream body the pair's translator builds from them."""
    raw = orjson.dumps(body)
    credential = Credential(
        id="upstream", provider=provider, base_url="https://upstream.test", api_key=SecretStr("key")
    )
    ctx = CallContext(public_model="m", upstream_model="m", credential=credential)
    call = getattr(registry.translator_for(pair)(provider), operation)(Inbound(body, raw), ctx)
    return raw, call.body


CHAT: JSONObject = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("pair", "operation", "body"),
    [
        (Pair(Schema.OPENAI_CHAT, Schema.OPENAI_CHAT), "chat_call", CHAT),
        (Pair(Schema.OPENAI_EMBEDDINGS, Schema.OPENAI_EMBEDDINGS), "embeddings_call", {"model": "m", "input": "hi"}),
    ],
)
def test_a_same_schema_pair_sends_the_clients_bytes_untouched(pair: Pair, operation: str, body: JSONObject) -> None:
    raw, sent = _call(Provider.OPENAI, pair, operation, body)
    assert sent is raw


@pytest.mark.parametrize(
    ("provider", "pair", "field"),
    [
        (Provider.ANTHROPIC, Pair(Schema.OPENAI_CHAT, Schema.ANTHROPIC_MESSAGES), "max_tokens"),
        (Provider.GEMINI, Pair(Schema.OPENAI_CHAT, Schema.GEMINI_GENERATE_CONTENT), "contents"),
    ],
)
def test_a_cross_schema_pair_rewrites_the_body_into_the_upstreams_schema(
    provider: Provider, pair: Pair, field: str
) -> None:
    raw, sent = _call(provider, pair, "chat_call", CHAT)
    assert sent != raw
    assert field in orjson.loads(sent)
