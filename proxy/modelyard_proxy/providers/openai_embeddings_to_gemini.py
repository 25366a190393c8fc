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
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise bad_request(
            "'input' must be a string or a non-empty list of strings for the gemini provider "
            "(token arrays are not supported)",
            param="input",
        )
    encoding_format(body)  # refuse a bad value before calling upstream
    request: JSONObject = {"model": model_path}
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            raise bad_request("'dimensions' must be a positive integer", param="dimensions")
        request["outputDimensionality"] = dimensions
    return {"requests": [{**request, "content": {"parts": [{"text": text}]}} for text in texts]}


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
    data = [
        {"object": "embedding", "index": k, "embedding": _encode(item.get("values") or [], encoding)}
        for k, item in enumerate(embeddings)
        if isinstance(item, dict)
    ]
    return orjson.dumps(
        {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 0, "total_tokens": 0}}
    )


def _encode(values: list[Any], encoding: str) -> list[Any] | str:
    """OpenAI's ``base64`` form is the little-endian float32 array, base64 encoded."""
    if encoding != "base64":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
