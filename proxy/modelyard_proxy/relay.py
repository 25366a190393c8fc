"""Sends a request to a route's targets and relays the answer, streamed or whole, to the client.

A request runs in two phases. Until the commit point, attempts are free to fail: the route's balancer
orders the targets, each target may be retried with backoff, a failure the route's ``fallbackOn`` lists
moves on to the next target, and a hedged route races two targets. For a stream the commit point is the
first frame that carries content (role-only and empty frames are held back until then), for a whole
answer it is the complete, valid body. After it nothing is retried: a stream that fails becomes an
in-band ``data: {"error": …}`` event with no ``[DONE]``, so the client never sees a clean-looking
truncated answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from modelyard_proxy.errors import GatewayError
from modelyard_proxy.keys import HEALTH, HTTP_SESSION, REQUEST_ID, SETTINGS
from modelyard_proxy.providers.base import CallContext, Inbound, StreamTranslator, UpstreamStreamError
from modelyard_proxy.routing import faults, policy
from modelyard_proxy.routing.balancers import plan
from modelyard_proxy.routing.deadlines import Deadlines
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.sse import DONE_FRAME, SSEDecoder, frame
from modelyard_proxy.store import ResolvedRoute, ResolvedTarget

log = logging.getLogger(__name__)
audit_log = logging.getLogger("modelyard.audit")

STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: aiohttp writes bytes bodies in one go; past this size it prefers (and warns about) a file-like body.
LARGE_BODY = 1024 * 1024
PROFILE_HEADER = "x-modelyard-profile"
#: An upstream asking for a longer pause than this is not waited for (as openai-python does past 60-120 s).
MAX_RETRY_AFTER = 60.0
#: Characters per token when estimating whether a prompt fits a context window (an underestimate on purpose).
CHARS_PER_TOKEN = 4
_CONTENT_KEYS = ("content", "tool_calls", "function_call", "refusal", "reasoning_content")


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


@dataclasses.dataclass(slots=True)
class Prepared:
    """An attempt that reached the commit point: a whole body, or a stream's held frames and open upstream."""

    resolved: ResolvedTarget
    body: bytes = b""
    stream: bool = False
    finished: bool = True
    stack: contextlib.AsyncExitStack | None = None
    response: aiohttp.ClientResponse | None = None
    translator: StreamTranslator | None = None
    decoder: SSEDecoder | None = None

    async def close(self) -> None:
        """Release the upstream connection (a hedging loser, or a stream once relayed)."""
        if self.stack is not None:
            await self.stack.aclose()


async def relay_chat(request: web.Request, inbound: Inbound, name: str, route: ResolvedRoute) -> web.StreamResponse:
    """Serve one chat completion over the route's targets."""
    run = Run(request, inbound, name, route)
    if inbound.body.get("stream") is True:
        return await run.serve(run.prepare_stream)
    return await run.serve(run.prepare_chat)


async def relay_embeddings(
    request: web.Request, inbound: Inbound, name: str, route: ResolvedRoute
) -> web.StreamResponse:
    """Serve one embeddings request over the route's targets."""
    run = Run(request, inbound, name, route)
    return await run.serve(run.prepare_embeddings)


Prepare = Callable[[ResolvedTarget, CallContext, Deadlines], Awaitable[Prepared]]


class Run:
    """One client request on its way over a route's targets, with the record the audit line is made of."""

    def __init__(self, request: web.Request, inbound: Inbound, name: str, route: ResolvedRoute) -> None:
        self.request = request
        self.inbound = inbound
        self.name = name
        self.route = route
        self.policy = route.route.policy
        self.health: HealthRegistry = request.app[HEALTH]
        self.rng = random.Random()  # noqa: S311  # jitter and sampling, not cryptography
        self.profile = _profile(request, inbound.body)
        self.attempts = 0
        self.tried: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self._prompt_tokens: int | None = None

    # -- the pre-commit phase: plan, retry, fall back, hedge ---------------------------------------------

    async def serve(self, prepare: Prepare) -> web.StreamResponse:
        """Find a target that answers, then deliver its answer; one audit line whatever happens."""
        deadlines = Deadlines.start(self.policy, self.request.app[SETTINGS])
        status, code, served = 200, None, None
        try:
            try:
                async with asyncio.timeout_at(deadlines.total_at):
                    prepared = await self._find(prepare, deadlines)
            except TimeoutError:
                error = GatewayError(
                    504,
                    f"no target of route {self.route.route.id} answered within its total deadline",
                    type="upstream_error",
                    code="upstream_timeout",
                )
                raise error from None
            served = prepared.resolved
            response, code = await self._deliver(prepared, deadlines)
            return response
        except GatewayError as exc:
            status, code = exc.status, exc.code
            exc.extra_headers.update(self._headers(None))
            raise
        finally:
            self._audit(status, code, served)

    async def _find(self, prepare: Prepare, deadlines: Deadlines) -> Prepared:
        order = plan(self.policy.strategy, self.route.targets_for(self.profile), self.health, self.rng)
        last: GatewayError | None = None
        rest = order
        if self.policy.strategy == "hedge" and len(order) > 1:
            try:
                return await self._hedge(prepare, deadlines, order[0], order[1])
            except GatewayError as exc:
                if not policy.falls_back(exc, self.policy):
                    raise
                last, rest = exc, order[2:]
        for resolved in rest:
            if self._attempts_exhausted(deadlines):
                break
            try:
                return await self._over_target(prepare, deadlines, resolved)
            except GatewayError as exc:
                last = exc
                if not policy.falls_back(exc, self.policy):
                    raise
                log.warning("target %s failed (%s), falling back", resolved.target.id, exc.code)
        assert last is not None  # a compiled route always has at least one target
        raise last

    def _attempts_exhausted(self, deadlines: Deadlines) -> bool:
        """No attempt is left: the route's cap on attempts is reached, or the total deadline has passed."""
        cap = self.policy.max_total_attempts
        return (cap is not None and self.attempts >= cap) or deadlines.remaining() == 0

    async def _hedge(
        self, prepare: Prepare, deadlines: Deadlines, first: ResolvedTarget, second: ResolvedTarget
    ) -> Prepared:
        """Race ``second`` against ``first`` once the hedge delay passed (or ``first`` failed); first answer wins."""
        delay = (self.policy.hedge_delay_ms or 0) / 1000
        tasks = {asyncio.ensure_future(self._over_target(prepare, deadlines, first))}
        pending_second = True
        last: GatewayError | None = None
        try:
            while tasks or pending_second:
                done, tasks = await asyncio.wait(
                    tasks, timeout=delay if pending_second else None, return_when=asyncio.FIRST_COMPLETED
                )
                winners: list[Prepared] = []
                for task in done:
                    failure = task.exception()
                    if failure is None:
                        winners.append(task.result())
                    elif isinstance(failure, GatewayError):
                        last = failure
                    else:
                        raise failure
                if winners:
                    for extra in winners[1:]:
                        await extra.close()
                    return winners[0]
                if pending_second and (not done or not tasks):
                    pending_second = False
                    if last is None or policy.falls_back(last, self.policy):
                        tasks.add(asyncio.ensure_future(self._over_target(prepare, deadlines, second)))
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    loser = await task
                    await loser.close()  # it reached the commit point too late: never billed to this stream
        assert last is not None
        raise last

    async def _over_target(self, prepare: Prepare, deadlines: Deadlines, resolved: ResolvedTarget) -> Prepared:
        """Attempts at one target: retried with backoff while the failure is transient and time allows."""
        self._check_fits(resolved)
        retry = 0
        while True:
            try:
                return await self._attempt(prepare, deadlines, resolved)
            except GatewayError as exc:
                if not policy.retries_same_target(exc) or retry + 1 >= self.policy.attempts:
                    raise
                if self._attempts_exhausted(deadlines):
                    raise
                wait = policy.backoff(self.policy, retry, self.rng, exc.retry_after)
                remaining = deadlines.remaining()
                if wait > MAX_RETRY_AFTER or (remaining is not None and wait >= remaining):
                    raise  # waiting would outlast the deadline: fall back now instead
                retry += 1
                await asyncio.sleep(wait)

    def _check_fits(self, resolved: ResolvedTarget) -> None:
        window = resolved.target.context_window
        if window is None:
            return
        if self._prompt_tokens is None:
            self._prompt_tokens = estimate_tokens(self.inbound.body)
        if self._prompt_tokens > window:
            self.tried.append({"target": resolved.target.id, "code": "context_length_exceeded", "sent": False})
            raise GatewayError(
                400,
                f"the prompt (about {self._prompt_tokens} tokens) does not fit the context window of "
                f"{resolved.target.model} ({window} tokens)",
                code="context_length_exceeded",
                param="messages",
            )

    async def _attempt(self, prepare: Prepare, deadlines: Deadlines, resolved: ResolvedTarget) -> Prepared:
        """One attempt, bounded by the first-token deadline, its outcome fed to the target's health."""
        self.attempts += 1
        health = self.health[resolved.target.id]
        health.begin()
        started = time.monotonic()
        ctx = call_context(self.inbound, self.name, resolved, self.request[REQUEST_ID])
        try:
            async with asyncio.timeout(deadlines.first_token_budget()):
                if self.attempts == 1:  # a rehearsed outage hits the first choice; fallbacks run for real
                    await faults.inject(self.policy.faults, resolved.credential, self.rng)
                prepared = await prepare(resolved, ctx, deadlines)
        except TimeoutError:
            error = _timeout_error(resolved, "sent no first token in time")
            self._failed(resolved, error)
            raise error from None
        except GatewayError as exc:
            self._failed(resolved, exc)
            raise
        except asyncio.CancelledError:
            health.probing = False
            raise
        health.record(self.policy, ok=True, latency=time.monotonic() - started)
        self.tried.append({"target": resolved.target.id, "code": None})
        return prepared

    def _failed(self, resolved: ResolvedTarget, error: GatewayError) -> None:
        health = self.health[resolved.target.id]
        health.record(self.policy, ok=not policy.counts_against_health(error))
        self.tried.append({"target": resolved.target.id, "code": error.code})

    # -- attempts ------------------------------------------------------------------------------------------

    async def prepare_chat(self, resolved: ResolvedTarget, ctx: CallContext, deadlines: Deadlines) -> Prepared:
        """A whole chat answer, translated and checked to be complete JSON."""
        call = resolved.adapter.chat_call(self.inbound, ctx)
        payload = await self._exchange(resolved, call.method, call.url, call.body, call.headers, ctx, deadlines)
        return Prepared(resolved, _valid_json(resolved, resolved.adapter.chat_result(payload, ctx)))

    async def prepare_embeddings(self, resolved: ResolvedTarget, ctx: CallContext, deadlines: Deadlines) -> Prepared:
        """A whole embeddings answer."""
        call = resolved.adapter.embeddings_call(self.inbound, ctx)
        payload = await self._exchange(resolved, call.method, call.url, call.body, call.headers, ctx, deadlines)
        return Prepared(resolved, _valid_json(resolved, resolved.adapter.embeddings_result(payload, ctx)))

    async def _exchange(  # noqa: PLR0917
        self,
        resolved: ResolvedTarget,
        method: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        ctx: CallContext,
        deadlines: Deadlines,
    ) -> bytes:
        """One whole request/response with the upstream; non-2xx answers become the adapter's GatewayError."""
        session = self.request.app[HTTP_SESSION]
        try:
            async with session.request(
                method, url, data=_payload(body), headers=headers, timeout=deadlines.client_timeout()
            ) as response:
                payload = await response.read()
                if response.status >= 300:
                    raise resolved.adapter.error_from(response.status, response.headers, payload, ctx)
                return payload
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(resolved, exc) from exc

    async def prepare_stream(self, resolved: ResolvedTarget, ctx: CallContext, deadlines: Deadlines) -> Prepared:
        """Open the upstream stream and read until the first content frame (the commit point) or its end."""
        call = resolved.adapter.chat_call(self.inbound, ctx)
        session = self.request.app[HTTP_SESSION]
        stack = contextlib.AsyncExitStack()
        translator = resolved.adapter.chat_stream(ctx)
        decoder = SSEDecoder()
        held: list[bytes] = []
        try:
            response = await stack.enter_async_context(
                session.request(
                    call.method,
                    call.url,
                    data=_payload(call.body),
                    headers=call.headers,
                    timeout=deadlines.client_timeout(),
                )
            )
            if response.status >= 300:
                payload = await response.read()
                raise resolved.adapter.error_from(response.status, response.headers, payload, ctx)
            while chunk := await response.content.readany():
                out = b"".join([translator.feed(event) for event in decoder.feed(chunk)])
                if out:
                    held.append(out)
                    if _commits(resolved, out):
                        return Prepared(resolved, b"".join(held), True, False, stack, response, translator, decoder)
            closing = b"".join([translator.feed(event) for event in decoder.close()]) + translator.finish()
            held.append(closing)
            _commits(resolved, closing)
        except (aiohttp.ClientError, TimeoutError) as exc:
            await stack.aclose()
            raise transport_error(resolved, exc) from exc
        except UpstreamStreamError as exc:
            await stack.aclose()
            # Nothing reached the client yet, so an in-band failure is as retryable as any other.
            raise GatewayError(exc.status, exc.message, type=exc.type, code=exc.code, retryable=True) from exc
        except BaseException:
            await stack.aclose()
            raise
        await stack.aclose()
        return Prepared(resolved, b"".join(held), stream=True)

    # -- after the commit point ----------------------------------------------------------------------------

    async def _deliver(self, prepared: Prepared, deadlines: Deadlines) -> tuple[web.StreamResponse, str | None]:
        headers = self._headers(prepared.resolved)
        if not prepared.stream:
            return web.Response(body=prepared.body, content_type="application/json", headers=headers), None
        client = web.StreamResponse(status=200, headers={**STREAM_HEADERS, **headers})
        code = None
        try:
            await client.prepare(self.request)
            await client.write(prepared.body)
            if not prepared.finished:
                code = await self._relay_rest(client, prepared, deadlines)
            await client.write_eof()
        finally:
            await prepared.close()
        return client, code

    async def _relay_rest(self, client: web.StreamResponse, prepared: Prepared, deadlines: Deadlines) -> str | None:
        """Relay the stream after its commit point; a failure ends it in-band (its code is returned)."""
        assert prepared.response is not None
        assert prepared.translator is not None
        assert prepared.decoder is not None
        translator, decoder = prepared.translator, prepared.decoder
        try:
            async with asyncio.timeout_at(deadlines.total_at):
                async for chunk in prepared.response.content.iter_any():
                    out = b"".join([translator.feed(event) for event in decoder.feed(chunk)])
                    if out:
                        await client.write(out)
                closing = b"".join([translator.feed(event) for event in decoder.close()]) + translator.finish()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return await _fail_in_band(client, transport_error(prepared.resolved, exc))
        except UpstreamStreamError as exc:
            return await _fail_in_band(client, exc)
        await client.write(closing)
        return None

    # -- transparency --------------------------------------------------------------------------------------

    def _headers(self, served: ResolvedTarget | None) -> dict[str, str]:
        headers = {"x-modelyard-route": self.route.route.id, "x-modelyard-attempts": str(self.attempts)}
        if served is not None:
            headers["x-modelyard-provider"] = served.credential.provider.value
            headers["x-modelyard-upstream-model"] = served.target.model
        return headers

    def _audit(self, status: int, code: str | None, served: ResolvedTarget | None) -> None:
        """One structured line per request: where it went and how it ended, never what it said."""
        record = {
            "request_id": self.request.get(REQUEST_ID),
            "model": self.name,
            "route": self.route.route.id,
            "profile": self.profile,
            "stream": self.inbound.body.get("stream") is True,
            "status": status,
            "code": code,
            "attempts": self.attempts,
            "provider": served.credential.provider.value if served else None,
            "upstream_model": served.target.model if served else None,
            "tried": self.tried,
            "elapsed_ms": round((time.monotonic() - self.started) * 1000, 1),
        }
        audit_log.info("%s", orjson.dumps(record).decode())


def estimate_tokens(body: dict[str, Any]) -> int:
    """A deliberately low estimate of the prompt's tokens: the message text at four characters a token."""
    chars = 0
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return chars // CHARS_PER_TOKEN


def _profile(request: web.Request, body: dict[str, Any]) -> str | None:
    """The profile a request names: the ``x-modelyard-profile`` header, else ``metadata.modelyard_profile``."""
    if header := request.headers.get(PROFILE_HEADER):
        return header.strip()
    metadata = body.get("metadata")
    value = metadata.get("modelyard_profile") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else None


def _commits(resolved: ResolvedTarget, out: bytes) -> bool:
    """Whether translated frames reach the commit point: a frame with content, or the end of the stream.

    Role-only and empty frames do not commit. A frame that is not JSON fails the attempt (it would only
    break the client's parser).
    """
    for block in out.split(b"\n\n"):
        if not block:
            continue
        data = block.removeprefix(b"data: ")
        if block + b"\n\n" == DONE_FRAME:
            return True
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise _malformed(resolved) from None
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and any(delta.get(key) for key in _CONTENT_KEYS):
                return True
    return False


def _valid_json(resolved: ResolvedTarget, body: bytes) -> bytes:
    """``body`` if it is one complete JSON document: a cut or corrupted answer is never relayed as a 200."""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _malformed(resolved) from None
    return body


def _malformed(resolved: ResolvedTarget) -> GatewayError:
    where = f"upstream {resolved.credential.provider.value} ({resolved.credential.id})"
    return GatewayError(
        502, f"{where} sent a malformed answer", type="upstream_error", code="upstream_malformed", retryable=True
    )


def _timeout_error(resolved: ResolvedTarget, what: str) -> GatewayError:
    where = f"upstream {resolved.credential.provider.value} ({resolved.credential.id})"
    return GatewayError(504, f"{where} {what}", type="upstream_error", code="upstream_timeout", retryable=True)


def _payload(body: bytes) -> bytes | io.BytesIO:
    """Large bodies go through a file-like payload, which aiohttp writes without blocking the loop."""
    return body if len(body) < LARGE_BODY else io.BytesIO(body)


async def _fail_in_band(client: web.StreamResponse, error: GatewayError) -> str | None:
    """End a started stream with an OpenAI error event (and no ``[DONE]``), as the SDKs expect."""
    log.warning("stream failed after the commit point: %s", error.code)
    await client.write(frame(orjson.dumps(error.payload())))
    return error.code


def transport_error(resolved: ResolvedTarget, exc: BaseException) -> GatewayError:
    """A connection failure or timeout as a retryable 502/504 that names the upstream, not its key."""
    where = f"upstream {resolved.credential.provider.value} ({resolved.credential.id})"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return _timeout_error(resolved, "did not answer in time")
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
