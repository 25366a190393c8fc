"""Amazon Bedrock Runtime: ``Converse``, ``ConverseStream`` and ``InvokeModel`` (embeddings) under ``/model/{id}/``.

Every request is authenticated first, as AWS does it (:mod:`~modelyard_simulator.bedrock_auth`: SigV4 checked
with botocore's own code, or a Bedrock API key), then served by the shared pipeline. Errors are Bedrock's:
a ``{"message"}`` body with the exception named in ``x-amzn-ErrorType``. ConverseStream answers with
event-stream frames (:mod:`~modelyard_simulator.eventstream`); a scripted mid-stream failure is a
``modelStreamErrorException`` frame. Converse's own checks are applied where a gateway could get them wrong:
the conversation starts with a user turn, tool blocks need ``toolConfig``, replayed reasoning must be
unmodified, and Claude's thinking budget must fit under ``maxTokens``.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from modelyard_simulator.answer import Answer, Prompt, compose, force_call, new_id, sign
from modelyard_simulator.bedrock_auth import INVALID_TOKEN, authenticate
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.embedding import embed
from modelyard_simulator.engine import Dialect, Exchange, JsonObject, ResponseMeta, bearer, serve_exchange
from modelyard_simulator.errors import Failure
from modelyard_simulator.eventstream import CONTENT_TYPE, EventFrame
from modelyard_simulator.streaming import SseEvent
from modelyard_simulator.tokens import count_prompt_tokens, count_tokens, tokenize

STOP_REASONS = {
    "end": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool": "tool_use",
    "refusal": "content_filtered",
}
#: The exception Bedrock names for each status, when a failure does not name its own.
EXCEPTIONS = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    413: "ValidationException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
    529: "ServiceUnavailableException",
}
MESSAGES = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "InternalServerException": "The server encountered an internal error while processing the request.",
    "ModelTimeoutException": "The request took too long to process. Processing time exceeded the model timeout length.",
    "ResourceNotFoundException": "Could not resolve the foundation model from the provided model identifier.",
    "ValidationException": "The provided request is not valid.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
}
TITAN_DIMENSIONS = frozenset({256, 512, 1024})
COHERE_BATCH = 96
MIN_THINKING_BUDGET = 1024
_REFORMAT = "please reformat your input and try again."


class BedrockDialect(Dialect):
    """Bedrock conventions: ``x-amzn-RequestId``, ``x-amzn-ErrorType`` and ``{"message"}`` error bodies."""

    invalid_json_message = f"Malformed input request, {_REFORMAT}"

    def new_request_id(self) -> str:
        return new_id("", 8).lower() + "-" + new_id("", 4).lower() + "-" + new_id("", 12).lower()

    def presented_key(self, request: web.Request) -> str | None:
        """The Bedrock API key, or the access key id of a SigV4 signature (already verified)."""
        if (token := bearer(request)) is not None:
            return token
        credential = request.headers.get("Authorization", "").partition("Credential=")[2]
        return credential.partition("/")[0] or None

    def auth_failure(self, presented: str | None) -> Failure:  # noqa: ARG002
        return Failure(403, INVALID_TOKEN, code="UnrecognizedClientException")

    def error_payload(self, failure: Failure, meta: ResponseMeta) -> JsonObject:  # noqa: ARG002
        kind = exception_name(failure)
        return {"message": failure.message or MESSAGES.get(kind, kind)}

    def headers(self, meta: ResponseMeta) -> dict[str, str]:
        return {**super().headers(meta), "x-amzn-RequestId": meta.request_id}

    def error_response(self, failure: Failure, request_id: str, retry_after: float | None) -> web.Response:
        response = super().error_response(failure, request_id, retry_after)
        response.headers["x-amzn-ErrorType"] = (
            f"{exception_name(failure)}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        )
        return response

    def stream_error(self, meta: ResponseMeta) -> SseEvent:  # noqa: ARG002
        message = {"message": "The model failed while streaming its answer.", "originalStatusCode": 500}
        return EventFrame(orjson.dumps(message), event="modelStreamErrorException", exception=True)


BEDROCK = BedrockDialect()


def exception_name(failure: Failure) -> str:
    """The exception a failure is reported as: its own code when it names one, else Bedrock's for its status."""
    if failure.code and failure.code.endswith("Exception"):
        return failure.code
    return EXCEPTIONS.get(failure.status, "InternalServerException" if failure.status >= 500 else "ValidationException")


def model_id(request: web.Request) -> str:
    return unquote(request.match_info["model"])


def _texts(content: Any) -> list[str]:
    return (
        [b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
        if isinstance(content, list)
        else []
    )


def _messages(body: JsonObject) -> list[JsonObject]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _last_user(body: JsonObject) -> JsonObject:
    users = [m for m in _messages(body) if m.get("role") == "user"]
    return users[-1] if users else {}


def converse_target(body: JsonObject, request: web.Request) -> tuple[str, str]:
    return model_id(request), "\n".join(_texts(_last_user(body).get("content")))


def invoke_target(body: JsonObject, request: web.Request) -> tuple[str, str]:
    texts = body.get("texts")
    text = body.get("inputText") or (texts[-1] if isinstance(texts, list) and texts else "")
    return model_id(request), text if isinstance(text, str) else ""


def _validate(body: JsonObject) -> None:
    """Converse's checks, in its wording."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Failure(400, "The model returned the following errors: messages: field required")
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if roles[0] != "user":
        raise Failure(
            400,
            "A conversation must start with a user message."
            " Try again with a conversation that starts with a user message.",
        )
    if any(a == b for a, b in itertools.pairwise(roles)) or not set(roles) <= {"user", "assistant"}:
        raise Failure(
            400,
            "A conversation must alternate between user and assistant roles."
            " Make sure the conversation alternates between user and assistant roles and try again.",
        )
    blocks = [b for m in messages if isinstance(m, dict) for b in m.get("content") or [] if isinstance(b, dict)]
    if any("toolUse" in b or "toolResult" in b for b in blocks) and not body.get("toolConfig"):
        raise Failure(400, "The toolConfig field must be defined when using toolUse and toolResult content blocks.")
    for block in blocks:
        reasoning = block.get("reasoningContent")
        text = reasoning.get("reasoningText") if isinstance(reasoning, dict) else None
        if isinstance(text, dict) and text.get("signature") != sign(str(text.get("text"))):
            raise Failure(400, "The model returned the following errors: Invalid `signature` in `thinking` block")
        image = block.get("image")
        if isinstance(image, dict) and not (image.get("source") or {}).get("bytes"):
            raise Failure(400, "The image source must hold bytes.")
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        limit = (body.get("inferenceConfig") or {}).get("maxTokens")
        if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
            raise Failure(
                400,
                "The model returned the following errors:"
                " thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            )
        if not isinstance(limit, int) or budget >= limit:
            raise Failure(
                400,
                "The model returned the following errors: `max_tokens` must be greater than `thinking.budget_tokens`.",
            )


def _tool_specs(body: JsonObject) -> list[JsonObject]:
    tools = (body.get("toolConfig") or {}).get("tools") or []
    return [t["toolSpec"] for t in tools if isinstance(t, dict) and isinstance(t.get("toolSpec"), dict)]


def _forced(body: JsonObject, behaviour: Behaviour, user_text: str) -> Behaviour:
    """``toolChoice`` ``any`` or a named ``tool`` gets a call, as the real models' do."""
    choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
    named = choice["tool"].get("name") if isinstance(choice.get("tool"), dict) else None
    if "any" not in choice and named is None:
        return behaviour
    spec = next((s for s in _tool_specs(body) if named is None or s.get("name") == named), None)
    if spec is None:
        return behaviour
    return force_call(behaviour, str(spec.get("name")), (spec.get("inputSchema") or {}).get("json"), user_text)


def converse_prompt(body: JsonObject, model: str) -> Prompt:
    last = _last_user(body)
    content = last.get("content") or []
    texts = _texts(content)
    results = [b["toolResult"] for b in content if isinstance(b, dict) and isinstance(b.get("toolResult"), dict)]
    after_tool = not texts and bool(results) and _messages(body)[-1] is last
    text = "\n".join(texts) or "\n".join(t for r in results for t in _texts(r.get("content")))
    config = body.get("toolConfig") or {}
    names = tuple(str(spec["name"]) for spec in _tool_specs(body) if "name" in spec)
    inference = body.get("inferenceConfig") or {}
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    limit = inference.get("maxTokens")
    return Prompt(
        model=model,
        user_text=text,
        prompt_tokens=count_prompt_tokens([body.get("system"), body.get("messages"), config.get("tools")]),
        tools=names,
        after_tool_result=after_tool,
        stop=tuple(s for s in inference.get("stopSequences") or [] if isinstance(s, str)),
        max_tokens=limit if isinstance(limit, int) else None,
        thinking=isinstance(thinking, dict) and thinking.get("type") == "enabled",
    )


def _usage(answer: Answer) -> JsonObject:
    output = answer.output_tokens + answer.thinking_tokens
    return {
        "inputTokens": answer.prompt_tokens,
        "outputTokens": output,
        "totalTokens": answer.prompt_tokens + output,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokens": 0,
    }


def _tool_use_id(answer: Answer) -> str:
    return f"tooluse_{answer.tool.id_suffix}" if answer.tool else ""


def _content(answer: Answer) -> list[JsonObject]:
    blocks: list[JsonObject] = []
    if answer.thinking is not None:
        reasoning = {"text": answer.thinking, "signature": answer.thinking_signature}
        blocks.append({"reasoningContent": {"reasoningText": reasoning}})
    if answer.text is not None and (answer.text or answer.tool is None):
        blocks.append({"text": answer.text})
    if answer.tool is not None:
        blocks.append(
            {"toolUse": {"toolUseId": _tool_use_id(answer), "name": answer.tool.name, "input": answer.tool.input}}
        )
    return blocks


def converse_answer(answer: Answer) -> JsonObject:
    return {
        "output": {"message": {"role": "assistant", "content": _content(answer)}},
        "stopReason": STOP_REASONS[answer.finish],
        "usage": _usage(answer),
        "metrics": {"latencyMs": 1},
    }


def _event(kind: str, payload: JsonObject, *, content: bool = False) -> EventFrame:
    return EventFrame(orjson.dumps(payload), event=kind, content=content)


def _block_events(index: int, block: JsonObject, answer: Answer) -> list[EventFrame]:
    events: list[EventFrame] = []
    deltas: list[JsonObject]
    if "reasoningContent" in block:
        reasoning = block["reasoningContent"]["reasoningText"]
        deltas = [{"reasoningContent": {"text": t}} for t in tokenize(reasoning["text"])]
        deltas.append({"reasoningContent": {"signature": reasoning["signature"]}})
    elif "text" in block:
        deltas = [{"text": t} for t in answer.text_tokens]
    else:
        use = block["toolUse"]
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        events.append(_event("contentBlockStart", {"start": start, "contentBlockIndex": index}))
        arguments = answer.tool.arguments if answer.tool else "{}"
        deltas = [{"toolUse": {"input": p}} for p in tokenize(arguments)]
    events.extend(
        _event(
            "contentBlockDelta",
            {"delta": d, "contentBlockIndex": index},
            content="signature" not in d.get("reasoningContent", {}),
        )
        for d in deltas
    )
    events.append(_event("contentBlockStop", {"contentBlockIndex": index}))
    return events


def converse_events(answer: Answer) -> list[EventFrame]:
    """ConverseStream's frames for an answer, in the documented order."""
    events = [_event("messageStart", {"role": "assistant"})]
    for index, block in enumerate(_content(answer)):
        events.extend(_block_events(index, block, answer))
    events.append(_event("messageStop", {"stopReason": STOP_REASONS[answer.finish]}))
    events.append(_event("metadata", {"usage": _usage(answer), "metrics": {"latencyMs": 1}}))
    return events


async def respond_converse(ex: Exchange, *, stream: bool) -> web.StreamResponse:
    _validate(ex.body)
    prompt = converse_prompt(ex.body, model_id(ex.request))
    answer = compose(prompt, _forced(ex.body, ex.behaviour, prompt.user_text))
    if stream:
        return await ex.send_events(converse_events(answer), content_type=CONTENT_TYPE)
    return await ex.send_json(converse_answer(answer))


async def respond_invoke(ex: Exchange) -> web.StreamResponse:
    """Titan Text Embeddings (one text) and Cohere Embed (a batch); other models' bodies are not simulated."""
    model, body = model_id(ex.request), ex.body
    if "titan-embed" in model:
        text = body.get("inputText")
        if not isinstance(text, str) or not text:
            raise Failure(
                400,
                f"Malformed input request: #: required key [inputText] not found, {_REFORMAT}",
            )
        dimensions = body.get("dimensions", 1024)
        if dimensions not in TITAN_DIMENSIONS:
            raise Failure(
                400,
                f"Malformed input request: #/dimensions: {dimensions} is not a valid enum value, {_REFORMAT}",
            )
        return await ex.send_json({"embedding": embed(text, dimensions), "inputTextTokenCount": count_tokens(text)})
    if "cohere.embed" in model:
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or len(texts) > COHERE_BATCH or "input_type" not in body:
            raise Failure(
                400,
                f"Malformed input request: texts (1 to 96) and input_type are required, {_REFORMAT}",
            )
        vectors = [embed(str(t), 1024) for t in texts]
        return await ex.send_json(
            {"embeddings": vectors, "id": new_id("", 32), "response_type": "embeddings_floats", "texts": texts}
        )
    raise Failure(400, f"The simulator serves InvokeModel for embedding models only, not {model}.")


async def _serve(request: web.Request, target: Any, respond: Any) -> web.StreamResponse:
    failure = authenticate(request, await request.read())
    if failure is not None:
        return BEDROCK.error_response(failure, BEDROCK.new_request_id(), None)
    return await serve_exchange(request, BEDROCK, target, respond)


async def converse(request: web.Request) -> web.StreamResponse:
    async def respond(ex: Exchange) -> web.StreamResponse:
        return await respond_converse(ex, stream=False)

    return await _serve(request, converse_target, respond)


async def converse_stream(request: web.Request) -> web.StreamResponse:
    async def respond(ex: Exchange) -> web.StreamResponse:
        return await respond_converse(ex, stream=True)

    return await _serve(request, converse_target, respond)


async def invoke(request: web.Request) -> web.StreamResponse:
    return await _serve(request, invoke_target, respond_invoke)
