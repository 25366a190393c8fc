"""A lean tracer for request paths: OpenTelemetry spans at a fraction of the SDK span's cost.

The SDK builds each span for every use an application might make of it: a lock, bounded and validated
attributes, bounded event and link lists, span-limit bookkeeping, start and ending hooks. Profiled in the
proxy under load, a server span and a client span per request cost about 100 µs, as much as the rest of
the gateway's own work. The proxy sets a few dozen primitive attributes per request from its own code, so
a span here is a slotted object with a plain dict until it ends; it then becomes the SDK's own
``ReadableSpan`` and goes to the provider's span processors (batching, export) exactly as an SDK span does.

Kept from the SDK: the provider's sampler (``OTEL_TRACES_SAMPLER``, parent-based decisions), id generator,
resource and processors, W3C context propagation (``trace.set_span_in_context`` works on these spans), and
the exported data. Left out, as the proxy needs none of it: processors' ``on_start`` and ending hooks (the
batch processor does nothing there), links (given to the sampler, not kept), span limits (no span here has
more than ~20 attributes), and attribute validation (every value is a str, bool, int or float written by
this code).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON, Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

if TYPE_CHECKING:
    from opentelemetry.util._decorator import _AgnosticContextManager

_UNSET = Status(StatusCode.UNSET)


class LeanTracer(trace.Tracer):
    """Starts :class:`LeanSpan` objects with an SDK tracer's sampler, ids, resource and processors."""

    def __init__(self, sdk_tracer: sdk_trace.Tracer, scope: InstrumentationScope) -> None:
        self._sampler = sdk_tracer.sampler
        # The SDK's default sampler and ``always_on`` (the instances OTEL_TRACES_SAMPLER names resolve to)
        # decide from the parent alone: decided here, without the sampler's call and its attribute copy.
        self._always_on = self._sampler is ALWAYS_ON
        self._follows_parent = self._sampler is DEFAULT_ON
        self._ids = sdk_tracer.id_generator
        self._random_ids = self._ids.is_trace_id_random()
        self.resource = sdk_tracer.resource
        self.processor = sdk_tracer.span_processor
        self.scope = scope

    def start_span(  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,  # noqa: ARG002 - exceptions are recorded explicitly, if at all
        set_status_on_exception: bool = True,  # noqa: ARG002
    ) -> trace.Span:
        """A recording span if the sampler samples it, else a non-recording one carrying the ids onward."""
        current = trace.get_current_span(context).get_span_context()
        parent: trace.SpanContext | None = None
        if current.is_valid:
            parent, trace_id = current, current.trace_id
            random_trace_id = bool(current.trace_flags & trace.TraceFlags.RANDOM_TRACE_ID)
        else:
            trace_id, random_trace_id = self._ids.generate_trace_id(), self._random_ids
        if self._always_on or self._follows_parent:
            decision = (
                Decision.RECORD_AND_SAMPLE
                if self._always_on or parent is None or parent.trace_flags.sampled
                else Decision.DROP
            )
            trace_state, extra = (parent.trace_state if parent else None), None
        else:
            sampled = self._sampler.should_sample(context, trace_id, name, kind, attributes, links)
            decision, trace_state, extra = sampled.decision, sampled.trace_state, sampled.attributes
        flags = trace.TraceFlags.SAMPLED if decision is Decision.RECORD_AND_SAMPLE else trace.TraceFlags.DEFAULT
        if random_trace_id:
            flags |= trace.TraceFlags.RANDOM_TRACE_ID
        span_context = trace.SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=trace.TraceFlags(flags),
            trace_state=trace_state,
        )
        if decision is Decision.DROP:
            return trace.NonRecordingSpan(span_context)
        values = dict(attributes) if attributes else {}
        if extra:
            values.update(extra)
        return LeanSpan(self, name, span_context, parent, kind, values, start_time or time.time_ns())

    def start_as_current_span(  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _AgnosticContextManager[trace.Span]:
        """:meth:`start_span`, made the current span for the ``with`` block."""
        span = self.start_span(name, context, kind, attributes, links, start_time)
        return trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        )


class LeanSpan(trace.Span):
    """A recording span: a plain attribute dict until :meth:`end` hands it to the processors."""

    __slots__ = (
        "_attributes",
        "_context",
        "_end",
        "_events",
        "_kind",
        "_name",
        "_parent",
        "_start",
        "_status",
        "_tracer",
    )

    def __init__(  # noqa: PLR0917 - built in one place, by LeanTracer
        self,
        tracer: LeanTracer,
        name: str,
        context: trace.SpanContext,
        parent: trace.SpanContext | None,
        kind: trace.SpanKind,
        attributes: dict[str, Any],
        start: int,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._start = start
        self._end: int | None = None
        self._status = _UNSET
        self._events: list[sdk_trace.Event] = []

    def get_span_context(self) -> trace.SpanContext:
        """The span's ids, for propagation."""
        return self._context

    def is_recording(self) -> bool:
        """Until it ends."""
        return self._end is None

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        """One attribute (ignored once ended)."""
        if self._end is None:
            self._attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        """Several attributes in one call (ignored once ended)."""
        if self._end is None:
            self._attributes.update(attributes)

    def update_name(self, name: str) -> None:
        """Rename the span (ignored once ended)."""
        if self._end is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """ERROR or OK; as in the SDK, an OK status is final and UNSET never overrides."""
        if self._end is not None or self._status.status_code is StatusCode.OK:
            return
        new = status if isinstance(status, Status) else Status(status, description)
        if new.status_code is not StatusCode.UNSET:
            self._status = new

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        """A timestamped event (ignored once ended)."""
        if self._end is None:
            self._events.append(sdk_trace.Event(name, attributes, timestamp or time.time_ns()))

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,  # noqa: ARG002 - deprecated in the convention
    ) -> None:
        """An ``exception`` event with the type and message (never the traceback's locals)."""
        values: dict[str, types.AttributeValue] = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
        }
        values.update(attributes or {})
        self.add_event("exception", values, timestamp)

    def end(self, end_time: int | None = None) -> None:
        """Finish the span and hand it to the provider's processors (once; later calls do nothing)."""
        if self._end is not None:
            return
        self._end = end_time or time.time_ns()
        tracer = self._tracer
        tracer.processor.on_end(
            sdk_trace.ReadableSpan(
                name=self._name,
                context=self._context,
                parent=self._parent,
                resource=tracer.resource,
                attributes=self._attributes,
                events=self._events,
                kind=self._kind,
                status=self._status,
                start_time=self._start,
                end_time=self._end,
                instrumentation_scope=tracer.scope,
            )
        )


def lean_tracer(provider: trace.TracerProvider, name: str, version: str | None = None) -> trace.Tracer:
    """A :class:`LeanTracer` over an SDK provider's configuration; any other provider's own tracer (the no-op
    provider's costs nothing already)."""
    tracer = provider.get_tracer(name, version)
    if isinstance(tracer, sdk_trace.Tracer):
        return LeanTracer(tracer, InstrumentationScope(name, version))
    return tracer
