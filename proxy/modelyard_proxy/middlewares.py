"""Request id, the OpenAI error envelope, and gateway API-key authentication, in that order."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import trace

from modelyard_proxy.errors import GatewayError
from modelyard_proxy.keys import REQUEST_ID, SETTINGS, SPAN, STORE, TRACE_PARENT, TRACER
from modelyard_proxy.telemetry import PROPAGATOR

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: HTTP errors aiohttp raises itself, restated in OpenAI's vocabulary.
HTTP_ERROR_TYPES = {404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error"}


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tag the request with the caller's ``x-request-id`` when it is safe to echo, else a fresh one."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    response = await handler(request)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


@web.middleware
async def trace_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One server span per API request, continuing the client's W3C ``traceparent`` when it sends one.

    The relay names it ``{operation} {model}`` and adds the GenAI attributes; this records the outcome.
    """
    if not request.path.startswith("/v1/"):
        return await handler(request)
    parent = PROPAGATOR.extract(request.headers)
    request[TRACE_PARENT] = parent
    tracer = request.app[TRACER]
    with tracer.start_as_current_span(
        f"{request.method} {request.path}",
        context=parent,
        kind=trace.SpanKind.SERVER,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        request[SPAN] = span
        response = await handler(request)
        if span.is_recording():
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("http.route", request.path)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 400:
                span.set_status(trace.StatusCode.ERROR)
                if "error.type" not in getattr(span, "attributes", {}):
                    span.set_attribute("error.type", str(response.status))
        return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure in OpenAI's error shape; unexpected ones are logged and reported as 500."""
    try:
        return await handler(request)
    except GatewayError as exc:
        return _error_response(request, exc)
    except web.HTTPRequestEntityTooLarge:
        message = f"request body is larger than the {request.app[SETTINGS].max_body_bytes}-byte limit"
        return _error_response(request, GatewayError(413, message, code="request_too_large"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = HTTP_ERROR_TYPES.get(exc.status, "invalid_request_error")
        return _error_response(request, GatewayError(exc.status, exc.reason, type=kind))
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return _error_response(request, GatewayError(500, "internal gateway error", type="server_error"))


def _error_response(request: web.Request, error: GatewayError) -> web.Response:
    span = request.get(SPAN)
    if span is not None and span.is_recording():
        span.set_attribute("error.type", error.code or error.type)
    headers = {**error.headers(), REQUEST_ID_HEADER: request.get(REQUEST_ID, "")}
    return web.Response(status=error.status, body=error.body(), content_type="application/json", headers=headers)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a known gateway API key on the OpenAI API; health probes stay open."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    compiled = request.app[STORE].current
    if compiled is None:
        raise GatewayError(503, "the gateway has no routing table loaded yet", type="server_error", code="not_ready")
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise GatewayError(
            401,
            "missing gateway API key: send Authorization: Bearer <key>",
            type="authentication_error",
            code="missing_api_key",
        )
    if hashlib.sha256(key.strip().encode()).hexdigest() not in compiled.key_hashes:
        raise GatewayError(401, "invalid gateway API key", type="authentication_error", code="invalid_api_key")
    return await handler(request)
