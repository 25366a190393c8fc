"""OpenAI embeddings over Bedrock's ``InvokeModel``, whose body is the model family's own.

Two families are spoken: Amazon Titan Text Embeddings (``amazon.titan-embed-text-v2:0``: one text per call,
``dimensions`` 256, 512 or 1024, vectors normalised, the token count reported) and Cohere Embed
(``cohere.embed-english-v3``, ``cohere.embed-multilingual-v3``, ``cohere.embed-v4:0``: up to 96 texts per
call, documents embedded as ``search_document``; Bedrock's body carries no token count, so usage is zero,
an honest "unknown"). A batch Titan cannot take in one call is refused rather than split: one client request
is one upstream call, billed and retried as one.
"""

from __future__ import annotations

import base64
import dataclasses
import struct
from typing import Any

import orjson

from modelyard_proxy.base.errors import bad_request, unsupported_parameter
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.openai_embeddings_to_gemini import encoding_format

PROVIDER = "bedrock"
COHERE_BATCH = 96


@dataclasses.dataclass(frozen=True, slots=True)
class Family:
    """How one embedding family's InvokeModel body is written and read."""

    name: str
    batch: int
    #: The body field ``dimensions`` maps to, or None when the model's size is fixed.
    dimensions_field: str | None


TITAN_V2 = Family("Amazon Titan Text Embeddings v2", 1, "dimensions")
TITAN_V1 = Family("Amazon Titan Text Embeddings", 1, None)
COHERE_V3 = Family("Cohere Embed v3", COHERE_BATCH, None)
COHERE_V4 = Family("Cohere Embed v4", COHERE_BATCH, "output_dimension")


def family(model: str) -> Family:
    """The family of ``model`` (a model id, inference profile or ARN), by its name."""
    if "titan-embed-text-v2" in model:
        return TITAN_V2
    if "titan-embed" in model:
        return TITAN_V1
    if "cohere.embed-v4" in model:
        return COHERE_V4
    if "cohere.embed" in model:
        return COHERE_V3
    raise bad_request(
        f"the bedrock provider embeds with Amazon Titan Text Embeddings or Cohere Embed models; {model!r} is neither",
        param="model",
        code="unsupported_endpoint",
    )


def invoke_body(body: JSONObject, model: str) -> JSONObject:
    """The InvokeModel body for an OpenAI embeddings request."""
    kind = family(model)
    texts = _texts(body.get("input"))
    if len(texts) > kind.batch:
        what = "one input" if kind.batch == 1 else f"at most {kind.batch} inputs"
        raise bad_request(
            f"{kind.name} on Bedrock takes {what} per request; {len(texts)} were sent"
            + (" (Cohere Embed models take up to 96)" if kind.batch == 1 else ""),
            param="input",
        )
    encoding_format(body)  # refuse a bad value before calling upstream
    request: JSONObject = (
        {"inputText": texts[0], "normalize": True}
        if kind.batch == 1
        else {"texts": texts, "input_type": "search_document"}
    )
    if kind is TITAN_V1:
        request.pop("normalize")
    if (dimensions := body.get("dimensions")) is not None:
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            raise bad_request("'dimensions' must be a positive integer", param="dimensions")
        if kind.dimensions_field is None:
            raise unsupported_parameter("dimensions", PROVIDER, f"{kind.name} has one fixed size")
        request[kind.dimensions_field] = dimensions
    return request


def _texts(value: Any) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise bad_request(
            "'input' must be a non-empty string or a non-empty list of them for the bedrock provider"
            " (token arrays are not supported)",
            param="input",
        )
    return texts


def embeddings_list(payload: bytes, model: str, encoding: str) -> bytes:
    """Titan's ``{"embedding", "inputTextTokenCount"}`` or Cohere's ``{"embeddings"}`` as OpenAI's list."""
    try:
        answer = orjson.loads(payload)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise MalformedAnswer("not a JSON object")
    tokens = 0
    if isinstance(single := answer.get("embedding"), list):
        vectors = [single]
        count = answer.get("inputTextTokenCount")
        tokens = count if isinstance(count, int) else 0
    else:
        vectors = _cohere_vectors(answer.get("embeddings"))
    data = [
        {"object": "embedding", "index": k, "embedding": _encode(vector, encoding)} for k, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage})


def _cohere_vectors(embeddings: Any) -> list[list[float]]:
    """Cohere's ``embeddings``: a list of vectors, or (v4, typed) ``{"float": [...]}``."""
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list) or not all(isinstance(v, list) for v in embeddings):
        raise MalformedAnswer("no embeddings")
    return embeddings


def _encode(values: list[float], encoding: str) -> list[float] | str:
    """OpenAI's ``base64`` form: the little-endian float32 array, base64 encoded."""
    if encoding != "base64":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
