"""OpenTelemetry tracer providers configured by the standard ``OTEL_*`` variables, for the proxy and the operator.

Without an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), or with
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``, the provider is the API's no-op one: spans cost
a function call. With one, spans go through a ``BatchSpanProcessor`` (a bounded queue, ``OTEL_BSP_MAX_QUEUE_SIZE``,
that drops on overflow, exported from a background thread), so exporting never blocks or fails a request.
``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`` picks ``http/protobuf`` (the default) or ``grpc``; the sampler
(``OTEL_TRACES_SAMPLER``), resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), headers and
timeouts are read by the SDK itself.

Its own package so that neither the proxy nor the operator imports the other to share it.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def tracing_configured() -> bool:
    """Whether the environment asks for trace export."""
    if _env("OTEL_SDK_DISABLED").lower() == "true" or _env("OTEL_TRACES_EXPORTER").lower() == "none":
        return False
    return bool(_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _env("OTEL_EXPORTER_OTLP_ENDPOINT"))


#: Spans per export batch unless ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` says otherwise. The SDK's 512 makes the
#: exporter thread hold the GIL for milliseconds while it encodes a batch, stalling every request in flight;
#: small batches keep each pause well under a millisecond for the same total work.
EXPORT_BATCH_SIZE = 64


def span_exporter(protocol: str) -> SpanExporter:
    """The OTLP exporter for ``protocol`` (``http/protobuf`` or ``grpc``); endpoint, headers and timeouts
    come from the ``OTEL_EXPORTER_OTLP_*`` variables."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter  # noqa: PLC0415

        return GrpcExporter()
    if protocol != "http/protobuf":
        log.warning("OTLP protocol %r is not supported; exporting traces with http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    return OTLPSpanExporter()


def tracer_provider_from_env(service_name: str) -> trace.TracerProvider:
    """An SDK provider exporting over OTLP when the environment configures it, else the no-op provider."""
    if not tracing_configured():
        return trace.NoOpTracerProvider()
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415 - only when tracing
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    protocol = _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    resource = Resource.create({} if _env("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name})
    provider = TracerProvider(resource=resource)
    queue = _env("OTEL_BSP_MAX_QUEUE_SIZE")
    # The SDK refuses a batch larger than the queue: a small configured queue caps the default batch.
    batch_size = (
        None
        if _env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
        else min(EXPORT_BATCH_SIZE, int(queue) if queue.isdigit() and int(queue) > 0 else EXPORT_BATCH_SIZE)
    )
    provider.add_span_processor(BatchSpanProcessor(span_exporter(protocol), max_export_batch_size=batch_size))
    log.info("exporting traces over OTLP (%s)", protocol)
    return provider


def shutdown(provider: trace.TracerProvider) -> None:
    """Flush and stop an SDK provider (the no-op one has nothing to do)."""
    stop = getattr(provider, "shutdown", None)
    if callable(stop):
        stop()
