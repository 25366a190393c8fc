"""Sends a request to a route's targets and relays the answer, streamed or whole, to the client.

Targets are tried in priority order; another target is tried only for a retryable failure and only
before the first byte reached the client. After that, a failure becomes an in-band ``data: {"error": …}``
event: the client never sees a clean-looking truncated stream.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
from aiohttp import web

from modelyard_proxy.errors import GatewayError
from modelyard_proxy.keys import HTTP_SESSION, REQUEST_ID, SETTINGS
from modelyard_proxy.providers.base import CallContext, Inbound, StreamTranslator, UpstreamCall, UpstreamStreamError
from modelyard_proxy.sse import SSEDecoder, frame
from modelyard_proxy.store import ResolvedRoute, ResolvedTarget

log = logging.getLogger(__name__)

STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: aiohttp writes bytes bodies in one go; past this size it prefers (and warns about) a file-like body.
LARGE_BODY = 1024 * 1024


def call_context(inbound: Inbound, route_name: str, resolved: ResolvedTarget, request_id: str) -> CallContext:
    """The per-attempt context adapters translate with."""
    body = inbound.body
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    return CallContext(
        public_model=route_name,
        upstream_model=resolved.target.model,
        credential=resolved.credential,
        stream=stream,
        include_usage=include_usage,
        created=int(time.time()),
        completion_id=f"chatcmpl-{request_id}",
        encoding_format="base64" if body.get("encoding_format") == "base64" else "float",
    )


Attempt = Callable[[ResolvedTarget, CallContext], Awaitable[web.StreamResponse]]


async def relay_chat(request: web.Request, inbound: Inbound, name: str, route: ResolvedRoute) -> web.StreamResponse:
    """Serve one chat completion over the route's targets."""

    async def attempt(resolved: ResolvedTarget, ctx: CallContext) -> web.StreamResponse:
        call = resolved.adapter.chat_call(inbound, ctx)
        if ctx.stream:
            return await _stream(request, resolved, call, ctx)
        payload = await _exchange(request, resolved, call, ctx)
        return _json_response(resolved.adapter.chat_result(payload, ctx))

    return await _over_targets(request, inbound, name, route, attempt)


async def relay_embeddings(
    request: web.Request, inbound: Inbound, name: str, route: ResolvedRoute
) -> web.StreamResponse:
    """Serve one embeddings request over the route's targets."""

    async def attempt(resolved: ResolvedTarget, ctx: CallContext) -> web.StreamResponse:
        payload = await _exchange(request, resolved, resolved.adapter.embeddings_call(inbound, ctx), ctx)
        return _json_response(resolved.adapter.embeddings_result(payload, ctx))

    return await _over_targets(request, inbound, name, route, attempt)


async def _over_targets(
    request: web.Request, inbound: Inbound, name: str, route: ResolvedRoute, attempt: Attempt
) -> web.StreamResponse:
    """Try targets in order until one answers; only a retryable failure moves on to the next."""
    last: GatewayError | None = None
    for resolved in route.targets:
        try:
            return await attempt(resolved, call_context(inbound, name, resolved, request[REQUEST_ID]))
        except GatewayError as exc:
            if not exc.retryable:
                raise
            last = exc
            log.warning("target %s failed (%s), trying the next one", resolved.target.id, exc.code)
    assert last is not None  # a compiled route always has at least one target
    raise last


def _json_response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _payload(body: bytes) -> bytes | io.BytesIO:
    """Large bodies go through a file-like payload, which aiohttp writes without blocking the loop."""
    return body if len(body) < LARGE_BODY else io.BytesIO(body)


def _timeout(request: web.Request) -> aiohttp.ClientTimeout:
    settings = request.app[SETTINGS]
    return aiohttp.ClientTimeout(total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout)


async def _exchange(request: web.Request, resolved: ResolvedTarget, call: UpstreamCall, ctx: CallContext) -> bytes:
    """One whole request/response with the upstream; non-2xx answers become the adapter's GatewayError."""
    session = request.app[HTTP_SESSION]
    try:
        async with session.request(
            call.method, call.url, data=_payload(call.body), headers=call.headers, timeout=_timeout(request)
        ) as response:
            payload = await response.read()
            if response.status >= 300:
                raise resolved.adapter.error_from(response.status, response.headers, payload, ctx)
            return payload
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise transport_error(resolved, exc) from exc


async def _stream(
    request: web.Request, resolved: ResolvedTarget, call: UpstreamCall, ctx: CallContext
) -> web.StreamResponse:
    """Relay a stream; the client response starts only once the translator has produced its first bytes."""
    session = request.app[HTTP_SESSION]
    client: web.StreamResponse | None = None
    translator: StreamTranslator = resolved.adapter.chat_stream(ctx)
    decoder = SSEDecoder()
    try:
        async with session.request(
            call.method, call.url, data=_payload(call.body), headers=call.headers, timeout=_timeout(request)
        ) as response:
            if response.status >= 300:
                payload = await response.read()
                raise resolved.adapter.error_from(response.status, response.headers, payload, ctx)
            async for chunk in response.content.iter_any():
                out = b"".join([translator.feed(event) for event in decoder.feed(chunk)])
                if out:
                    if client is None:
                        client = await _start(request)
                    await client.write(out)
            closing = b"".join([translator.feed(event) for event in decoder.close()]) + translator.finish()
    except (aiohttp.ClientError, TimeoutError) as exc:
        failure: GatewayError = transport_error(resolved, exc)
        if client is None:
            raise failure from exc
        return await _fail_in_band(client, failure)
    except UpstreamStreamError as exc:
        if client is None:
            raise
        return await _fail_in_band(client, exc)
    if client is None:
        client = await _start(request)
    await client.write(closing)
    await client.write_eof()
    return client


async def _start(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers=STREAM_HEADERS)
    await response.prepare(request)
    return response


async def _fail_in_band(client: web.StreamResponse, error: GatewayError) -> web.StreamResponse:
    """End a started stream with an OpenAI error event (and no ``[DONE]``), as the SDKs expect."""
    log.warning("stream failed after the first byte: %s", error.code)
    await client.write(frame(orjson.dumps(error.payload())))
    await client.write_eof()
    return client


def transport_error(resolved: ResolvedTarget, exc: BaseException) -> GatewayError:
    """A connection failure or timeout as a retryable 502/504 that names the upstream, not its key."""
    where = f"upstream {resolved.credential.provider.value} ({resolved.credential.id})"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return GatewayError(
            504, f"{where} did not answer in time", type="upstream_error", code="upstream_timeout", retryable=True
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return GatewayError(
            502,
            f"{where} closed the response mid-way",
            type="upstream_error",
            code="upstream_truncated",
            retryable=True,
        )
    return GatewayError(
        502,
        f"{where} could not be reached: {type(exc).__name__}",
        type="upstream_error",
        code="upstream_unreachable",
        retryable=True,
    )
