"""OpenAI embeddings over InvokeModel: Titan Text Embeddings (one text a call) and Cohere Embed (a batch)."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import Inbound
from tests.providers_bedrock.common import ADAPTER, BASE_URL, ctx

TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"


def invoke(body: dict[str, Any], model: str) -> tuple[str, dict[str, Any]]:
    call = ADAPTER.embeddings_call(Inbound(body, orjson.dumps(body)), ctx(model))
    return call.url, orjson.loads(call.body)


def refused(body: dict[str, Any], model: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        invoke(body, model)
    assert caught.value.status == 400
    return caught.value


def test_titan_takes_one_text_with_its_dimensions() -> None:
    url, body = invoke({"input": ["hello"], "dimensions": 256}, TITAN)
    assert url == f"{BASE_URL}/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert body == {"inputText": "hello", "normalize": True, "dimensions": 256}


def test_titan_refuses_a_batch_and_names_the_family_that_takes_one() -> None:
    error = refused({"input": ["one", "two"]}, TITAN)
    assert error.param == "input"
    assert "Cohere" in error.message


def test_cohere_takes_a_batch_of_documents() -> None:
    _, body = invoke({"input": ["one", "two"]}, COHERE)
    assert body == {"texts": ["one", "two"], "input_type": "search_document"}
    assert refused({"input": ["x"] * 97}, COHERE).param == "input"
    assert refused({"input": "x", "dimensions": 256}, COHERE).param == "dimensions"
    assert invoke({"input": "x", "dimensions": 256}, "cohere.embed-v4:0")[1]["output_dimension"] == 256


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": ""}, "input"),
        ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
    ],
)
def test_bad_input_is_refused(body: dict[str, Any], param: str) -> None:
    assert refused(body, TITAN).param == param


def test_a_model_of_no_known_family_is_refused() -> None:
    assert refused({"input": "x"}, "anthropic.claude-3-haiku-20240307-v1:0").param == "model"


def test_titan_answer_with_its_token_count_and_base64_encoded_by_the_gateway() -> None:
    payload = orjson.dumps({"embedding": [0.5, -0.25], "inputTextTokenCount": 3})
    floats = orjson.loads(ADAPTER.embeddings_result(payload, ctx(TITAN)))
    assert floats["data"] == [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}]
    assert floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    encoded = orjson.loads(ADAPTER.embeddings_result(payload, ctx(TITAN, encoding_format="base64")))
    assert struct.unpack("<2f", base64.b64decode(encoded["data"][0]["embedding"])) == (0.5, -0.25)


@pytest.mark.parametrize("embeddings", [[[0.1], [0.2]], {"float": [[0.1], [0.2]]}])
def test_cohere_answers(embeddings: Any) -> None:
    payload = orjson.dumps({"id": "x", "embeddings": embeddings, "response_type": "embeddings_floats"})
    data = orjson.loads(ADAPTER.embeddings_result(payload, ctx(COHERE)))["data"]
    assert [(d["index"], d["embedding"]) for d in data] == [(0, [0.1]), (1, [0.2])]
