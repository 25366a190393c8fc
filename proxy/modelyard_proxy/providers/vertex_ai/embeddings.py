"""OpenAI embeddings requests as Vertex AI ``:predict`` on Google's embedding models, and back.

Vertex's ``text-embedding-*`` and ``gemini-embedding-*`` models take ``{"instances": [{"content": text}],
"parameters": {"outputDimensionality": n}}`` and answer ``predictions[].embeddings.values``, each with the
tokens its text took in ``statistics.token_count``: unlike the Gemini API, usage is real.
"""

from __future__ import annotations

from typing import Any

from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.openai_chat_to_gemini.response import load_object
from modelyard_proxy.providers.openai_embeddings_to_gemini import dimensions, encoding_format, input_texts, openai_list

PROVIDER = "vertex-ai"


def predict_body(body: JSONObject) -> JSONObject:
    """One instance per input text, in order."""
    texts = input_texts(body, PROVIDER)
    encoding_format(body)  # refuse a bad value before calling upstream
    request: JSONObject = {"instances": [{"content": text} for text in texts]}
    if (size := dimensions(body)) is not None:
        request["parameters"] = {"outputDimensionality": size}
    return request


def embeddings_list(payload: bytes, model: str, encoding: str) -> bytes:
    """Vertex's predictions as OpenAI's ``list`` of embeddings, the token counts summed into ``usage``."""
    predictions = load_object(payload).get("predictions")
    if not isinstance(predictions, list):
        raise MalformedAnswer("no predictions")
    vectors: list[list[Any]] = []
    tokens = 0
    for prediction in predictions:
        embedding = prediction.get("embeddings") if isinstance(prediction, dict) else None
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list):
            raise MalformedAnswer("a prediction without embeddings.values")
        vectors.append(values)
        statistics = embedding.get("statistics") if isinstance(embedding, dict) else None
        count = statistics.get("token_count") if isinstance(statistics, dict) else None
        if isinstance(count, int | float) and not isinstance(count, bool):
            tokens += int(count)
    return openai_list(vectors, model, encoding, prompt_tokens=tokens)
