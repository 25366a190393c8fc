"""Client spans for a request's upstream attempts, made only once the request makes more than one.

Nearly every request is served by its first attempt, and its server span already says where it went (target,
credential, provider, model, usage): a client span per request would double the spans to build (~22 µs a
request in the benchmark) and the spans a tracing backend bills for, and add nothing. As soon as a second
attempt starts (a retry, a fallback, a hedge) every attempt gets its client span under the server span, the
earlier ones with their real start and end times and outcome, so a trace shows exactly what was tried.
The first attempt's upstream then names the server span as its parent in ``traceparent``.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace


class AttemptSpans:
    """The attempts of one request, under its server span (nothing at all when that span is not recording)."""

    def __init__(self, tracer: trace.Tracer, server: trace.Span) -> None:
        self._tracer = tracer
        self.server = server
        self._attempts: list[Attempt] = []

    def begin(self, name: str, attributes: dict[str, Any]) -> Attempt:
        """A new attempt starting now; from the second one on, every attempt has its span."""
        attempt = Attempt(self, name, attributes)
        if self.server.is_recording():
            self._attempts.append(attempt)
            if len(self._attempts) > 1:
                for each in self._attempts:
                    each.materialize()
        return attempt

    def start_span(self, attempt: Attempt) -> trace.Span:
        """``attempt``'s client span, backdated to its start."""
        return self._tracer.start_span(
            attempt.name,
            context=trace.set_span_in_context(self.server),
            kind=trace.SpanKind.CLIENT,
            attributes=attempt.attributes,
            start_time=attempt.started,
        )


class Attempt:
    """One attempt's span facts; a real span once :meth:`materialize` is called."""

    __slots__ = ("_owner", "attributes", "ended", "error", "finished_with", "name", "span", "started")

    def __init__(self, owner: AttemptSpans, name: str, attributes: dict[str, Any]) -> None:
        self._owner = owner
        self.name = name
        self.attributes = attributes
        self.started = time.time_ns()
        self.span: trace.Span | None = None
        self.ended: int | None = None
        self.finished_with: dict[str, Any] = {}
        self.error = False

    def context_span(self) -> trace.Span:
        """The span an upstream call of this attempt names as its parent: its own, else the server span."""
        return self.span if self.span is not None else self._owner.server

    def materialize(self) -> None:
        """Make the span, with whatever this attempt has already recorded (and ended, if it has)."""
        if self.span is not None:
            return
        self.span = self._owner.start_span(self)
        if self.ended is not None:
            self._close(self.span, self.ended)

    def finish(self, attributes: dict[str, Any] | None = None, *, error: bool = False) -> None:
        """The attempt is over: its last attributes and whether it failed; later calls change nothing."""
        if self.ended is not None:
            return
        self.ended = time.time_ns()
        self.finished_with = attributes or {}
        self.error = error
        if self.span is not None:
            self._close(self.span, self.ended)

    def _close(self, span: trace.Span, ended: int) -> None:
        if self.finished_with:
            span.set_attributes(self.finished_with)
        if self.error:
            span.set_status(trace.StatusCode.ERROR)
        span.end(ended)
