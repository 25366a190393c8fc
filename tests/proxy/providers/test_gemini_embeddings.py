"""OpenAI embeddings requests over Gemini ``batchEmbedContents``."""

from __future__ import annotations

import base64
import dataclasses
import struct
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext, Inbound
from modelyard_proxy.providers.openai_chat_to_gemini.adapter import GeminiAdapter
from modelyard_routing import Credential
from modelyard_routing.specs import Provider

CTX = CallContext(
    public_model="embed",
    upstream_model="gemini-embedding-001",
    credential=Credential(
        id="gemini-main",
        provider=Provider.GEMINI,
        base_url="https://generativelanguage.googleapis.com/v1beta",
        api_key=SecretStr("AIzaSyTestKey0000000000000000000000000"),
    ),
)
VALUES = [[0.015625, -0.5, 0.25], [1.0, 0.0, -0.125]]
GEMINI_ANSWER = orjson.dumps({"embeddings": [{"values": v} for v in VALUES]})


def upstream(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    call = GeminiAdapter().embeddings_call(Inbound(body, orjson.dumps(body)), CTX)
    return call.url, orjson.loads(call.body)


@pytest.mark.parametrize(("given", "texts"), [("hello", ["hello"]), (["a", "b"], ["a", "b"])])
def test_request(given: Any, texts: list[str]) -> None:
    url, body = upstream({"model": "embed", "input": given, "dimensions": 768, "user": "u1"})
    assert url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert body == {
        "requests": [
            {"model": "models/gemini-embedding-001", "outputDimensionality": 768, "content": {"parts": [{"text": t}]}}
            for t in texts
        ]
    }


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": [[1, 2], [3]]}, "input"),
        ({"input": []}, "input"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "encoding_format": ["base64"]}, "encoding_format"),
        ({"input": "x", "encoding_format": {"type": "float"}}, "encoding_format"),
    ],
)
def test_refused_requests(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        upstream({"model": "embed", **extra})
    assert (caught.value.status, caught.value.param) == (400, param)


def test_float_answer() -> None:
    assert orjson.loads(GeminiAdapter().embeddings_result(GEMINI_ANSWER, CTX)) == {
        "object": "list",
        "data": [{"object": "embedding", "index": k, "embedding": v} for k, v in enumerate(VALUES)],
        "model": "gemini-embedding-001",
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }


def test_base64_answer_is_little_endian_float32() -> None:
    context = dataclasses.replace(CTX, encoding_format="base64")
    result = orjson.loads(GeminiAdapter().embeddings_result(GEMINI_ANSWER, context))
    decoded = [list(struct.unpack("<3f", base64.b64decode(item["embedding"]))) for item in result["data"]]
    assert decoded == VALUES  # the fixture's values are exact in float32
    assert [item["index"] for item in result["data"]] == [0, 1]
