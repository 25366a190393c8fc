"""The request pipeline every simulated endpoint shares.

read JSON -> resolve behaviour -> latency -> key check -> scripted status -> respond.
A :class:`Dialect` supplies only the provider's conventions (credentials, headers, error
shape); endpoint functions supply the payloads.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from modelyard_simulator.behaviour import Behaviour, OverrideError, ScenarioBook, resolve
from modelyard_simulator.errors import Failure, format_seconds
from modelyard_simulator.streaming import FailureEvent, SseEvent, same_everywhere, send_body, send_stream, sleep_ms

SCENARIOS = web.AppKey("modelyard_simulator.scenarios", ScenarioBook)

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """What headers and error bodies may mention about the response being produced."""

    request_id: str
    status: int = 200
    retry_after: float | None = None
    elapsed_ms: int = 0


class Dialect(ABC):
    """A provider's conventions that are not part of any one payload."""

    invalid_json_message = "Invalid JSON body."
    # Whether a request without any credential is rejected even when no key is scripted.
    key_required = False
    # The in-stream error a provider sends when generation fails after the 200.
    stream_failure_status = 500
    stream_error_event: str | None = None

    @abstractmethod
    def new_request_id(self) -> str: ...

    @abstractmethod
    def presented_key(self, request: web.Request) -> str | None:
        """The credential the request carries, in wherever this provider expects it."""

    @abstractmethod
    def auth_failure(self, presented: str | None) -> Failure:
        """The native rejection of a missing or wrong key."""

    @abstractmethod
    def error_payload(self, failure: Failure, meta: ResponseMeta) -> JsonObject:
        """The native error body for ``failure``."""

    def headers(self, meta: ResponseMeta) -> dict[str, str]:
        """Response headers for this provider; the base only adds ``Retry-After``."""
        return {"retry-after": format_seconds(meta.retry_after)} if meta.retry_after is not None else {}

    def stream_error(self, meta: ResponseMeta) -> SseEvent:
        """The event that reports a failure after the stream started."""
        payload = self.error_payload(Failure(self.stream_failure_status), meta)
        return SseEvent(orjson.dumps(payload), event=self.stream_error_event)

    def error_response(self, failure: Failure, request_id: str, retry_after: float | None) -> web.Response:
        meta = ResponseMeta(request_id, failure.status, retry_after)
        return web.Response(
            status=failure.status,
            body=orjson.dumps(self.error_payload(failure, meta)),
            content_type="application/json",
            headers=self.headers(meta),
        )


@dataclass(slots=True)
class Exchange:
    """One request being served, with its resolved behaviour."""

    request: web.Request
    dialect: Dialect
    request_id: str
    body: JsonObject
    behaviour: Behaviour
    started: float

    def headers(self) -> dict[str, str]:
        elapsed = int((time.monotonic() - self.started) * 1000)
        return self.dialect.headers(ResponseMeta(self.request_id, elapsed_ms=elapsed))

    async def send_json(self, payload: object) -> web.StreamResponse:
        return await send_body(self.request, self.behaviour, orjson.dumps(payload), headers=self.headers())

    async def send_events(
        self,
        events: Sequence[SseEvent],
        *,
        newline: bytes = b"\n",
        failure_event: FailureEvent | None = None,
        content_type: str = "text/event-stream",
    ) -> web.StreamResponse:
        """Stream ``events``; a scripted mid-stream failure sends ``failure_event``, else the dialect's error."""
        if failure_event is None:
            failure_event = same_everywhere(self.dialect.stream_error(ResponseMeta(self.request_id)))
        return await send_stream(
            self.request,
            self.behaviour,
            events,
            headers=self.headers(),
            failure_event=failure_event,
            newline=newline,
            content_type=content_type,
        )


Target = Callable[[JsonObject, web.Request], tuple[str, str]]
"""Returns (model, text that may hold a ``[simulate ...]`` directive) for a request."""

Respond = Callable[[Exchange], Awaitable[web.StreamResponse]]


async def serve_exchange(
    request: web.Request, dialect: Dialect, target: Target, respond: Respond
) -> web.StreamResponse:
    """Run the shared pipeline and render any :class:`Failure` in the dialect's shape."""
    started = time.monotonic()
    request_id = dialect.new_request_id()
    retry_after: float | None = None
    try:
        body = await _read_json(request, dialect)
        model, text = target(body, request)
        try:
            behaviour = resolve(request.app[SCENARIOS], model, text, request.headers)
        except OverrideError as exc:
            raise Failure(400, str(exc)) from exc
        retry_after = behaviour.retry_after
        await sleep_ms(behaviour.latency_ms)
        presented = dialect.presented_key(request)
        wrong_key = behaviour.require_key is not None and presented != behaviour.require_key
        if wrong_key or (dialect.key_required and not presented):
            raise dialect.auth_failure(presented)
        if not 200 <= behaviour.status < 300:
            raise Failure(behaviour.status, behaviour.error_message)
        return await respond(Exchange(request, dialect, request_id, body, behaviour, started))
    except Failure as failure:
        return dialect.error_response(failure, request_id, retry_after)


def bearer(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def no_target(_body: JsonObject, _request: web.Request) -> tuple[str, str]:
    """For endpoints without a model or prompt: only default and header behaviour apply."""
    return "", ""


def mask_key(key: str | None) -> str:
    """Echo a key the way providers do in 401 messages, without leaking it."""
    if not key:
        return ""
    return f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"


async def _read_json(request: web.Request, dialect: Dialect) -> JsonObject:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Failure(400, dialect.invalid_json_message) from exc
    if not isinstance(body, dict):
        raise Failure(400, dialect.invalid_json_message)
    return body
