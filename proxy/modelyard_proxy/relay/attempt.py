"""One attempt at one target: its context-window check, the upstream call up to the commit point, its verdict.

An attempt is bounded by the first-token deadline; its outcome feeds the target's health, the attempt metrics
and (from a request's second attempt on) a client span. Which target is tried, how often and when, is the
plan's (:mod:`modelyard_proxy.relay.plan`); what happens after the commit point is the delivery's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from opentelemetry import trace

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import SSEDecoder
from modelyard_proxy.keys import REQUEST_ID, TRACE_PARENT, UPSTREAM
from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.observability.telemetry import GENAI_PROVIDER, trace_headers
from modelyard_proxy.providers.base import CallContext, Inbound, ProviderAdapter, UpstreamCall, UpstreamStreamError
from modelyard_proxy.providers.ingress.openai_chat import CHAT
from modelyard_proxy.providers.ingress.protocol import IngressProtocol
from modelyard_proxy.providers.registry import adapter_for
from modelyard_proxy.providers.schemas import Schema
from modelyard_proxy.relay import estimate
from modelyard_proxy.relay.attempt_spans import Attempt, AttemptSpans
from modelyard_proxy.relay.egress import egress_for
from modelyard_proxy.relay.outcomes import (
    UNREADABLE,
    Prepared,
    read_embeddings,
    timeout_error,
    translated,
    transport_error,
    unreadable,
    whole_answer,
    with_trace,
)
from modelyard_proxy.relay.reporting import RunRecord
from modelyard_proxy.routing import faults, policy
from modelyard_proxy.routing.deadlines import Deadlines
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.table.store import ResolvedRoute, ResolvedTarget
from modelyard_proxy.upstream import TRANSPORT_ERRORS, UpstreamClient
from modelyard_routing import Policy


def call_context(
    inbound: Inbound,
    route_name: str,
    resolved: ResolvedTarget,
    request_id: str,
    trace_headers: dict[str, str] | None = None,
    *,
    protocol: IngressProtocol = CHAT,
    forwarded_headers: dict[str, str] | None = None,
) -> CallContext:
    """The per-attempt context adapters translate with."""
    body = inbound.body
    stream = protocol.wants_stream(body)
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    return CallContext(
        public_model=route_name,
        upstream_model=resolved.target.model,
        credential=resolved.credential,
        stream=stream,
        include_usage=include_usage,
        created=int(time.time()),
        completion_id=f"{protocol.id_prefix}{request_id}",
        encoding_format="base64" if body.get("encoding_format") == "base64" else "float",
        trace_headers=trace_headers or {},
        parallel_tool_calls=protocol.parallel_tool_calls(body),
        forwarded_headers=forwarded_headers or {},
    )


#: One of ``Attempts``' ``prepare_*`` functions, unbound: a bound method kept on its own instance would be a
#: reference cycle, and every request's objects would then wait for the cyclic GC (stalls of milliseconds).
Prepare = Callable[["Attempts", ResolvedTarget, CallContext, Deadlines], Awaitable[Prepared]]


@dataclasses.dataclass(slots=True, eq=False)
class Attempts:
    """How one request attempts a target: the same call for every target the plan picks, one record for all."""

    request: web.Request
    inbound: Inbound
    name: str
    route: ResolvedRoute
    record: RunRecord
    metrics: Metrics
    span: trace.Span
    spans: AttemptSpans
    health: HealthRegistry
    rng: random.Random
    operation: str
    protocol: IngressProtocol
    policy: Policy = dataclasses.field(init=False)
    #: What an attempt asks the upstream for (a whole chat answer by default; see the ``prepare_*`` methods).
    prepare: Prepare = dataclasses.field(init=False)
    _prompt_tokens: int | None = dataclasses.field(init=False, default=None)
    #: The client headers a native upstream receives (none for Chat Completions clients).
    _forwarded: dict[str, str] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.policy = self.route.route.policy
        self.prepare = Attempts.prepare_chat
        self._forwarded = self.protocol.forwarded(self.request.headers) if self.protocol.forwarded_headers else {}

    def adapter(self, resolved: ResolvedTarget) -> ProviderAdapter:
        """The target's adapter for the client's protocol."""
        schema = self.protocol.schema
        return resolved.adapter if schema is Schema.OPENAI_CHAT else adapter_for(resolved.credential.provider, schema)

    def check_fits(self, resolved: ResolvedTarget) -> None:
        """Refuse a target whose context window the prompt cannot fit, before anything is sent to it."""
        window = resolved.target.context_window
        if window is None:
            return
        if self._prompt_tokens is None:
            self._prompt_tokens = estimate.chat_tokens_at_least(self.protocol.estimate_view(self.inbound.body))
        if self._prompt_tokens > window:
            self.record.tried.append({"target": resolved.target.id, "code": "context_length_exceeded", "sent": False})
            raise GatewayError(
                400,
                f"the prompt (about {self._prompt_tokens} tokens) does not fit the context window of "
                f"{resolved.target.model} ({window} tokens)",
                code="context_length_exceeded",
                param=self.protocol.prompt_field,
            )

    async def run(self, resolved: ResolvedTarget, deadlines: Deadlines, *, retry: int, hedge: bool) -> Prepared:
        """One attempt, bounded by the first-token deadline, its outcome fed to the target's health.

        Its client span stays open past a success until the answer is delivered (or dropped, for a hedging
        loser); a failed attempt ends it with ``error.type``.
        """
        record = self.record
        record.attempts += 1
        health = self.health[resolved.target.id]
        health.begin()
        started = time.monotonic()
        attempt = self._begin(resolved, retry=retry, hedge=hedge)
        carrier = trace_headers(attempt.context_span(), self.request.get(TRACE_PARENT))
        ctx = call_context(
            self.inbound,
            self.name,
            resolved,
            self.request[REQUEST_ID],
            carrier,
            protocol=self.protocol,
            forwarded_headers=self._forwarded,
        )
        budget, bounded_by_total = deadlines.attempt_budget()
        try:
            async with asyncio.timeout(budget):
                if record.attempts == 1 and self.policy.faults is not None:  # a rehearsed outage hits the first choice
                    await faults.inject(self.policy.faults, resolved.credential, self.rng)
                prepared = await self.prepare(self, resolved, ctx, deadlines)
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
                record.tried.append({"target": resolved.target.id, "code": "cancelled"})
            attempt.finish({"error.type": "cancelled"})
            raise
        elapsed = time.monotonic() - started
        health.record(self.policy, ok=True, latency=elapsed)
        record.tried.append({"target": resolved.target.id, "code": None})
        labels = resolved.labels
        self.metrics.attempts.inc((*labels, "ok"))
        self.metrics.attempt_duration.observe((*labels, "ok"), elapsed)
        prepared.attempt = attempt
        return prepared

    def _begin(self, resolved: ResolvedTarget, *, retry: int, hedge: bool) -> Attempt:
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
                "modelyard.attempt": self.record.attempts,
            }
            if retry:
                attributes["modelyard.retry"] = retry
            if hedge:
                attributes["modelyard.hedge"] = True
            if self.record.fallback_reason is not None:
                attributes["modelyard.fallback_reason"] = self.record.fallback_reason
        return self.spans.begin(f"{self.operation} {resolved.target.model}", attributes)

    def _abandoned(self, resolved: ResolvedTarget, error: GatewayError, attempt: Attempt) -> None:
        """An attempt cut by the request's total deadline: no verdict on the target's health."""
        self.health[resolved.target.id].probing = False
        self.record.tried.append({"target": resolved.target.id, "code": error.code})
        attempt.finish({"error.type": "total_deadline"}, error=True)

    def _failed(self, resolved: ResolvedTarget, error: GatewayError, attempt: Attempt, started: float) -> None:
        health = self.health[resolved.target.id]
        health.record(self.policy, ok=not policy.counts_against_health(error))
        self.record.tried.append({"target": resolved.target.id, "code": error.code})
        outcome = error.code or error.type
        labels = (*resolved.labels, outcome)
        self.metrics.attempts.inc(labels)
        self.metrics.attempt_duration.observe(labels, time.monotonic() - started)
        attempt.finish({"error.type": outcome, "modelyard.upstream_status": error.status}, error=True)

    # -- what an attempt asks the upstream for -------------------------------------------------------------

    async def prepare_chat(self, resolved: ResolvedTarget, ctx: CallContext, deadlines: Deadlines) -> Prepared:
        """A whole chat answer, translated and checked to be one complete answer of the client's protocol."""
        adapter = self.adapter(resolved)
        call = adapter.chat_call(self.inbound, ctx)
        if resolved.authorizer is not None:
            await resolved.authorizer.authorize(call)
        call.headers = with_trace(call.headers, ctx)
        payload = await whole_exchange(
            self.request.app[UPSTREAM], adapter, resolved, call, ctx, deadlines.connect, deadlines.idle
        )
        answer = translated(resolved, adapter.chat_result, payload, ctx)
        prepared = whole_answer(resolved, answer, self.protocol.read_answer)
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
        adapter = resolved.adapter
        call = adapter.embeddings_call(self.inbound, ctx)
        if resolved.authorizer is not None:
            await resolved.authorizer.authorize(call)
        call.headers = with_trace(call.headers, ctx)
        payload = await whole_exchange(
            self.request.app[UPSTREAM], adapter, resolved, call, ctx, deadlines.connect, deadlines.idle
        )
        return whole_answer(resolved, translated(resolved, adapter.embeddings_result, payload, ctx), read_embeddings)

    async def prepare_stream(self, resolved: ResolvedTarget, ctx: CallContext, deadlines: Deadlines) -> Prepared:
        """Open the upstream stream and read until the first content frame (the commit point) or its end."""
        adapter = self.adapter(resolved)
        protocol = self.protocol
        call = adapter.chat_call(self.inbound, ctx)
        if resolved.authorizer is not None:
            await resolved.authorizer.authorize(call)
        translator = adapter.chat_stream(ctx)
        decoder = SSEDecoder()
        held: list[bytes] = []
        response = None
        try:
            upstream = self.request.app[UPSTREAM]
            response = await upstream.request(
                call.method,
                call.url,
                with_trace(call.headers, ctx),
                call.body,
                connect_timeout=deadlines.connect,
                read_timeout=deadlines.idle,
                egress=egress_for(upstream, resolved.credential),
            )
            if response.status >= 300:
                payload = await response.read()
                raise adapter.error_from(response.status, response.headers, payload, ctx)
            while chunk := await response.readany():
                out = translator.translate(decoder, chunk)
                if out:
                    held.append(out)
                    if protocol.commits(out):
                        if any(protocol.refused(frames) for frames in held):
                            self._refuse(resolved)
                        prepared = Prepared(resolved, b"".join(held), True, False, response, translator, decoder)
                        response = None  # the stream's upstream is the Prepared's to close now
                        return prepared
            closing = translator.close(decoder)
            held.append(closing)
            protocol.commits(closing)  # the last frames must be readable too
            if protocol.refused(closing):
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


async def whole_exchange(  # noqa: PLR0917
    upstream: UpstreamClient,
    adapter: ProviderAdapter,
    resolved: ResolvedTarget,
    call: UpstreamCall,
    ctx: CallContext,
    connect_timeout: float,
    read_timeout: float,
) -> bytes:
    """``call`` sent through the credential's way out and its whole answer read; a transport failure becomes the
    gateway's error naming the upstream, a non-2xx answer the adapter's."""
    try:
        response = await upstream.request(
            call.method,
            call.url,
            call.headers,
            call.body,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            egress=egress_for(upstream, resolved.credential),
        )
        payload = await response.read()
    except TRANSPORT_ERRORS as exc:
        raise transport_error(resolved, exc) from exc
    if response.status >= 300:
        raise adapter.error_from(response.status, response.headers, payload, ctx)
    return payload
