"""Sends a request to a route's targets and relays the answer, streamed or whole, to the client.

A request runs in two phases. Until the commit point, attempts are free to fail: the route's balancer
orders the targets, each target may be retried with backoff, a failure the route's ``fallbackOn`` lists
moves on to the next target, and a hedged route races two targets (:mod:`~modelyard_proxy.relay.plan`, each
try being :mod:`~modelyard_proxy.relay.attempt`'s). For a stream the commit point is the first event that
carries content (role-only, start and empty events are held back until then), for a whole answer it is the
complete, valid body; the client's protocol says which is which. After it nothing is retried
(:mod:`~modelyard_proxy.relay.delivery`): a stream that fails ends with the protocol's in-band error event,
so the client never sees a clean-looking truncated answer. This module ties the three together and writes
the one audit line. The run is the same whichever protocol the client speaks.
"""

from __future__ import annotations

import asyncio
import random
import time

from aiohttp import web
from opentelemetry import trace

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.keys import AUDIT, CALLER, COUNTERS, HEALTH, METRICS, REQUEST_ID, SETTINGS, SPAN, TRACER
from modelyard_proxy.providers.base import Inbound
from modelyard_proxy.providers.registry import PROTOCOLS
from modelyard_proxy.relay import conversation, quota
from modelyard_proxy.relay.attempt import Attempts
from modelyard_proxy.relay.attempt_spans import AttemptSpans
from modelyard_proxy.relay.conversation import Turn
from modelyard_proxy.relay.delivery import deliver
from modelyard_proxy.relay.outcomes import CLIENT_CLOSED_REQUEST, CLIENT_DISCONNECTED, request_profile
from modelyard_proxy.relay.plan import Plan
from modelyard_proxy.relay.quota import Quota
from modelyard_proxy.relay.reporting import RequestOutcome, RunRecord, report
from modelyard_proxy.routing.deadlines import Deadlines
from modelyard_proxy.table.store import PLAIN_KEY, ResolvedRoute, ResolvedTarget

#: One generator per process for jitter, balancing and fault sampling (seeding one per request costs more
#: than the rest of the request's routing); not for anything secret.
_RNG = random.Random()  # noqa: S311


async def relay_chat(request: web.Request, inbound: Inbound, name: str, route: ResolvedRoute) -> web.StreamResponse:
    """Serve one chat completion (in any client protocol) over the route's targets."""
    turn = None
    if PROTOCOLS[inbound.schema].keeps_conversations:
        inbound, turn = await conversation.begin(request, inbound)
    run = Run(request, inbound, name, route)
    run.turn = turn
    if run.protocol.wants_stream(inbound.body):
        run.tries.prepare = Attempts.prepare_stream
    return await run.serve()


async def relay_embeddings(
    request: web.Request, inbound: Inbound, name: str, route: ResolvedRoute
) -> web.StreamResponse:
    """Serve one embeddings request over the route's targets."""
    run = Run(request, inbound, name, route)
    run.tries.prepare = Attempts.prepare_embeddings
    return await run.serve()


class Run:
    """One client request: its plan finds an attempt that answers, delivery sends it, the record is reported."""

    __slots__ = (
        "caller",
        "inbound",
        "name",
        "operation",
        "plan",
        "profile",
        "protocol",
        "quota",
        "record",
        "request",
        "route",
        "span",
        "started",
        "tries",
        "turn",
    )

    def __init__(self, request: web.Request, inbound: Inbound, name: str, route: ResolvedRoute) -> None:
        self.request = request
        self.inbound = inbound
        self.name = name
        self.route = route
        self.protocol = PROTOCOLS[inbound.schema]
        self.caller = request.get(CALLER, PLAIN_KEY)
        consumer = self.caller.consumer
        self.profile = request_profile(request, inbound.body) or (consumer.default_profile if consumer else None)
        self.quota: Quota | None = None
        #: The conversation the answer is kept in, for protocols whose requests may continue one.
        self.turn: Turn | None = None
        self.started = time.monotonic()
        self.record = RunRecord()
        app = request.app
        metrics = app[METRICS]
        health = app[HEALTH]
        self.span: trace.Span = request.get(SPAN) or trace.INVALID_SPAN
        self.operation = "embeddings" if request.path.endswith("/embeddings") else "chat"
        if self.span.is_recording():
            self.span.update_name(f"{self.operation} {name}")
        spans = AttemptSpans(app[TRACER], self.span)
        self.tries = Attempts(
            request,
            inbound,
            name,
            route,
            self.record,
            metrics,
            self.span,
            spans,
            health,
            _RNG,
            self.operation,
            self.protocol,
        )
        self.plan = Plan(route, self.tries, self.record, metrics, health, _RNG)

    async def serve(self) -> web.StreamResponse:
        """Find a target that answers, then deliver its answer; one audit line whatever happens.

        A client that leaves cancels the handler (the server runs with ``handler_cancellation``), and so the
        upstream call: that is a client disconnect, not a success.
        """
        deadlines = Deadlines.start(self.plan.policy, self.request.app[SETTINGS])
        status, code, served = 200, None, None
        try:
            if self.caller.consumer is not None:
                await self._admit(deadlines)
            prepared = await self.plan.find(self.profile, deadlines)
            served = prepared.resolved
            response, code = await deliver(
                self.request, prepared, deadlines, self.record, self._headers(served), self.protocol, self.turn
            )
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
            if self.quota is not None:
                self.quota.finish(self.record, answered=served is not None, model=self.name)
                self.plan.metrics.consumer_in_flight.inc((self.quota.consumer.name,), -1)
            report(
                self._outcome(status, code, served),
                self.plan.metrics,
                self.span,
                self.request.app[AUDIT],
                self._captured_messages(),
            )

    async def _admit(self, deadlines: Deadlines) -> None:
        """The consumer's grant, limits and budgets, before any upstream call."""
        app = self.request.app
        self.quota = await quota.admit(
            self.caller,
            app[COUNTERS],
            request_id=self.request.get(REQUEST_ID) or "",
            name=self.name,
            route=self.route,
            targets=self.route.targets_for(self.profile),
            body=self.protocol.estimate_view(self.inbound.body),
            embeddings=self.operation == "embeddings",
            total_seconds=deadlines.remaining(),
        )
        if self.quota is not None:
            self.plan.metrics.consumer_in_flight.inc((self.quota.consumer.name,))

    def _headers(self, served: ResolvedTarget | None) -> dict[str, str]:
        """Transparency: the route and attempts, and once served, where the answer came from; a consumer's rate
        limit state."""
        headers = {"x-modelyard-route": self.route.route.id, "x-modelyard-attempts": str(self.record.attempts)}
        if self.quota is not None:
            headers.update(self.quota.headers())
        if served is not None:
            headers["x-modelyard-provider"] = served.credential.provider.value
            headers["x-modelyard-upstream-model"] = served.target.model
        return headers

    def _outcome(self, status: int, code: str | None, served: ResolvedTarget | None) -> RequestOutcome:
        record = self.record
        ttft = None if record.first_token_at is None else record.first_token_at - self.started
        return RequestOutcome(
            request_id=self.request.get(REQUEST_ID),
            consumer=self.caller.name,
            consumer_labels=self.caller.consumer.labels if self.caller.consumer else None,
            model=self.name,
            route=self.route.route.id,
            profile=self.profile,
            operation=self.operation,
            stream=self.protocol.wants_stream(self.inbound.body),
            status=status,
            code=code,
            attempts=record.attempts,
            served=served,
            tried=record.tried,
            elapsed=time.monotonic() - self.started,
            usage=record.usage,
            cost=record.cost,
            ttft=ttft,
            inter_token=record.inter_token,
            fallback_reason=record.fallback_reason,
        )

    def _captured_messages(self) -> object:
        """The prompt, only when the user opted in to content capture on spans."""
        if not self.request.app[SETTINGS].capture_content:
            return None
        return self.inbound.body.get(self.protocol.prompt_field)
