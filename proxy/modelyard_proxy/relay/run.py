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
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from opentelemetry import trace

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.keys import AUDIT, HEALTH, METRICS, REQUEST_ID, SETTINGS, SPAN, TRACE_PARENT, TRACER, UPSTREAM
from modelyard_proxy.observability.accounting import Usage, cost_usd, usage_from
from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.observability.telemetry import GENAI_PROVIDER, trace_headers
from modelyard_proxy.providers.base import CallContext, Inbound, UpstreamStreamError
from modelyard_proxy.relay.attempts import Attempt, AttemptSpans
from modelyard_proxy.relay.outcomes import (
    CLIENT_CLOSED_REQUEST,
    CLIENT_DISCONNECTED,
    FILTERED,
    UNREADABLE,
    ClientGone,
    Prepared,
    client_disconnected,
    commits,
    estimate_tokens,
    fail_in_band,
    request_profile,
    send,
    timeout_error,
    translated,
    transport_error,
    unreadable,
    whole_answer,
    with_trace,
)
from modelyard_proxy.relay.reporting import RequestOutcome, report
from modelyard_proxy.routing import faults, policy
from modelyard_proxy.routing.balancers import plan
from modelyard_proxy.routing.deadlines import Deadlines
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.table.store import ResolvedRoute, ResolvedTarget
from modelyard_proxy.upstream import TRANSPORT_ERRORS

log = logging.getLogger(__name__)
#: One generator per process for jitter, balancing and fault sampling (seeding one per request costs more
#: than the rest of the request's routing); not for anything secret.
_RNG = random.Random()  # noqa: S311

STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: What a whole answer cost, in USD (streams report it in the audit log and metrics only: headers go first).
COST_HEADER = "x-modelyard-cost-usd"
#: An upstream asking for a longer pause than this is not waited for (as openai-python does past 60-120 s).
MAX_RETRY_AFTER = 60.0


def call_context(
    inbound: Inbound,
    route_name: str,
    resolved: ResolvedTarget,
    request_id: str,
    trace_headers: dict[str, str] | None = None,
) -> CallContext:
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
        trace_headers=trace_headers or {},
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
    )


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
        self.rng = _RNG
        self.profile = request_profile(request, inbound.body)
        self.attempts = 0
        self.tried: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self._prompt_tokens: int | None = None
        self.metrics: Metrics = request.app[METRICS]
        self.tracer: trace.Tracer = request.app[TRACER]
        self.span: trace.Span = request.get(SPAN) or trace.INVALID_SPAN
        self.operation = "embeddings" if request.path.endswith("/embeddings") else "chat"
        self.stream = inbound.body.get("stream") is True
        #: Why the run left its previous target (the failure's code), for the next attempt's span.
        self.fallback_reason: str | None = None
        self.usage: Usage | None = None
        self.cost: float | None = None
        self.first_token_at: float | None = None
        self.inter_token: float | None = None
        if self.span.is_recording():
            self.span.update_name(f"{self.operation} {name}")
        self.attempt_spans = AttemptSpans(self.tracer, self.span)

    # -- the pre-commit phase: plan, retry, fall back, hedge ---------------------------------------------

    async def serve(self, prepare: Prepare) -> web.StreamResponse:
        """Find a target that answers, then deliver its answer; one audit line whatever happens.

        The total deadline needs no timer of its own before the commit point: every attempt's budget ends by
        it, and no backoff sleeps past it. A client that leaves cancels the handler (the server runs with
        ``handler_cancellation``), and so the upstream call: that is a client disconnect, not a success.
        """
        deadlines = Deadlines.start(self.policy, self.request.app[SETTINGS])
        status, code, served = 200, None, None
        try:
            prepared = await self._find(prepare, deadlines)
            served = prepared.resolved
            response, code = await self._deliver(prepared, deadlines)
            return response
        except GatewayError as exc:
            status, code = exc.status, exc.code
            exc.extra_headers.update(self._headers(None))
            exc.reported = True
            raise
        except asyncio.CancelledError:
            status, code = CLIENT_CLOSED_REQUEST, CLIENT_DISCONNECTED
            raise
        finally:
            report(
                self._outcome(status, code, served),
                self.metrics,
                self.span,
                self.request.app[AUDIT],
                self._captured_messages(),
            )

    async def _find(self, prepare: Prepare, deadlines: Deadlines) -> Prepared:
        candidates = self.route.targets_for(self.profile)
        order = plan(
            self.policy.strategy,
            candidates.targets,
            self.health,
            self.rng,
            one_per_priority=candidates.one_per_priority,
        )
        rest = order
        if self.policy.strategy == "hedge" and len(order) > 1:
            try:
                return await self._hedge(prepare, deadlines, order[0], order[1])
            except GatewayError as exc:
                rest = order[2:]
                if not self._can_fall_back(exc, rest, deadlines):
                    raise
                self._fell_back(exc)
        for index, resolved in enumerate(rest):
            try:
                return await self._over_target(prepare, deadlines, resolved)
            except GatewayError as exc:
                if not self._can_fall_back(exc, rest[index + 1 :], deadlines):
                    raise
                log.warning("target %s failed (%s), falling back", resolved.target.id, exc.code)
                self._fell_back(exc)
        raise AssertionError("unreachable: the last target's failure is raised")  # pragma: no cover

    def _can_fall_back(self, exc: GatewayError, rest: list[ResolvedTarget], deadlines: Deadlines) -> bool:
        """Whether the route moves on after ``exc``: it falls back on this failure, a target is left, and
        attempts and time remain (else the failure is the answer, and no fallback is counted)."""
        return bool(rest) and policy.falls_back(exc, self.policy) and not self._attempts_exhausted(deadlines)

    def _fell_back(self, exc: GatewayError) -> None:
        self.fallback_reason = exc.code or exc.type
        self.metrics.fallbacks.inc((self.route.route.id, self.fallback_reason))

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
                        extra.close()
                    return winners[0]
                if pending_second and (not done or not tasks):
                    pending_second = False
                    if last is None or policy.falls_back(last, self.policy):
                        self.metrics.hedges.inc((self.route.route.id,))
                        tasks.add(asyncio.ensure_future(self._over_target(prepare, deadlines, second, hedge=True)))
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    loser = await task
                    loser.close()  # it reached the commit point too late: never billed to this stream
        assert last is not None
        raise last

    async def _over_target(
        self, prepare: Prepare, deadlines: Deadlines, resolved: ResolvedTarget, *, hedge: bool = False
    ) -> Prepared:
        """Attempts at one target: retried with backoff while the failure is transient and time allows."""
        self._check_fits(resolved)
        retry = 0
        while True:
            try:
                return await self._attempt(prepare, deadlines, resolved, retry=retry, hedge=hedge)
            except GatewayError as exc:
                if not policy.retries_same_target(exc, self.policy) or retry + 1 >= self.policy.attempts:
                    raise
                if self._attempts_exhausted(deadlines):
                    raise
                wait = policy.backoff(self.policy, retry, self.rng, exc.retry_after)
                remaining = deadlines.remaining()
                if wait > MAX_RETRY_AFTER or (remaining is not None and wait >= remaining):
                    raise  # waiting would outlast the deadline: fall back now instead
                retry += 1
                self.metrics.retries.inc(resolved.labels)
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

    async def _attempt(
        self, prepare: Prepare, deadlines: Deadlines, resolved: ResolvedTarget, *, retry: int, hedge: bool
    ) -> Prepared:
        """One attempt, bounded by the first-token deadline, its outcome fed to the target's health.

        Its client span stays open past a success until the answer is delivered (or dropped, for a hedging
        loser); a failed attempt ends it with ``error.type``.
        """
        self.attempts += 1
        health = self.health[resolved.target.id]
        health.begin()
        started = time.monotonic()
        attempt = self._begin_attempt(resolved, retry=retry, hedge=hedge)
        carrier = trace_headers(attempt.context_span(), self.request.get(TRACE_PARENT))
        ctx = call_context(self.inbound, self.name, resolved, self.request[REQUEST_ID], carrier)
        budget, bounded_by_total = deadlines.attempt_budget()
        try:
            async with asyncio.timeout(budget):
                if self.attempts == 1 and self.policy.faults is not None:  # a rehearsed outage hits the first choice
                    await faults.inject(self.policy.faults, resolved.credential, self.rng)
                prepared = await prepare(resolved, ctx, deadlines)
        except TimeoutError:
            if bounded_by_total:  # the request is out of time, whichever target was trying
                error = GatewayError(
                    504,
                    f"no target of route {self.route.route.id} answered within its total deadline",
                    type="upstream_error",
                    code="upstream_timeout",
                )
                self._abandoned(resolved, error, attempt)
            else:
                error = timeout_error(resolved, "sent no first token in time")
                self._failed(resolved, error, attempt, started)
            raise error from None
        except GatewayError as exc:
            self._failed(resolved, exc, attempt, started)
            raise
        except BaseException as exc:
            health.probing = False
            if isinstance(exc, asyncio.CancelledError):  # the client left, or another hedged attempt won
                self.tried.append({"target": resolved.target.id, "code": "cancelled"})
            attempt.finish({"error.type": "cancelled"})
            raise
        elapsed = time.monotonic() - started
        health.record(self.policy, ok=True, latency=elapsed)
        self.tried.append({"target": resolved.target.id, "code": None})
        labels = resolved.labels
        self.metrics.attempts.inc((*labels, "ok"))
        self.metrics.attempt_duration.observe((*labels, "ok"), elapsed)
        prepared.attempt = attempt
        return prepared

    def _begin_attempt(self, resolved: ResolvedTarget, *, retry: int, hedge: bool) -> Attempt:
        """The attempt's span facts, every attribute known now (the route is the server span's)."""
        provider = resolved.credential.provider.value
        attributes: dict[str, str | int | bool] = {}
        if self.span.is_recording():
            attributes = {
                "gen_ai.operation.name": self.operation,
                "gen_ai.provider.name": GENAI_PROVIDER.get(provider, provider),
                "gen_ai.request.model": resolved.target.model,
                "modelyard.target": resolved.target.id,
                "modelyard.credential": resolved.credential.id,
                "modelyard.attempt": self.attempts,
            }
            if retry:
                attributes["modelyard.retry"] = retry
            if hedge:
                attributes["modelyard.hedge"] = True
            if self.fallback_reason is not None:
                attributes["modelyard.fallback_reason"] = self.fallback_reason
        return self.attempt_spans.begin(f"{self.operation} {resolved.target.model}", attributes)

    def _abandoned(self, resolved: ResolvedTarget, error: GatewayError, attempt: Attempt) -> None:
        """An attempt cut by the request's total deadline: no verdict on the target's health."""
        self.health[resolved.target.id].probing = False
        self.tried.append({"target": resolved.target.id, "code": error.code})
        attempt.finish({"error.type": "total_deadline"}, error=True)

    def _failed(self, resolved: ResolvedTarget, error: GatewayError, attempt: Attempt, started: float) -> None:
        health = self.health[resolved.target.id]
        health.record(self.policy, ok=not policy.counts_against_health(error))
        self.tried.append({"target": resolved.target.id, "code": error.code})
        outcome = error.code or error.type
        labels = (*resolved.labels, outcome)
        self.metrics.attempts.inc(labels)
        self.metrics.attempt_duration.observe(labels, time.monotonic() - started)
        attempt.finish({"error.type": outcome, "modelyard.upstream_status": error.status}, error=True)

    # -- attempts ------------------------------------------------------------------------------------------

    async def prepare_chat(self, resolved: ResolvedTarget, ctx: CallContext, deadlines: Deadlines) -> Prepared:
        """A whole chat answer, translated and checked to be complete JSON."""
        call = resolved.adapter.chat_call(self.inbound, ctx)
        payload = await self._exchange(
            resolved, call.method, call.url, call.body, with_trace(call.headers, ctx), ctx, deadlines
        )
        prepared = whole_answer(resolved, translated(resolved, resolved.adapter.chat_result, payload, ctx))
        if prepared.filtered:
            self._refuse(resolved)
        return prepared

    def _refuse(self, resolved: ResolvedTarget) -> None:
        """A refusal becomes a failed attempt when the route falls back on ``contentPolicy`` (else it is the answer).

        Only reachable before the commit point: nothing of the refused answer has reached the client.
        """
        if "contentPolicy" in self.policy.fallback_on:
            where = f"upstream {resolved.credential.provider.value} ({resolved.credential.id})"
            raise GatewayError(400, f"{where} refused to answer (content filter)", code="content_filter")

    async def prepare_embeddings(self, resolved: ResolvedTarget, ctx: CallContext, deadlines: Deadlines) -> Prepared:
        """A whole embeddings answer."""
        call = resolved.adapter.embeddings_call(self.inbound, ctx)
        payload = await self._exchange(
            resolved, call.method, call.url, call.body, with_trace(call.headers, ctx), ctx, deadlines
        )
        return whole_answer(resolved, translated(resolved, resolved.adapter.embeddings_result, payload, ctx), "data")

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
        try:
            response = await self.request.app[UPSTREAM].request(
                method, url, headers, body, connect_timeout=deadlines.connect, read_timeout=deadlines.idle
            )
            payload = await response.read()
        except TRANSPORT_ERRORS as exc:
            raise transport_error(resolved, exc) from exc
        if response.status >= 300:
            raise resolved.adapter.error_from(response.status, response.headers, payload, ctx)
        return payload

    async def prepare_stream(self, resolved: ResolvedTarget, ctx: CallContext, deadlines: Deadlines) -> Prepared:
        """Open the upstream stream and read until the first content frame (the commit point) or its end."""
        call = resolved.adapter.chat_call(self.inbound, ctx)
        translator = resolved.adapter.chat_stream(ctx)
        decoder = SSEDecoder()
        held: list[bytes] = []
        response = None
        try:
            response = await self.request.app[UPSTREAM].request(
                call.method,
                call.url,
                with_trace(call.headers, ctx),
                call.body,
                connect_timeout=deadlines.connect,
                read_timeout=deadlines.idle,
            )
            if response.status >= 300:
                payload = await response.read()
                raise resolved.adapter.error_from(response.status, response.headers, payload, ctx)
            while chunk := await response.readany():
                out = translator.translate(decoder, chunk)
                if out:
                    held.append(out)
                    if commits(resolved, out):
                        if any(FILTERED.search(frames) for frames in held):
                            self._refuse(resolved)
                        prepared = Prepared(resolved, b"".join(held), True, False, response, translator, decoder)
                        response = None  # the stream's upstream is the Prepared's to close now
                        return prepared
            closing = translator.close(decoder)
            held.append(closing)
            commits(resolved, closing)
            if FILTERED.search(closing):
                self._refuse(resolved)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(resolved, exc) from exc
        except UpstreamStreamError as exc:
            # Nothing reached the client yet, so an in-band failure is as retryable as any other.
            raise GatewayError(exc.status, exc.message, type=exc.type, code=exc.code, retryable=True) from exc
        except UNREADABLE as exc:
            raise unreadable(resolved, exc) from None
        finally:
            if response is not None:
                response.close()
        return Prepared(resolved, b"".join(held), stream=True)

    # -- after the commit point ----------------------------------------------------------------------------

    async def _deliver(self, prepared: Prepared, deadlines: Deadlines) -> tuple[web.StreamResponse, str | None]:
        headers = self._headers(prepared.resolved)
        if not prepared.stream:
            self._account(prepared.resolved, prepared.usage)
            if self.cost is not None:
                headers[COST_HEADER] = f"{self.cost:.8f}"
            gone = self.request.transport is None or self.request.transport.is_closing()
            self._end_attempt(prepared, CLIENT_DISCONNECTED if gone else None)
            prepared.close()
            if gone:  # it left while the answer was on its way (and so was billed)
                raise client_disconnected()
            return web.Response(body=prepared.body, content_type="application/json", headers=headers), None
        client = web.StreamResponse(status=200, headers={**STREAM_HEADERS, **headers})
        code = None
        try:
            await client.prepare(self.request)
            self.first_token_at = time.monotonic()
            await send(client, prepared.body)
            if not prepared.finished:
                code = await self._relay_rest(client, prepared, deadlines)
            await client.write_eof()
        except (ClientGone, ConnectionError):
            code = CLIENT_DISCONNECTED
            raise client_disconnected() from None
        except asyncio.CancelledError:
            code = CLIENT_DISCONNECTED
            raise
        finally:
            translator = prepared.translator
            self._account(prepared.resolved, usage_from(translator.usage) if translator is not None else None)
            self._end_attempt(prepared, code)
            prepared.close()
        return client, code

    def _account(self, served: ResolvedTarget, usage: Usage | None) -> None:
        """The answer's usage and what it cost (None when the upstream reported no usage or has no price)."""
        self.usage = usage
        if usage is None:
            return
        self.cost = None if served.price is None else cost_usd(usage, served.price)

    def _end_attempt(self, prepared: Prepared, code: str | None) -> None:
        if prepared.attempt is None:
            return
        attributes: dict[str, str | int] = {"gen_ai.response.model": prepared.resolved.target.model}
        if self.usage is not None:
            attributes["gen_ai.usage.input_tokens"] = self.usage.input
            attributes["gen_ai.usage.output_tokens"] = self.usage.output
        if code is not None:
            attributes["error.type"] = code
        prepared.attempt.finish(attributes, error=code is not None)

    async def _relay_rest(self, client: web.StreamResponse, prepared: Prepared, deadlines: Deadlines) -> str | None:
        """Relay the stream after its commit point; a failure ends it in-band (its code is returned)."""
        upstream = prepared.upstream
        assert upstream is not None
        assert prepared.translator is not None
        assert prepared.decoder is not None
        translator, decoder = prepared.translator, prepared.decoder
        frames, last = 0, self.first_token_at
        try:
            async with asyncio.timeout_at(deadlines.total_at):
                while chunk := await upstream.readany():
                    out = translator.translate(decoder, chunk)
                    if out:
                        await send(client, out)
                        frames += 1
                        last = time.monotonic()
                closing = translator.close(decoder)
            if frames and last is not None and self.first_token_at is not None:
                # Per stream, not per chunk: the mean gap between writes after the first content frame.
                self.inter_token = (last - self.first_token_at) / frames
        except TRANSPORT_ERRORS as exc:
            return await fail_in_band(client, transport_error(prepared.resolved, exc))
        except UpstreamStreamError as exc:
            return await fail_in_band(client, exc)
        except UNREADABLE as exc:
            return await fail_in_band(client, unreadable(prepared.resolved, exc))
        await send(client, closing)
        return None

    # -- transparency --------------------------------------------------------------------------------------

    def _headers(self, served: ResolvedTarget | None) -> dict[str, str]:
        headers = {"x-modelyard-route": self.route.route.id, "x-modelyard-attempts": str(self.attempts)}
        if served is not None:
            headers["x-modelyard-provider"] = served.credential.provider.value
            headers["x-modelyard-upstream-model"] = served.target.model
        return headers

    def _outcome(self, status: int, code: str | None, served: ResolvedTarget | None) -> RequestOutcome:
        ttft = None if self.first_token_at is None else self.first_token_at - self.started
        return RequestOutcome(
            request_id=self.request.get(REQUEST_ID),
            model=self.name,
            route=self.route.route.id,
            profile=self.profile,
            operation=self.operation,
            stream=self.stream,
            status=status,
            code=code,
            attempts=self.attempts,
            served=served,
            tried=self.tried,
            elapsed=time.monotonic() - self.started,
            usage=self.usage,
            cost=self.cost,
            ttft=ttft,
            inter_token=self.inter_token,
            fallback_reason=self.fallback_reason,
        )

    def _captured_messages(self) -> object:
        """The prompt, only when the user opted in to content capture on spans."""
        return self.inbound.body.get("messages") if self.request.app[SETTINGS].capture_content else None
