"""Vertex AI's publisher models: ``/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/
{model}:{method}``.

Publisher ``google`` serves the Gemini dialect's ``generateContent`` and ``streamGenerateContent`` and Vertex's
``predict`` embeddings; publisher ``anthropic`` serves the Anthropic dialect's messages through ``rawPredict``
and ``streamRawPredict``, its body without ``model`` and with ``anthropic_version`` (Vertex's documented
``vertex-2023-10-16``, or the dated version newer SDKs send). Every call needs an access
token the simulator issued (see :mod:`~modelyard_simulator.google_auth`). Vertex's front door answers in Google's
error shape for both publishers (bad token, permissions, unknown model, quota); a Claude model's own errors keep
Anthropic's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from modelyard_simulator import anthropic_dialect, gemini_dialect
from modelyard_simulator.anthropic_dialect import AnthropicDialect
from modelyard_simulator.embedding import embed
from modelyard_simulator.engine import Exchange, JsonObject, ResponseMeta, Target, bearer, serve_exchange
from modelyard_simulator.errors import Failure
from modelyard_simulator.gemini_dialect import GeminiDialect, field
from modelyard_simulator.google_auth import GOOGLE_AUTH
from modelyard_simulator.tokens import tokenize

ANTHROPIC_VERSION = "vertex-2023-10-16"
_RESOURCE_EXHAUSTED = (
    "Resource exhausted. Please try again later. Please refer to "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
)
#: Statuses Vertex itself answers, in Google's shape, before a Claude model sees the request.
FRONT_DOOR = frozenset({401, 403, 404, 429})


class VertexGoogleDialect(GeminiDialect):
    """Gemini's payloads and Google's error shape, with Vertex's service name and quota wording."""

    def presented_key(self, request: web.Request) -> str | None:
        return bearer(request)

    def error_payload(self, failure: Failure, meta: ResponseMeta) -> JsonObject:
        if failure.status == 429 and failure.message is None:
            failure = Failure(429, _RESOURCE_EXHAUSTED, code=failure.code)
        payload = super().error_payload(failure, meta)
        for detail in payload["error"].get("details", ()):
            if "metadata" in detail:
                detail["metadata"]["service"] = "aiplatform.googleapis.com"
        return payload


class VertexAnthropicDialect(AnthropicDialect):
    """Anthropic's payloads and errors, but Google's shape for what Vertex's front door refuses."""

    def presented_key(self, request: web.Request) -> str | None:
        return bearer(request)

    def error_payload(self, failure: Failure, meta: ResponseMeta) -> JsonObject:
        if failure.status in FRONT_DOOR:
            return VERTEX_GOOGLE.error_payload(failure, meta)
        return super().error_payload(failure, meta)


VERTEX_GOOGLE = VertexGoogleDialect()
VERTEX_ANTHROPIC = VertexAnthropicDialect()


def _model(request: web.Request) -> str:
    return request.match_info["model_action"].rpartition(":")[0]


def _instances(body: JsonObject) -> list[str]:
    instances = field(body, "instances")
    if not isinstance(instances, list) or not instances:
        raise Failure(400, "instances: at least one instance is required")
    return [str(field(item, "content") or "") for item in instances]


def predict_target(body: JsonObject, request: web.Request) -> tuple[str, str]:
    instances = field(body, "instances")
    last = instances[-1] if isinstance(instances, list) and instances else {}
    return _model(request), str(field(last, "content") or "")


async def respond_predict(ex: Exchange) -> web.StreamResponse:
    """``predict`` on an embedding model: one prediction per instance, with its token count."""
    dimensions = field(field(ex.body, "parameters"), "outputDimensionality")
    size = dimensions if isinstance(dimensions, int) and dimensions > 0 else ex.behaviour.embedding_dimensions
    predictions = [
        {
            "embeddings": {
                "values": embed(text, size),
                "statistics": {"token_count": len(tokenize(text)), "truncated": False},
            }
        }
        for text in _instances(ex.body)
    ]
    characters = sum(len(text) for text in _instances(ex.body))
    return await ex.send_json({"predictions": predictions, "metadata": {"billableCharacterCount": characters}})


def raw_predict_target(body: JsonObject, request: web.Request) -> tuple[str, str]:
    return _model(request), anthropic_dialect.messages_target(body, request)[1]


def _messages_body(ex: Exchange, *, stream: bool) -> JsonObject:
    """The Messages body a ``rawPredict`` call frames: its model from the URL, its version in the body."""
    body = dict(ex.body)
    if "model" in body:
        raise Failure(400, "model: Extra inputs are not permitted")
    version = body.pop("anthropic_version", None)
    if not isinstance(version, str) or not version:
        raise Failure(400, f"anthropic_version: Field required (for example '{ANTHROPIC_VERSION}')")
    return {**body, "model": _model(ex.request), "stream": stream}


async def _raw_predict(ex: Exchange) -> web.StreamResponse:
    return await anthropic_dialect.answer_messages(ex, _messages_body(ex, stream=False))


async def _stream_raw_predict(ex: Exchange) -> web.StreamResponse:
    return await anthropic_dialect.answer_messages(ex, _messages_body(ex, stream=True))


async def _generate(ex: Exchange) -> web.StreamResponse:
    return await gemini_dialect.respond_generate(ex, stream=False)


async def _stream_generate(ex: Exchange) -> web.StreamResponse:
    return await gemini_dialect.respond_generate(ex, stream=True)


Responder = Callable[[Exchange], Awaitable[web.StreamResponse]]
_METHODS: dict[tuple[str, str], tuple[GeminiDialect | AnthropicDialect, Target, Responder]] = {
    ("google", "generateContent"): (VERTEX_GOOGLE, gemini_dialect.generate_target, _generate),
    ("google", "streamGenerateContent"): (VERTEX_GOOGLE, gemini_dialect.generate_target, _stream_generate),
    ("google", "predict"): (VERTEX_GOOGLE, predict_target, respond_predict),
    ("anthropic", "rawPredict"): (VERTEX_ANTHROPIC, raw_predict_target, _raw_predict),
    ("anthropic", "streamRawPredict"): (VERTEX_ANTHROPIC, raw_predict_target, _stream_raw_predict),
}


async def dispatch(request: web.Request) -> web.StreamResponse:
    """``POST .../publishers/{publisher}/models/{model}:{method}``, for a token the simulator issued."""
    publisher = request.match_info["publisher"]
    method = request.match_info["model_action"].rpartition(":")[2]
    refusal = request.app[GOOGLE_AUTH].refusal(bearer(request))
    if refusal is not None:
        return VERTEX_GOOGLE.error_response(Failure(401, refusal), VERTEX_GOOGLE.new_request_id(), None)
    found = _METHODS.get((publisher, method))
    if found is None:
        name = f"publishers/{publisher}/models/{_model(request)}"
        failure = Failure(404, f"Publisher Model `{name}` does not support method {method!r} or was not found.")
        return VERTEX_GOOGLE.error_response(failure, VERTEX_GOOGLE.new_request_id(), None)
    dialect, target, respond = found
    return await serve_exchange(request, dialect, target, respond)
