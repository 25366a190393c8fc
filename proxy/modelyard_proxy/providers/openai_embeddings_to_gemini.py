"""OpenAI embeddings requests as Gemini ``batchEmbedContents`` and back.

Gemini reports no token counts for embeddings, so ``usage`` is all zeros: an honest "unknown" rather than
an estimate a budget could be computed from.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from modelyard_proxy.base.errors import bad_request
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.openai_chat_to_gemini.response import load_object

ENCODINGS = frozenset({"float", "base64"})


def embeddings_body(body: JSONObject, model_path: str) -> JSONObject:
    """One ``batchEmbedContents`` request per input text (``model_path`` is ``models/<name>``)."""
    texts = input_texts(body, "gemini")
    encoding_format(body)  # refuse a bad value before calling upstream
    request: JSONObject = {"model": model_path}
    if (size := dimensions(body)) is not None:
        request["outputDimensionality"] = size
    return {"requests": [{**request, "content": {"parts": [{"text": text}]}} for text in texts]}


def input_texts(body: JSONObject, provider: str) -> list[str]:
    """The texts to embed: ``input`` as a string or a non-empty list of strings (Google's APIs take no token
    arrays)."""
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise bad_request(
            f"'input' must be a string or a non-empty list of strings for the {provider} provider "
            "(token arrays are not supported)",
            param="input",
        )
    return texts


def dimensions(body: JSONObject) -> int | None:
    """``dimensions``, a positive integer when given."""
    value = body.get("dimensions")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise bad_request("'dimensions' must be a positive integer", param="dimensions")
    return value


def encoding_format(body: JSONObject) -> str:
    """``float`` (the default) or ``base64``; any other value, of any JSON type, is a 400."""
    value = body.get("encoding_format")
    if value is None:
        return "float"
    if not isinstance(value, str) or value not in ENCODINGS:
        raise bad_request("'encoding_format' must be float or base64", param="encoding_format")
    return value


def embeddings_list(payload: bytes, model: str, encoding: str) -> bytes:
    """Gemini's ``{"embeddings": [{"values": [...]}]}`` as OpenAI's ``list`` of embeddings."""
    embeddings = load_object(payload).get("embeddings")
    if not isinstance(embeddings, list):
        raise MalformedAnswer("no embeddings")
    vectors = [item.get("values") or [] for item in embeddings if isinstance(item, dict)]
    return openai_list(vectors, model, encoding, prompt_tokens=0)


def openai_list(vectors: list[list[Any]], model: str, encoding: str, *, prompt_tokens: int) -> bytes:
    """OpenAI's ``list`` of embeddings, one per vector in input order."""
    data = [
        {"object": "embedding", "index": k, "embedding": encode_vector(values, encoding)}
        for k, values in enumerate(vectors)
    ]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage})


def encode_vector(values: list[Any], encoding: str) -> list[Any] | str:
    """OpenAI's ``base64`` form is the little-endian float32 array, base64 encoded."""
    if encoding != "base64":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
