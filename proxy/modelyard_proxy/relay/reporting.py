"""What is recorded when a request is over: metrics, the server span's attributes, and the audit line.

Once per request, never per chunk, and never the prompt or completion text (unless the user opted in to
content capture on spans).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from opentelemetry import trace

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.observability.accounting import Usage
from modelyard_proxy.observability.auditlog import AuditLog
from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.observability.telemetry import GENAI_PROVIDER
from modelyard_proxy.table.store import ResolvedTarget


@dataclasses.dataclass(slots=True)
class RunRecord:
    """What a run has recorded so far, shared by its plan, its attempts and its delivery: the audit line's facts."""

    #: Attempts started, across every target (the route's cap on attempts counts these).
    attempts: int = 0
    #: Each attempt's target and failure code (None for the one that answered).
    tried: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: Why the run left its previous target (the failure's code), for the next attempt's span.
    fallback_reason: str | None = None
    usage: Usage | None = None
    cost: float | None = None
    first_token_at: float | None = None
    inter_token: float | None = None


@dataclasses.dataclass(slots=True)
class RequestOutcome:
    """How one request ended: where it went, what it cost, how long it took."""

    request_id: str | None
    #: The consumer whose key sent it (``namespace/name``), empty for a plain key.
    consumer: str
    model: str
    #: The consumer's attribution labels, for the audit line (metrics join them through an info series).
    consumer_labels: dict[str, str] | None
    route: str
    profile: str | None
    operation: str
    stream: bool
    status: int
    code: str | None
    attempts: int
    served: ResolvedTarget | None
    tried: list[dict[str, Any]]
    elapsed: float
    usage: Usage | None
    cost: float | None
    ttft: float | None
    inter_token: float | None
    fallback_reason: str | None

    @property
    def provider(self) -> str:
        """The serving target's provider, empty when none served."""
        return self.served.credential.provider.value if self.served else ""

    @property
    def upstream_model(self) -> str:
        """The serving target's model, empty when none served."""
        return self.served.target.model if self.served else ""


def report(
    outcome: RequestOutcome, metrics: Metrics, span: trace.Span, audit_log: AuditLog, messages: object = None
) -> None:
    """Record ``outcome`` everywhere it goes; ``messages`` only when content capture is on."""
    observe(metrics, outcome)
    annotate(span, outcome, messages)
    audit(audit_log, outcome)


def observe(metrics: Metrics, outcome: RequestOutcome) -> None:
    """The request's metrics."""
    labels = (outcome.route, outcome.provider, outcome.upstream_model)
    status = str(outcome.status)
    metrics.requests.inc((*labels, status))
    metrics.duration.observe((*labels, status, outcome.operation), outcome.elapsed)
    if outcome.code is not None:
        metrics.errors.inc((*labels, status, outcome.code))
    if outcome.ttft is not None:
        metrics.ttft.observe(labels, outcome.ttft)
    if outcome.inter_token is not None:
        metrics.inter_token.observe(labels, outcome.inter_token)
    usage = outcome.usage
    if outcome.consumer:
        _observe_consumer(metrics, outcome)
    if usage is None:
        return
    metrics.token_usage.observe((*labels, "input"), usage.input)
    metrics.token_usage.observe((*labels, "output"), usage.output)
    metrics.tokens.inc((*labels, "input"), usage.input)
    metrics.tokens.inc((*labels, "output"), usage.output)
    if usage.cached:
        metrics.tokens.inc((*labels, "cached_input"), usage.cached)
    if usage.reasoning:
        metrics.tokens.inc((*labels, "reasoning"), usage.reasoning)
    if outcome.cost is None:
        metrics.unpriced.inc(labels)
    else:
        metrics.cost.inc(labels, outcome.cost)


#: The gateway's own refusals of a consumer's request, by code: the outcome label of
#: ``modelyard_consumer_requests_total``.
CONSUMER_OUTCOMES = {
    "rate_limit_exceeded": "rate_limited",
    "budget_exceeded": "budget_exceeded",
    "model_not_allowed": "model_not_allowed",
    "model_unpriced": "model_not_allowed",
    "limits_unavailable": "store_unavailable",
}


def _observe_consumer(metrics: Metrics, outcome: RequestOutcome) -> None:
    """The consumer's own series: by outcome, and what its served answers used and cost."""
    consumer = outcome.consumer
    if outcome.code is None:
        kind = "served"
    elif outcome.attempts == 0:  # refused by the gateway itself, before any upstream was asked
        kind = CONSUMER_OUTCOMES.get(outcome.code, "failed")
    else:  # an upstream's own 429 is the upstream's limit, not the consumer's
        kind = "failed"
    metrics.consumer_requests.inc((consumer, kind))
    if (usage := outcome.usage) is not None:
        metrics.consumer_tokens.inc((consumer, "input"), usage.input)
        metrics.consumer_tokens.inc((consumer, "output"), usage.output)
    if outcome.cost is not None:
        metrics.consumer_cost.inc((consumer,), outcome.cost)


def annotate(span: trace.Span, outcome: RequestOutcome, messages: object = None) -> None:
    """The server span's GenAI and gateway attributes, set in one call (nothing when tracing is off)."""
    if not span.is_recording():
        return
    attributes: dict[str, str | int | float | bool] = {
        "gen_ai.operation.name": outcome.operation,
        "gen_ai.request.model": outcome.model,
        "modelyard.route": outcome.route,
        "modelyard.attempts": outcome.attempts,
        "modelyard.stream": outcome.stream,
    }
    if outcome.profile:
        attributes["modelyard.profile"] = outcome.profile
    if outcome.consumer:
        attributes["modelyard.consumer"] = outcome.consumer
    if outcome.fallback_reason is not None:
        attributes["modelyard.fallback_reason"] = outcome.fallback_reason
    if outcome.served is not None:
        attributes["gen_ai.provider.name"] = GENAI_PROVIDER.get(outcome.provider, outcome.provider)
        attributes["gen_ai.response.model"] = outcome.upstream_model
        attributes["modelyard.target"] = outcome.served.target.id
        attributes["modelyard.credential"] = outcome.served.credential.id
    if (usage := outcome.usage) is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.input
        attributes["gen_ai.usage.output_tokens"] = usage.output
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning
    if outcome.cost is not None:
        attributes["modelyard.cost_usd"] = outcome.cost
    if outcome.ttft is not None:
        attributes["gen_ai.server.time_to_first_token"] = outcome.ttft
    if outcome.code is not None:
        attributes["error.type"] = outcome.code
        attributes["http.response.status_code"] = outcome.status  # also when no response went out (a 499)
        span.set_status(trace.StatusCode.ERROR)
    if messages is not None:
        attributes["gen_ai.input.messages"] = orjson.dumps(messages).decode()
    span.set_attributes(attributes)


def audit(audit_log: AuditLog, outcome: RequestOutcome) -> None:
    """One structured line per request: where it went and how it ended, never what it said."""
    if not audit_log.enabled():
        return
    usage = outcome.usage
    record: dict[str, Any] = {
        "request_id": outcome.request_id,
        "consumer": outcome.consumer or None,
        "consumer_labels": outcome.consumer_labels or None,
        "model": outcome.model,
        "route": outcome.route,
        "profile": outcome.profile,
        "stream": outcome.stream,
        "status": outcome.status,
        "code": outcome.code,
        "attempts": outcome.attempts,
        "provider": outcome.provider or None,
        "upstream_model": outcome.upstream_model or None,
        "tried": outcome.tried,
        "elapsed_ms": round(outcome.elapsed * 1000, 1),
        "usage": None
        if usage is None
        else {"input": usage.input, "output": usage.output, "cached": usage.cached, "reasoning": usage.reasoning},
        "cost_usd": outcome.cost,
    }
    if outcome.ttft is not None:
        record["ttft_ms"] = round(outcome.ttft * 1000, 1)
    audit_log.write(record)


def report_refusal(
    metrics: Metrics,
    audit_log: AuditLog,
    request_id: str | None,
    error: GatewayError,
    elapsed: float,
    *,
    method: str,
    path: str,
) -> None:
    """A request refused before any route took it (bad key, bad body, unknown model, unknown endpoint):
    counted with empty route labels, and one audit line naming its method and path, so probing and
    misconfigured clients show up."""
    status = str(error.status)
    code = error.code or error.type
    metrics.requests.inc(("", "", "", status))
    metrics.errors.inc(("", "", "", status, code))
    if audit_log.enabled():
        elapsed_ms = round(elapsed * 1000, 1)
        audit_log.write(
            {
                "request_id": request_id,
                "status": error.status,
                "code": code,
                "elapsed_ms": elapsed_ms,
                "method": method,
                "path": path,
            }
        )
