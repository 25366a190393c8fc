"""Gemini (Generative Language API) wire format under ``/v1beta/models/...`` and ``/v1/models/...``.

aiohttp cannot route ``{model}:generateContent`` directly, so one route captures
``{model_action}`` and :func:`dispatch` splits on the last ``:``. Streams use CRLF event
separators like the real service and carry no sentinel; the last chunk holds
``finishReason`` and the final ``usageMetadata``. Field names are accepted in lowerCamel
or snake_case, as Google's JSON mapping does.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from modelyard_simulator.answer import Answer, Prompt, compose, new_id
from modelyard_simulator.embedding import embed
from modelyard_simulator.engine import (
    SCENARIOS,
    Dialect,
    Exchange,
    JsonObject,
    ResponseMeta,
    Target,
    no_target,
    serve_exchange,
)
from modelyard_simulator.errors import Failure, error_kind, format_seconds
from modelyard_simulator.logprobs import ranked, token_logprob
from modelyard_simulator.streaming import SseEvent
from modelyard_simulator.tokens import count_prompt_tokens, tokenize

MAX_CANDIDATES = 8
MAX_TOP_LOGPROBS = 20
FINISH_REASONS = {"end": "STOP", "stop_sequence": "STOP", "length": "MAX_TOKENS", "tool": "STOP", "refusal": "SAFETY"}
_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


class GeminiDialect(Dialect):
    """Google conventions: ``x-goog-api-key`` or ``?key=``, ``google.rpc.Status`` error bodies."""

    invalid_json_message = "Invalid JSON payload received."
    stream_failure_status = 503

    def new_request_id(self) -> str:
        return new_id("", 22)

    def presented_key(self, request: web.Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    def auth_failure(self, presented: str | None) -> Failure:
        if not presented:
            return Failure(403, _UNREGISTERED, code="SERVICE_DISABLED")
        return Failure(400, "API key not valid. Please pass a valid API key.", code="API_KEY_INVALID")

    def error_payload(self, failure: Failure, meta: ResponseMeta) -> JsonObject:
        kind = error_kind(failure.status)
        details: list[JsonObject] = []
        if failure.code is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": failure.code,
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        if meta.retry_after is not None and failure.status == 429:
            retry_delay = f"{format_seconds(meta.retry_after)}s"
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
        error: JsonObject = {
            "code": failure.status,
            "message": failure.message or kind.google_message,
            "status": kind.google_status,
        }
        if details:
            error["details"] = details
        return {"error": error}


GEMINI = GeminiDialect()


def field(obj: object, camel: str) -> Any:
    """``obj[camel]``, or its snake_case spelling."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).lower())


def _split(request: web.Request) -> tuple[str, str]:
    model, _, action = request.match_info["model_action"].rpartition(":")
    return model.removeprefix("models/"), action


def _parts_text(content: object) -> str:
    parts = field(content, "parts") or []
    return "\n".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    )


def _user_contents(body: JsonObject) -> list[JsonObject]:
    contents = field(body, "contents")
    if not isinstance(contents, list):
        return []
    return [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]


def generate_target(body: JsonObject, request: web.Request) -> tuple[str, str]:
    users = _user_contents(body)
    return _split(request)[0], _parts_text(users[-1]) if users else ""


def _embed_texts(body: JsonObject) -> list[tuple[str, int | None]]:
    """(text, outputDimensionality) per requested embedding, for both embed endpoints."""
    requests = field(body, "requests")
    items = requests if isinstance(requests, list) else [body]
    return [(_parts_text(field(item, "content")), field(item, "outputDimensionality")) for item in items]


def embed_target(body: JsonObject, request: web.Request) -> tuple[str, str]:
    texts = _embed_texts(body)
    return _split(request)[0], texts[-1][0] if texts else ""


@dataclasses.dataclass(frozen=True, slots=True)
class Rendering:
    """How the answer is written out: thought summaries, candidates, and log probabilities."""

    show_thoughts: bool = False
    candidates: int = 1
    #: None without ``responseLogprobs``; else how many top candidates each step lists (``logprobs``).
    top_logprobs: int | None = None


def _integer(config: object, name: str, low: int, high: int) -> int | None:
    value = field(config, name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Failure(400, f"* GenerationConfig.{name}: must be an integer between {low} and {high}\n")
    return value


def rendering(config: object, thinking: object) -> Rendering:
    """``candidateCount``, ``responseLogprobs`` and ``logprobs``, refused outside the API's ranges."""
    wants_logprobs = field(config, "responseLogprobs")
    if not isinstance(wants_logprobs, bool | None):
        raise Failure(400, "* GenerationConfig.responseLogprobs: must be a boolean\n")
    top = _integer(config, "logprobs", 0, MAX_TOP_LOGPROBS)
    if top is not None and not wants_logprobs:
        raise Failure(400, "logprobs is only valid when responseLogprobs is true.")
    return Rendering(
        show_thoughts=bool(field(thinking, "includeThoughts")),
        candidates=_integer(config, "candidateCount", 1, MAX_CANDIDATES) or 1,
        top_logprobs=(top or 0) if wants_logprobs else None,
    )


def generate_prompt(body: JsonObject, model: str) -> tuple[Prompt, Rendering]:
    """The prompt, and how to render the answer to it."""
    contents = field(body, "contents")
    if not isinstance(contents, list) or not contents:
        raise Failure(400, "* GenerateContentRequest.contents: contents is not specified\n")
    users = _user_contents(body)
    last = users[-1] if users else {}
    text = _parts_text(last)
    responses = [field(p, "functionResponse") for p in field(last, "parts") or []]
    responses = [r for r in responses if isinstance(r, dict)]
    after_tool = not text and bool(responses) and contents[-1] is last
    if after_tool:
        text = "\n".join(orjson.dumps(field(r, "response")).decode() for r in responses)
    tools = field(body, "tools") or []
    names = tuple(
        str(d["name"])
        for t in tools
        for d in field(t, "functionDeclarations") or []
        if isinstance(d, dict) and "name" in d
    )
    mode = field(field(field(body, "toolConfig"), "functionCallingConfig"), "mode")
    config = field(body, "generationConfig") or {}
    schema = field(config, "responseJsonSchema") or field(config, "responseSchema")
    thinking = field(config, "thinkingConfig")
    budget = field(thinking, "thinkingBudget")
    limit = field(config, "maxOutputTokens")
    prompt = Prompt(
        model=model,
        user_text=text,
        prompt_tokens=count_prompt_tokens([field(body, "systemInstruction"), contents, tools]),
        tools=() if mode == "NONE" else names,
        after_tool_result=after_tool,
        json_mode=field(config, "responseMimeType") == "application/json",
        json_schema=schema if isinstance(schema, dict) else None,
        stop=tuple(s for s in field(config, "stopSequences") or [] if isinstance(s, str)),
        max_tokens=limit if isinstance(limit, int) else None,
        thinking=isinstance(thinking, dict) and budget != 0,
    )
    return prompt, rendering(config, thinking)


def _usage(answer: Answer, candidates: int, *, final: bool) -> JsonObject:
    """Every candidate's tokens count (Gemini bills them all); thinking is shared."""
    if not final:
        return {"promptTokenCount": answer.prompt_tokens, "totalTokenCount": answer.prompt_tokens}
    output = answer.output_tokens * candidates
    usage: JsonObject = {
        "promptTokenCount": answer.prompt_tokens,
        "candidatesTokenCount": output,
        "totalTokenCount": answer.prompt_tokens + output + answer.thinking_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.prompt_tokens}],
    }
    if answer.thinking_tokens:
        usage["thoughtsTokenCount"] = answer.thinking_tokens
    return usage


def _part_groups(answer: Answer, show_thoughts: bool, *, streamed: bool) -> list[list[JsonObject]]:
    """Parts per response: one group when not streaming, one per token when streaming."""
    groups: list[list[JsonObject]] = []
    if answer.thinking is not None and show_thoughts:
        thoughts = tokenize(answer.thinking) if streamed else [answer.thinking]
        groups.extend([{"text": t, "thought": True}] for t in thoughts)
    if answer.text is not None and (answer.text or answer.tool is None):
        texts = (answer.text_tokens or [answer.text]) if streamed else [answer.text]
        groups.extend([{"text": t}] for t in texts)
    if answer.tool is not None:
        groups.append([{"functionCall": {"name": answer.tool.name, "args": answer.tool.input}}])
    if not streamed:
        return [[part for group in groups for part in group]]
    return groups or [[{"text": ""}]]


def _logprobs(parts: list[JsonObject], top: int) -> JsonObject:
    """``logprobsResult`` and ``avgLogprobs`` for the answer text these parts carry (thoughts excluded)."""
    tokens = [t for p in parts if isinstance(p.get("text"), str) and not p.get("thought") for t in tokenize(p["text"])]
    probabilities = [token_logprob(t) for t in tokens]
    chosen = [{"token": t, "logProbability": p} for t, p in zip(tokens, probabilities, strict=True)]
    total = sum(probabilities)
    result: JsonObject = {"chosenCandidates": chosen, "logProbabilitySum": total}
    if top:
        steps = [[{"token": token, "logProbability": p} for token, p in ranked(t, top)] for t in tokens]
        result["topCandidates"] = [{"candidates": step} for step in steps]
    return {"logprobsResult": result, "avgLogprobs": total / len(tokens) if tokens else 0.0}


def _response(
    answer: Answer, model: str, response_id: str, parts: list[JsonObject], look: Rendering, *, final: bool
) -> JsonObject:
    candidates: list[JsonObject] = []
    for index in range(look.candidates):
        candidate: JsonObject = {"content": {"role": "model", "parts": parts}, "index": index}
        if final:
            candidate["finishReason"] = FINISH_REASONS[answer.finish]
        if look.top_logprobs is not None:
            candidate.update(_logprobs(parts, look.top_logprobs))
        candidates.append(candidate)
    return {
        "candidates": candidates,
        "usageMetadata": _usage(answer, look.candidates, final=final),
        "modelVersion": model,
        "responseId": response_id,
    }


async def respond_generate(ex: Exchange, *, stream: bool) -> web.StreamResponse:
    model = _split(ex.request)[0]
    prompt, look = generate_prompt(ex.body, model)
    answer = compose(prompt, ex.behaviour)
    response_id = new_id("", 22)
    groups = _part_groups(answer, look.show_thoughts, streamed=stream)
    if not stream:
        return await ex.send_json(_response(answer, model, response_id, groups[0], look, final=True))
    last = len(groups) - 1
    events = [
        SseEvent(orjson.dumps(_response(answer, model, response_id, g, look, final=i == last)), content=True)
        for i, g in enumerate(groups)
    ]
    return await ex.send_events(events, newline=b"\r\n")


async def respond_embed(ex: Exchange, *, batch: bool) -> web.StreamResponse:
    if batch and not isinstance(field(ex.body, "requests"), list):
        raise Failure(400, "* BatchEmbedContentsRequest.requests: requests is not specified\n")
    vectors = [
        {"values": embed(text, dims if isinstance(dims, int) and dims > 0 else ex.behaviour.embedding_dimensions)}
        for text, dims in _embed_texts(ex.body)
    ]
    return await ex.send_json({"embeddings": vectors} if batch else {"embedding": vectors[0]})


async def respond_count_tokens(ex: Exchange) -> web.StreamResponse:
    body = field(ex.body, "generateContentRequest") or ex.body
    tokens = count_prompt_tokens([field(body, "systemInstruction"), field(body, "contents"), field(body, "tools")])
    return await ex.send_json(
        {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
    )


async def respond_not_found(ex: Exchange) -> web.StreamResponse:
    raise Failure(404, f"The requested action is not supported: {ex.request.match_info['model_action']}")


Responder = Callable[[Exchange], Awaitable[web.StreamResponse]]


async def _generate(ex: Exchange) -> web.StreamResponse:
    return await respond_generate(ex, stream=False)


async def _stream_generate(ex: Exchange) -> web.StreamResponse:
    return await respond_generate(ex, stream=True)


async def _embed(ex: Exchange) -> web.StreamResponse:
    return await respond_embed(ex, batch=False)


async def _batch_embed(ex: Exchange) -> web.StreamResponse:
    return await respond_embed(ex, batch=True)


_ACTIONS: dict[str, tuple[Target, Responder]] = {
    "generateContent": (generate_target, _generate),
    "streamGenerateContent": (generate_target, _stream_generate),
    "embedContent": (embed_target, _embed),
    "batchEmbedContents": (embed_target, _batch_embed),
    "countTokens": (generate_target, respond_count_tokens),
}


async def dispatch(request: web.Request) -> web.StreamResponse:
    """``POST /v1beta/models/{model}:{action}``."""
    target, respond = _ACTIONS.get(_split(request)[1], (generate_target, respond_not_found))
    return await serve_exchange(request, GEMINI, target, respond)


async def _list(ex: Exchange) -> web.StreamResponse:
    methods = ["generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"]
    models = [
        {
            "name": f"models/{i}",
            "version": "001",
            "displayName": i,
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": methods,
        }
        for i in ex.request.app[SCENARIOS].model_ids()
    ]
    return await ex.send_json({"models": models})


async def list_models(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, GEMINI, no_target, _list)
