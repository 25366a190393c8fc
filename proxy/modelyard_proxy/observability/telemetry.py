"""The proxy's tracing vocabulary: GenAI attribute values, trace-context propagation, content-capture opt-in.

Providers come from :mod:`modelyard_tracing` (shared with the operator).

The provider is passed around (an app key, a constructor argument), never installed globally, so tests and
embedders each get their own.
"""

from __future__ import annotations

import os

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

#: W3C trace context only: ``traceparent``/``tracestate`` from clients, and to upstreams.
PROPAGATOR = TraceContextTextMapPropagator()
#: Opt-in capture of prompt and completion text on spans (the GenAI convention's variable); off by default.
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

#: ``gen_ai.provider.name`` well-known values, by the table's provider name.
GENAI_PROVIDER = {
    "openai": "openai",
    "azure-openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "qwen": "qwen",
    "together": "together",
    "openai-compatible": "openai-compatible",
    "bedrock": "aws.bedrock",
    "vertex-ai": "gcp.vertex_ai",
}


def trace_headers(span: trace.Span, parent: context.Context | None) -> dict[str, str]:
    """The W3C ``traceparent`` (and ``tracestate``) naming ``span``, else the client's own context when tracing
    is off; empty without either. What the propagator's ``inject`` writes, without a Context built per call."""
    span_context = span.get_span_context()
    if not span_context.is_valid:
        span_context = trace.get_current_span(parent).get_span_context() if parent is not None else span_context
        if not span_context.is_valid:
            return {}
    ids = f"{span_context.trace_id:032x}-{span_context.span_id:016x}-{span_context.trace_flags:02x}"
    headers = {"traceparent": f"00-{ids}"}
    if span_context.trace_state:
        headers["tracestate"] = span_context.trace_state.to_header()
    return headers


def capture_content() -> bool:
    """Whether the user opted in to prompt and completion text on spans."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"
