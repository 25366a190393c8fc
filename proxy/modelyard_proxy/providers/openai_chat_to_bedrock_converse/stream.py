"""ConverseStream's ``application/vnd.amazon.eventstream`` body → OpenAI ``chat.completion.chunk`` frames.

The body is binary frames (prelude, headers, payload, CRCs), not SSE: this translator takes the relay's raw
reads itself (:meth:`translate`) and decodes them with botocore's own parser, which checks both CRCs, so a
corrupted frame is a malformed answer rather than a misread one. Events: ``messageStart``,
``contentBlockStart`` (tool calls), ``contentBlockDelta`` (text, tool input, reasoning), ``contentBlockStop``,
``messageStop`` (the stop reason) and ``metadata`` (usage). The answer is complete only once both of the
last two arrived; exception frames are in-band failures classified like Bedrock's HTTP errors.
"""

from __future__ import annotations

import orjson
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError

from modelyard_proxy.base.sse import SSEDecoder, SSEEvent
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, JSONObject, StreamTranslator, UpstreamStreamError
from modelyard_proxy.providers.chunks import ChunkWriter
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.thinking import StreamedThinking
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.errors import stream_exception
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.reasoning import NAMESPACE
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.response import finish_reason, openai_usage


class ConverseStream(StreamTranslator):
    """One ConverseStream answer, translated frame by frame."""

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._frames = EventStreamBuffer()
        self._writer = ChunkWriter(ctx)
        self._tools: dict[int, int] = {}  # Converse block index -> OpenAI tool call index
        self._no_arguments: set[int] = set()  # tool blocks that have not streamed any input yet
        self._thinking = StreamedThinking(NAMESPACE)
        self._reasoning: set[int] = set()  # blocks whose reasoning has started
        self._max_calls = None if ctx.parallel_tool_calls else 1
        self._stop_reason: str | None = None
        self._stopped = False
        self._done = False
        self._error: UpstreamStreamError | None = None

    def translate(self, decoder: SSEDecoder, chunk: bytes) -> bytes:  # noqa: ARG002
        """Frames completed by one read of the upstream body; the SSE decoder is not used."""
        self._frames.add_data(chunk)
        try:
            return b"".join([self._message(message) for message in self._frames])
        except ParserError as exc:
            raise MalformedAnswer("not an AWS event stream") from exc

    def close(self, decoder: SSEDecoder) -> bytes:  # noqa: ARG002
        return self.finish()

    def feed(self, event: SSEEvent) -> bytes:  # noqa: ARG002
        """Converse streams carry no SSE events; an SSE body here is not Bedrock's answer."""
        raise MalformedAnswer("an SSE event where an AWS event stream was expected")

    def finish(self) -> bytes:
        if self._error is not None:
            raise self._error
        if not self._done:
            where = f"upstream bedrock ({self._ctx.credential.id})"
            missing = "metadata" if self._stopped else "messageStop"
            raise UpstreamStreamError(
                502, f"{where} stream ended before {missing}", type="upstream_error", code="upstream_error"
            )
        return b""

    def _message(self, message: EventStreamMessage) -> bytes:
        if self._done:
            return b""
        headers = message.to_response_dict()["headers"]  # typed, unlike ``message.headers`` in botocore's stubs
        kind = headers.get(":message-type")
        if kind == "exception":
            raise self._fail(
                stream_exception(str(headers.get(":exception-type")), message.payload, self._ctx.credential)
            )
        if kind == "error":
            code = str(headers.get(":error-code") or "InternalServerException")
            body = orjson.dumps({"message": str(headers.get(":error-message") or "")})
            raise self._fail(stream_exception(code, body, self._ctx.credential))
        return self._event(str(headers.get(":event-type")), _payload(message.payload))

    def _fail(self, error: UpstreamStreamError) -> UpstreamStreamError:
        """Remember an in-band failure so ``finish`` reports it too, if the relay still calls it."""
        self._error = error
        return error

    def _event(self, kind: str, data: JSONObject) -> bytes:
        at = data.get("contentBlockIndex", -1)
        if kind == "contentBlockDelta":
            delta = data.get("delta")
            return self._delta(at, delta) if isinstance(delta, dict) else b""
        if kind == "contentBlockStart":
            start = data.get("start")
            tool = start.get("toolUse") if isinstance(start, dict) else None
            return self._tool_start(at, tool) if isinstance(tool, dict) else b""
        if kind == "contentBlockStop":
            return self._stop_block(at)
        if kind == "messageStop":
            self._stopped = True
            reason = data.get("stopReason")
            self._stop_reason = reason if isinstance(reason, str) else None
            return b""
        if kind == "metadata":
            self.usage = openai_usage(data.get("usage"))
            if not self._stopped:
                return b""
            self._done = True
            return self._writer.finish(finish_reason(self._stop_reason), self.usage)
        return b""  # messageStart, and events added later

    def _tool_start(self, at: int, tool: JSONObject) -> bytes:
        if self._max_calls is not None and len(self._tools) >= self._max_calls:
            return b""  # parallel_tool_calls: false keeps the first call
        index = self._tools[at] = len(self._tools)
        self._no_arguments.add(at)
        function = {"name": tool.get("name"), "arguments": ""}
        call = {"index": index, "id": tool.get("toolUseId"), "type": "function", "function": function}
        return self._writer.delta({"tool_calls": [call]})

    def _delta(self, at: int, delta: JSONObject) -> bytes:
        if isinstance(text := delta.get("text"), str):
            return self._writer.delta({"content": text}) if text else b""
        if isinstance(tool := delta.get("toolUse"), dict):
            fragment = tool.get("input")
            if not isinstance(fragment, str) or not fragment or at not in self._tools:
                return b""
            self._no_arguments.discard(at)
            return self._arguments(at, fragment)
        reasoning = delta.get("reasoningContent")
        return self._reasoning_delta(at, reasoning) if isinstance(reasoning, dict) else b""

    def _reasoning_delta(self, at: int, reasoning: JSONObject) -> bytes:
        if isinstance(redacted := reasoning.get("redactedContent"), str):
            self._thinking.start(at, {"type": "redacted_thinking", "data": redacted})
            self._reasoning.add(at)
            return b""
        if at not in self._reasoning:
            self._thinking.start(at, {"type": "thinking", "thinking": "", "signature": ""})
            self._reasoning.add(at)
        if isinstance(signature := reasoning.get("signature"), str):
            self._thinking.signature(at, signature)
        text = reasoning.get("text")
        if not isinstance(text, str) or not text:
            return b""
        self._thinking.thinking(at, text)
        return self._writer.delta({"reasoning_content": text})

    def _stop_block(self, at: int) -> bytes:
        if at in self._no_arguments:
            self._no_arguments.discard(at)
            return self._arguments(at, "{}")  # OpenAI clients parse arguments; "" is not JSON
        signed = self._thinking.stop(at)
        return self._writer.delta(signed) if signed is not None else b""

    def _arguments(self, at: int, fragment: str) -> bytes:
        return self._writer.delta({"tool_calls": [{"index": self._tools[at], "function": {"arguments": fragment}}]})


def _payload(raw: bytes) -> JSONObject:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise MalformedAnswer("not a Converse stream event")
    return data
