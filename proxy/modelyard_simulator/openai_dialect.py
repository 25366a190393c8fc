"""OpenAI wire format: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

Azure reuses these payloads through :mod:`modelyard_simulator.azure_dialect`, which only
changes credentials, headers and error wording.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from modelyard_simulator.answer import Answer, Prompt, compose, new_id
from modelyard_simulator.embedding import embed, to_base64
from modelyard_simulator.engine import (
    SCENARIOS,
    Dialect,
    Exchange,
    JsonObject,
    ResponseMeta,
    bearer,
    mask_key,
    no_target,
    serve_exchange,
)
from modelyard_simulator.errors import Failure, error_kind, format_seconds
from modelyard_simulator.openai_types import CHAT_FIELDS, EMBEDDING_FIELDS, check_types
from modelyard_simulator.streaming import SseEvent
from modelyard_simulator.tokens import count_prompt_tokens, count_tokens, tokenize

FINISH_REASONS = {
    "end": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool": "tool_calls",
    "refusal": "content_filter",
}
SYSTEM_FINGERPRINT = "fp_modelyard_sim"
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


class OpenAIDialect(Dialect):
    """OpenAI platform conventions: Bearer keys, ``x-request-id`` and ``x-ratelimit-*`` headers."""

    invalid_json_message = (
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
        "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
        "valid JSON.)"
    )
    content_filter_annotations = False

    def new_request_id(self) -> str:
        return new_id("req_", 32)

    def presented_key(self, request: web.Request) -> str | None:
        return bearer(request)

    def auth_failure(self, presented: str | None) -> Failure:
        if not presented:
            return Failure(401, _NO_KEY, code=None)
        return Failure(
            401,
            f"Incorrect API key provided: {mask_key(presented)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def error_payload(self, failure: Failure, meta: ResponseMeta) -> JsonObject:
        kind = error_kind(failure.status)
        message = failure.message or kind.openai_message
        if failure.message is None and failure.status == 429 and meta.retry_after is not None:
            message = f"Rate limit reached for requests. Please try again in {format_seconds(meta.retry_after)}s."
        return {
            "error": {
                "message": message,
                "type": kind.openai_type,
                "param": failure.param,
                "code": failure.code or kind.openai_code,
            }
        }

    def headers(self, meta: ResponseMeta) -> dict[str, str]:
        limited = meta.status == 429
        reset = f"{format_seconds(meta.retry_after)}s" if limited and meta.retry_after is not None else "6ms"
        return {
            **super().headers(meta),
            "x-request-id": meta.request_id,
            "openai-version": "2020-10-01",
            "openai-processing-ms": str(meta.elapsed_ms),
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "0" if limited else "9999",
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-limit-tokens": "10000000",
            "x-ratelimit-remaining-tokens": "0" if limited else "9999000",
            "x-ratelimit-reset-tokens": reset,
        }


OPENAI = OpenAIDialect()


def content_text(content: object) -> str:
    """Text of an OpenAI message ``content``: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def request_model(body: JsonObject, request: web.Request) -> str:
    """The body's model, or the Azure deployment when the body names none."""
    model = body.get("model")
    return model if isinstance(model, str) and model else request.match_info.get("deployment", "")


def _messages(body: JsonObject) -> list[JsonObject]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _last_user_text(body: JsonObject) -> str:
    users = [m for m in _messages(body) if m.get("role") == "user"]
    return content_text(users[-1].get("content")) if users else ""


def chat_target(body: JsonObject, request: web.Request) -> tuple[str, str]:
    return request_model(body, request), _last_user_text(body)


def chat_prompt(body: JsonObject, model: str) -> Prompt:
    """Validate a chat request the way OpenAI does and reduce it to a :class:`Prompt`."""
    if not model:
        raise Failure(400, "you must provide a model parameter", param="model")
    check_types(body, CHAT_FIELDS)
    messages = _messages(body)
    if not messages:
        raise Failure(
            400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    turns = [m for m in messages if m.get("role") in ("user", "tool", "function")]
    last = turns[-1] if turns else {}
    tools = body.get("tools") or []
    functions = [t.get("function") for t in tools if isinstance(t, dict)]
    names = tuple(f["name"] for f in functions if isinstance(f, dict) and isinstance(f.get("name"), str))
    response_format = body.get("response_format") or {}
    format_type = response_format.get("type")
    spec = response_format.get("json_schema") if format_type == "json_schema" else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    stop = body.get("stop")
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    return Prompt(
        model=model,
        user_text=content_text(last.get("content")),
        prompt_tokens=count_prompt_tokens([messages, tools]),
        tools=() if body.get("tool_choice") == "none" else names,
        after_tool_result=last.get("role") in ("tool", "function"),
        json_mode=format_type in ("json_object", "json_schema"),
        json_schema=schema if isinstance(schema, dict) else None,
        stop=(stop,) if isinstance(stop, str) else tuple(s for s in stop or [] if isinstance(s, str)),
        max_tokens=limit if isinstance(limit, int) else None,
        thinking=body.get("reasoning_effort") not in (None, "none"),
    )


def usage(answer: Answer) -> JsonObject:
    completion = answer.output_tokens + answer.thinking_tokens
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": answer.thinking_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_calls(answer: Answer) -> list[JsonObject]:
    if answer.tool is None:
        return []
    function = {"name": answer.tool.name, "arguments": answer.tool.arguments}
    return [{"id": f"call_{answer.tool.id_suffix}", "type": "function", "function": function}]


_SAFE = {"filtered": False, "severity": "safe"}
_FILTERS = dict.fromkeys(("hate", "self_harm", "sexual", "violence"), _SAFE)


def completion(ex: Exchange, answer: Answer, model: str) -> JsonObject:
    message: JsonObject = {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}
    if answer.tool is not None:
        message["tool_calls"] = _tool_calls(answer)
    choice: JsonObject = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": FINISH_REASONS[answer.finish],
    }
    payload: JsonObject = {
        "id": new_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage(answer),
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "service_tier": "default",
    }
    if _annotates(ex):
        choice["content_filter_results"] = _FILTERS
        payload["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _FILTERS}]
    return payload


def completion_chunks(ex: Exchange, answer: Answer, model: str) -> list[SseEvent]:
    """The chunk sequence of a streamed completion, ``[DONE]`` included."""
    options = ex.body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    base: JsonObject = {
        "id": new_id("chatcmpl-", 29),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "service_tier": "default",
    }

    def chunk(delta: JsonObject, finish: str | None = None, *, content: bool = False) -> SseEvent:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        payload: JsonObject = {**base, "choices": [choice]}
        if include_usage:
            payload["usage"] = None
        return SseEvent(orjson.dumps(payload), content=content)

    events: list[SseEvent] = []
    if _annotates(ex):
        filters = [{"prompt_index": 0, "content_filter_results": _FILTERS}]
        empty = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
        events.append(SseEvent(orjson.dumps({**empty, "prompt_filter_results": filters})))
    events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
    events.extend(chunk({"content": token}, content=True) for token in answer.text_tokens)
    for call in _tool_calls(answer):
        head = {"index": 0, "id": call["id"], "type": "function"}
        events.append(chunk({"tool_calls": [{**head, "function": {**call["function"], "arguments": ""}}]}))
        events.extend(
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}, content=True)
            for part in tokenize(call["function"]["arguments"])
        )
    events.append(chunk({}, FINISH_REASONS[answer.finish]))
    if include_usage:
        events.append(SseEvent(orjson.dumps({**base, "choices": [], "usage": usage(answer)})))
    events.append(SseEvent(b"[DONE]"))
    return events


def _annotates(ex: Exchange) -> bool:
    return isinstance(ex.dialect, OpenAIDialect) and ex.dialect.content_filter_annotations


async def respond_chat(ex: Exchange) -> web.StreamResponse:
    model = request_model(ex.body, ex.request)
    answer = compose(chat_prompt(ex.body, model), ex.behaviour)
    if ex.body.get("stream") is True:
        return await ex.send_events(completion_chunks(ex, answer, model))
    return await ex.send_json(completion(ex, answer, model))


def _embedding_inputs(body: JsonObject) -> list[str | list[int]]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(i, int) for i in raw):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(i, str | list) for i in raw):
        return list(raw)
    raise Failure(400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter")


def embeddings_target(body: JsonObject, request: web.Request) -> tuple[str, str]:
    raw = body.get("input")
    strings = [raw] if isinstance(raw, str) else [i for i in raw if isinstance(i, str)] if isinstance(raw, list) else []
    return request_model(body, request), strings[-1] if strings else ""


async def respond_embeddings(ex: Exchange) -> web.StreamResponse:
    model = request_model(ex.body, ex.request)
    if not model:
        raise Failure(400, "you must provide a model parameter", param="model")
    check_types(ex.body, EMBEDDING_FIELDS)
    inputs = _embedding_inputs(ex.body)
    encoding = ex.body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise Failure(400, f"Invalid value for 'encoding_format': {encoding!r}.", param="encoding_format")
    dimensions = ex.body.get("dimensions")
    size = dimensions if isinstance(dimensions, int) and dimensions > 0 else ex.behaviour.embedding_dimensions
    data: list[JsonObject] = []
    tokens = 0
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(str(t) for t in item)
        tokens += count_tokens(item) if isinstance(item, str) else len(item)
        vector = embed(text, size)
        value: Any = to_base64(vector) if encoding == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    return await ex.send_json(
        {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    )


async def respond_models(ex: Exchange) -> web.StreamResponse:
    ids = ex.request.app[SCENARIOS].model_ids()
    data = [{"id": i, "object": "model", "created": 1700000000, "owned_by": "modelyard-simulator"} for i in ids]
    return await ex.send_json({"object": "list", "data": data})


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, OPENAI, chat_target, respond_chat)


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, OPENAI, embeddings_target, respond_embeddings)


async def models(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, OPENAI, no_target, respond_models)
