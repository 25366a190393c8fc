"""OpenAI and the OpenAI-compatible vendors: the dialect is already the client's, so bytes pass through.

A request is re-serialised only when the upstream model differs from the body's or a vendor quirk
(``quirks``) applies; an answer is parsed only when it must be: to read usage, to respell a vendor's
finish reason, or to spot an in-band error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import DONE_FRAME, SSEDecoder, SSEEvent, frame
from modelyard_proxy.failures.classify import CLIENT_FAULT, classify, scrub
from modelyard_proxy.providers.base import (
    CallContext,
    Inbound,
    JSONObject,
    ProviderAdapter,
    StreamTranslator,
    UpstreamCall,
    UpstreamStreamError,
)
from modelyard_proxy.providers.openai_chat_to_openai_chat.quirks import Quirks, rewrite_chat, rewrite_embeddings
from modelyard_proxy.providers.schemas import Pair, Schema
from modelyard_routing import Credential

_USAGE_NEEDLES = (b'"usage":{', b'"usage": {')
_ERROR_NEEDLE = b'"error"'
_ERROR_PREFIXES = (b'{"error"', b'{"object":"error"')
#: A chunk that ends a choice: its ``finish_reason`` is a string (every chunk before it says ``null``).
_FINISH_NEEDLES = (b'"finish_reason":"', b'"finish_reason": "')


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorFields:
    """What an OpenAI-family error body says, whichever of the family's shapes it came in."""

    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    #: Azure's ``innererror.code`` (``ResponsibleAIPolicyViolation``).
    inner_code: str | None = None


def parse_error(payload: bytes) -> ErrorFields:
    """The fields of an upstream error body; a non-JSON body (a proxy's HTML page) becomes the message."""
    text = payload.strip()
    try:
        parsed: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, str):
        return ErrorFields(parsed)
    return error_fields(parsed) or ErrorFields(text.decode("utf-8", "replace"))


def error_fields(obj: Any) -> ErrorFields | None:
    """Fields of OpenAI's ``{"error": {...}}``, the flat ``{"object": "error", ...}`` (Mistral, vLLM),
    ``{"error": "text"}`` or FastAPI's ``{"detail": ...}``; None for anything else."""
    if not isinstance(obj, dict):
        return None
    error = obj.get("error")
    if isinstance(error, str):
        return ErrorFields(error, type=_text(obj.get("type")), code=_text(obj.get("code")))
    if isinstance(error, dict):
        source = error
    elif obj.get("object") == "error" or "message" in obj:
        source = obj
    elif "detail" in obj:
        return ErrorFields(_text(obj["detail"]) or "")
    else:
        return None
    inner = source.get("innererror")
    return ErrorFields(
        _text(source.get("message")) or "",
        type=_text(source.get("type")),
        code=_text(source.get("code")),
        param=_text(source.get("param")),
        inner_code=_text(inner.get("code")) if isinstance(inner, dict) else None,
    )


def _text(value: Any) -> str | None:
    """A field as text: vendors put numbers in ``code`` and validation objects in ``message``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _lstrip(payload: bytes) -> bytes:
    """DeepSeek answers queued non-stream requests with blank lines before the JSON."""
    return payload.lstrip() if payload[:1].isspace() else payload


class OpenAIAdapter(ProviderAdapter):
    """One OpenAI-compatible vendor, described by its :class:`Quirks`.

    Subclasses change addressing and authentication through ``_url``, ``_body_model`` and ``_auth_headers``.
    """

    pairs = frozenset(
        {Pair(Schema.OPENAI_CHAT, Schema.OPENAI_CHAT), Pair(Schema.OPENAI_EMBEDDINGS, Schema.OPENAI_EMBEDDINGS)}
    )

    def __init__(self, quirks: Quirks) -> None:
        self.quirks = quirks
        self.name = quirks.name
        reasons = (*quirks.finish_reasons, *quirks.failure_finish_reasons)
        self._finish_needles = tuple(b'"' + reason.encode() + b'"' for reason in reasons)

    # -- requests ---------------------------------------------------------------------------------------

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        body = rewrite_chat(inbound.body, self.quirks, self._body_model(ctx))
        if ctx.stream and not ctx.include_usage and self.quirks.stream_usage_on_request:
            # The gateway accounts every stream's tokens: ask for the usage chunk (the translator strips it).
            body = dict(inbound.body if body is None else body)
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return self._call(inbound, body, ctx, "chat/completions")

    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        body = rewrite_embeddings(inbound.body, self.quirks, self._body_model(ctx))
        return self._call(inbound, body, ctx, "embeddings")

    def _call(self, inbound: Inbound, body: JSONObject | None, ctx: CallContext, operation: str) -> UpstreamCall:
        payload = inbound.wire() if body is None else orjson.dumps(body)
        return UpstreamCall(self._url(ctx, operation), self._headers(ctx.credential), payload)

    def _url(self, ctx: CallContext, operation: str) -> str:
        return f"{ctx.credential.base_url}/{operation}"

    def _body_model(self, ctx: CallContext) -> str | None:
        """The ``model`` the upstream must see in the body; None when it ignores the field."""
        return ctx.upstream_model

    def _auth_headers(self, credential: Credential) -> dict[str, str]:
        """Bearer auth; none for keyless in-cluster servers (vLLM, Ollama)."""
        if credential.api_key is None:
            return {}
        return {"authorization": f"Bearer {credential.api_key.get_secret_value()}"}

    def _headers(self, credential: Credential) -> dict[str, str]:
        return {**credential.headers, "content-type": "application/json", **self._auth_headers(credential)}

    # -- answers ----------------------------------------------------------------------------------------

    def chat_result(self, payload: bytes, ctx: CallContext) -> bytes:
        payload = _lstrip(payload)
        if payload.startswith(_ERROR_PREFIXES):
            fields = parse_error(payload)
            raise self.in_band_error(fields, ctx, GatewayError)
        if not self.mentions_finish_quirk(payload):
            return payload
        try:
            parsed = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return payload  # not ours to judge: the client's SDK reports a malformed body
        if isinstance(parsed, dict) and self.fix_choices(parsed, ctx, GatewayError):
            return orjson.dumps(parsed)
        return payload

    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        return PassthroughStream(self, ctx)

    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:  # noqa: ARG002
        return _lstrip(payload)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return self._classify(status, headers, parse_error(payload), ctx)

    def _classify(self, status: int, headers: Mapping[str, str], fields: ErrorFields, ctx: CallContext) -> GatewayError:
        error = classify(
            status,
            fields.message,
            ctx.credential,
            provider=self.name,
            upstream_type=fields.type,
            upstream_code=fields.code,
            headers=headers,
        )
        if status in CLIENT_FAULT and error.param is None:
            error.param = fields.param  # the client's own mistake: say which field, as OpenAI does
        return error

    # -- helpers shared with the stream translator -------------------------------------------------------

    def mentions_finish_quirk(self, data: bytes) -> bool:
        """Whether ``data`` may carry a finish reason this vendor spells differently (a cheap byte scan)."""
        return any(needle in data for needle in self._finish_needles)

    def fix_choices(self, payload: JSONObject, ctx: CallContext, error: type[GatewayError]) -> bool:
        """Respell vendor finish reasons in place (True if any changed); raise ``error`` for failure ones."""
        changed = False
        choices = payload.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            if not isinstance(reason, str):
                continue
            if reason in self.quirks.failure_finish_reasons:
                where = f"upstream {self.name} ({ctx.credential.id})"
                raise error(
                    502,
                    f"{where} stopped generating with finish_reason {reason!r}",
                    type="upstream_error",
                    code="upstream_error",
                    retryable=error is GatewayError,
                )
            if reason in self.quirks.finish_reasons:
                choice["finish_reason"] = self.quirks.finish_reasons[reason]
                changed = True
        return changed

    def in_band_error(self, fields: ErrorFields, ctx: CallContext, error: type[GatewayError]) -> GatewayError:
        """An error the upstream reported inside a 200 answer."""
        reason = scrub(fields.message, ctx.credential) or "no message"
        return error(
            502,
            f"upstream {self.name} ({ctx.credential.id}) reported an error: {reason}",
            type="upstream_error",
            code="upstream_error",
        )


class PassthroughStream(StreamTranslator):
    """Re-frames each upstream ``data:`` payload as it came; parses one only when it must.

    ``[DONE]`` is forwarded from :meth:`feed`, so :meth:`finish` then returns nothing. Some compatible servers
    close the body cleanly after the chunk with the ``finish_reason`` (and usage) without ``[DONE]``: that
    answer is complete, and :meth:`finish` ends it with ``[DONE]``. A stream that ends before any
    ``finish_reason`` is truncated (``Quirks.requires_done`` off accepts any clean end).
    """

    def __init__(self, adapter: OpenAIAdapter, ctx: CallContext) -> None:
        self._adapter = adapter
        self._ctx = ctx
        self._done = False
        self._finished = False
        self.usage: JSONObject | None = None

    def feed(self, event: SSEEvent) -> bytes:
        data = event.data
        if self._done or not data:
            return b""
        self._note_finish(data)
        if data.startswith(b"[DONE]"):
            self._done = True
            return DONE_FRAME
        if (
            _ERROR_NEEDLE in data
            or _USAGE_NEEDLES[0] in data
            or _USAGE_NEEDLES[1] in data
            or b"\n" in data  # JSON spread over several data: lines; the client gets it on one
            or event.event == "error"
            or self._adapter.mentions_finish_quirk(data)
        ):
            return self._inspect(event, data)
        return frame(data)

    def translate(self, decoder: SSEDecoder, chunk: bytes) -> bytes:
        """A read of whole, plain events (the usual case) goes out as it came, without decoding an event."""
        if not self._done and decoder.idle and self._plain(chunk):
            self._note_finish(chunk)
            return chunk
        return super().translate(decoder, chunk)

    def _note_finish(self, data: bytes) -> None:
        """Remember that a choice finished (a byte scan, until the first one does)."""
        if not self._finished:
            self._finished = _FINISH_NEEDLES[0] in data or _FINISH_NEEDLES[1] in data

    def _plain(self, chunk: bytes) -> bool:
        """``chunk`` is exactly ``data: {…}\n\n`` events, one line each, none of which :meth:`feed` would
        change: no error, usage, finish-reason quirk, ``[DONE]`` or empty event. Byte scans only."""
        if not (chunk.startswith(b"data: {") and chunk.endswith(b"}\n\n")) or b"\r" in chunk:
            return False
        events = chunk.count(b"data: ")
        # Every newline sits in a "\n\ndata: " between events or in the final "\n\n": one data line per event.
        if chunk.count(b"\n") != 2 * events or chunk.count(b"\n\ndata: {") != events - 1:
            return False
        return not (
            _ERROR_NEEDLE in chunk
            or _USAGE_NEEDLES[0] in chunk
            or _USAGE_NEEDLES[1] in chunk
            or self._adapter.mentions_finish_quirk(chunk)
        )

    def finish(self) -> bytes:
        if self._done:
            return b""
        if self._adapter.quirks.requires_done and not self._finished:
            where = f"upstream {self._adapter.name} ({self._ctx.credential.id})"
            raise UpstreamStreamError(
                502,
                f"{where} ended the stream before a finish_reason or [DONE]",
                type="upstream_error",
                code="upstream_truncated",
            )
        self._done = True
        return DONE_FRAME

    def _inspect(self, event: SSEEvent, data: bytes) -> bytes:
        try:
            chunk: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = None
        if event.event == "error" or (
            isinstance(chunk, dict) and (chunk.get("error") or chunk.get("object") == "error")
        ):
            fields = error_fields(chunk) or ErrorFields(data.decode("utf-8", "replace"))
            raise self._adapter.in_band_error(fields, self._ctx, UpstreamStreamError)
        if not isinstance(chunk, dict):
            return b"data: " + data.replace(b"\n", b"\ndata: ") + b"\n\n"  # not JSON: relay it line for line
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
            if not self._ctx.include_usage and chunk.get("choices") == []:
                return b""  # the usage chunk the gateway asked for on its own behalf
        if self._adapter.fix_choices(chunk, self._ctx, UpstreamStreamError) or b"\n" in data:
            return frame(orjson.dumps(chunk))
        return frame(data)
