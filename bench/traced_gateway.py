"""``modelyard`` as the benchmark runs it: tracing on, every span sampled, built, batched and handed to an
exporter that discards it (the issue's "tracing on with a no-op exporter").

The gateway is otherwise the shipped one: this only replaces :func:`modelyard_tracing.span_exporter`
before the CLI runs. What encoding and sending spans adds on top is measured separately
(``python -m bench.ablate``, its first row), since it depends on the collector more than on the gateway.

    python -m bench.traced_gateway serve --table table.json ...   # the arguments of ``modelyard``
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import modelyard_tracing
from modelyard.cli import main as modelyard_main


class DiscardingExporter(SpanExporter):
    """Accepts every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # noqa: ARG002
        """Drop ``spans``."""
        return SpanExportResult.SUCCESS


def _discarding_exporter(protocol: str) -> SpanExporter:  # noqa: ARG001 - any protocol
    return DiscardingExporter()


if __name__ == "__main__":
    modelyard_tracing.span_exporter = _discarding_exporter
    sys.exit(modelyard_main())
