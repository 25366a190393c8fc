"""The one middleware every request passes: request id, server span, gateway-key check, error envelope in the
client protocol's shape.

One frame instead of four, because each middleware layer costs aiohttp a partial and a coroutine per
request, on a path where the whole gateway has a few hundred microseconds.
"""

from __future__ import annotations

import logging
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import trace

from modelyard_proxy.api import endpoints
from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.ids import UniqueIds
from modelyard_proxy.keys import (
    API_KEY,
    AUDIT,
    CALLER,
    METRICS,
    REQUEST_ID,
    SETTINGS,
    SPAN,
    STORE,
    TRACE_PARENT,
    TRACER,
)
from modelyard_proxy.observability.telemetry import PROPAGATOR
from modelyard_proxy.providers.ingress.openai_chat import CHAT
from modelyard_proxy.providers.ingress.protocol import IngressProtocol
from modelyard_proxy.providers.registry import PROTOCOLS
from modelyard_proxy.relay.reporting import report_refusal

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
#: Paths under these are the API: traced and authenticated (``/openai/`` is Azure's addressing).
API_PREFIXES = ("/v1/", "/openai/")
#: Where clients put the gateway key: OpenAI SDKs send a bearer token, Anthropic's ``x-api-key`` (Claude Code
#: either), Azure's ``api-key``.
KEY_HEADERS = ("x-api-key", "api-key")
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: HTTP errors aiohttp raises itself, restated in OpenAI's vocabulary.
HTTP_ERROR_TYPES = {404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error"}


#: Request ids for clients that send none (or one not safe to echo).
REQUEST_IDS = UniqueIds()


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tag the request with an id (the caller's ``x-request-id`` when it is safe to echo) and answer every
    failure in the client protocol's error shape; the API (``/v1/``, ``/openai/``) is also traced and needs a
    gateway key."""
    incoming = request.headers.get(REQUEST_ID_HEADER)
    request_id = incoming if incoming is not None and SAFE_REQUEST_ID.match(incoming) else REQUEST_IDS.next()
    request[REQUEST_ID] = request_id
    if request.path.startswith(API_PREFIXES):
        response = await _traced(request, handler)
    else:
        response = await _enveloped(request, handler, None)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


async def _traced(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One server span per API request, continuing the client's W3C ``traceparent`` when it sends one.

    The relay names it ``{operation} {model}`` and adds the GenAI attributes; this records the outcome.
    """
    parent = None
    if "traceparent" in request.headers:
        parent = PROPAGATOR.extract(request.headers)
        request[TRACE_PARENT] = parent
    span = request.app[TRACER].start_span(
        f"{request.method} {request.path}",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": request.path},
    )
    request[SPAN] = span
    try:
        response = await _enveloped(request, handler, span)
        if span.is_recording():
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 400:
                span.set_status(trace.StatusCode.ERROR)
        return response
    finally:
        span.end()


async def _enveloped(request: web.Request, handler: Handler, span: trace.Span | None) -> web.StreamResponse:
    """The handler's response, or its failure in the client protocol's error shape; a request no route serves
    is refused first (404/405 naming it), then an API request is authenticated."""
    started = time.monotonic()
    try:
        if (unserved := endpoints.unserved(request)) is not None:
            raise unserved
        if span is not None:
            _authenticate(request)
        return await handler(request)
    except GatewayError as exc:
        error = exc
    except web.HTTPRequestEntityTooLarge:
        message = f"request body is larger than the {request.app[SETTINGS].max_body_bytes}-byte limit"
        error = GatewayError(413, message, code="request_too_large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = HTTP_ERROR_TYPES.get(exc.status, "invalid_request_error")
        error = GatewayError(exc.status, exc.reason, type=kind)
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        error = GatewayError(500, "internal gateway error", type="server_error")
    if span is not None and span.is_recording():
        span.set_attribute("error.type", error.code or error.type)
    if not error.reported:
        report_refusal(
            request.app[METRICS],
            request.app[AUDIT],
            request.get(REQUEST_ID),
            error,
            time.monotonic() - started,
            method=request.method,
            path=request.path[: endpoints.MAX_ECHOED_PATH],
        )
    headers = {**error.headers(), REQUEST_ID_HEADER: request.get(REQUEST_ID, "")}
    status, body = protocol_for_path(request.path).error_response(error)
    response = web.Response(status=status, body=body, content_type="application/json", headers=headers)
    if error.closes_connection:
        response.force_close()
    return response


def protocol_for_path(path: str) -> IngressProtocol:
    """The client protocol whose endpoint ``path`` is or lies under (``/v1/messages/count_tokens`` is
    Anthropic's); OpenAI Chat Completions for every other path."""
    for protocol in PROTOCOLS.values():
        if path.startswith(protocol.path) and (len(path) == len(protocol.path) or path[len(protocol.path)] == "/"):
            return protocol
    return CHAT


def _authenticate(request: web.Request) -> None:
    """Require a known gateway API key (a bearer token, ``x-api-key`` or ``api-key``) and note whose it is; 503
    until a table is loaded."""
    compiled = request.app[STORE].current
    if compiled is None:
        raise GatewayError(503, "the gateway has no routing table loaded yet", type="server_error", code="not_ready")
    key = _presented_key(request)
    if not key:
        raise GatewayError(
            401,
            "missing gateway API key: send Authorization: Bearer <key> (or x-api-key: <key>)",
            type="authentication_error",
            code="missing_api_key",
        )
    caller = compiled.identify(key)
    if caller is None:
        raise GatewayError(401, "invalid gateway API key", type="authentication_error", code="invalid_api_key")
    request[CALLER] = caller
    request[API_KEY] = key


def _presented_key(request: web.Request) -> str:
    """The key the client sent: a bearer token first, else the first key header present."""
    headers = request.headers
    authorization = headers.get("Authorization")
    if authorization is not None:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return key.strip()
    for name in KEY_HEADERS:
        value = headers.get(name)
        if value is not None and value.strip():
            return value.strip()
    return ""
