"""Prometheus metrics: plain counters and histograms in dicts keyed by label tuples, rendered on scrape.

Nothing here allocates per chunk or takes a lock: an observation is a dict lookup and an increment (the
event loop is single-threaded). Gauges that describe state (breakers, the loaded table) are read from the
registry and the store at scrape time, never kept up to date on the request path.

Names follow the OpenTelemetry GenAI metric conventions where they exist (``gen_ai.server.request.duration``
becomes ``gen_ai_server_request_duration_seconds``); gateway-only facts use ``modelyard_*``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from modelyard_proxy.routing.health import BreakerState, HealthRegistry
from modelyard_proxy.table.store import TableStore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Request and attempt durations (seconds): LLM calls run from ~100 ms to minutes.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
#: Time to first token (seconds), the GenAI convention's boundaries.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: Time per output chunk (seconds), the GenAI convention's ``time_per_output_token`` boundaries.
INTER_TOKEN_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
#: Tokens per request, the GenAI convention's ``gen_ai.client.token.usage`` boundaries.
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Labels, extra: str = "") -> str:
    pairs = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def sample_value(value: float) -> str:
    """A sample's value as the exposition writes it: integers without a decimal point."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def gauge_family(
    name: str, help_: str, series: Sequence[tuple[Labels, float]], label_names: Sequence[str] = ()
) -> list[str]:
    """A gauge's HELP and TYPE lines and one sample per ``(labels, value)``, for state read at scrape time."""
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
    lines += [f"{name}{_labels(label_names, labels)} {sample_value(value)}" for labels, value in series]
    return lines


class Counter:
    """A monotonic count per label tuple."""

    kind = "counter"

    def __init__(self, name: str, help_: str, labels: Sequence[str]) -> None:
        self.name, self.help, self.label_names = name, help_, tuple(labels)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        """Add ``amount`` to the series ``labels``."""
        self.values[labels] = self.values.get(labels, 0.0) + amount

    @property
    def sample_name(self) -> str:
        """A counter's samples end in ``_total``."""
        return self.name if self.name.endswith("_total") else self.name + "_total"

    def samples(self) -> Iterable[str]:
        """Exposition lines for every series."""
        sample = self.sample_name
        for labels, value in self.values.items():
            yield f"{sample}{_labels(self.label_names, labels)} {sample_value(value)}"


class Gauge(Counter):
    """A value per label tuple that goes up and down (requests in flight)."""

    kind = "gauge"

    @property
    def sample_name(self) -> str:
        """A gauge's samples carry its own name."""
        return self.name


class Histogram:
    """Bucket counts (not cumulative until rendered), sum and count per label tuple."""

    kind = "histogram"

    def __init__(self, name: str, help_: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name, self.help, self.label_names = name, help_, tuple(labels)
        self.bounds = tuple(buckets)
        self.values: dict[Labels, list[float]] = {}  # [bucket counts..., +Inf count, sum]

    def observe(self, labels: Labels, value: float) -> None:
        """One observation: a single bucket increment and the sum."""
        series = self.values.get(labels)
        if series is None:
            series = self.values[labels] = [0.0] * (len(self.bounds) + 2)
        series[bisect.bisect_left(self.bounds, value)] += 1
        series[-1] += value

    def samples(self) -> Iterable[str]:
        """Cumulative ``_bucket`` lines, ``_sum`` and ``_count`` for every series."""
        for labels, series in self.values.items():
            running = 0.0
            for bound, count in zip((*map(sample_value, self.bounds), "+Inf"), series[:-1], strict=True):
                running += count
                le = 'le="' + bound + '"'
                yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {sample_value(running)}"
            yield f"{self.name}_sum{_labels(self.label_names, labels)} {sample_value(series[-1])}"
            yield f"{self.name}_count{_labels(self.label_names, labels)} {sample_value(running)}"


REQUEST = ("route", "provider", "model", "status")
SERVED = ("route", "provider", "model")
CONSUMER_TOKENS = ("consumer", "direction")


class Metrics:
    """Every series the proxy exports; one instance per process, shared by the public and admin apps."""

    def __init__(self) -> None:
        self.requests = Counter("modelyard_requests_total", "Client requests by outcome.", REQUEST)
        self.errors = Counter(
            "modelyard_request_errors_total", "Client requests answered with an error.", (*REQUEST, "error_type")
        )
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Time from the client's request to the end of its answer.",
            (*REQUEST, "gen_ai_operation_name"),
            DURATION_BUCKETS,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from the client's request to the first content frame of a streamed answer.",
            SERVED,
            TTFT_BUCKETS,
        )
        self.inter_token = Histogram(
            "gen_ai_server_time_per_output_token_seconds",
            "Mean time between content frames after the first, observed once per stream.",
            SERVED,
            INTER_TOKEN_BUCKETS,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per answer, by type (input or output), as the upstream reported them.",
            (*SERVED, "gen_ai_token_type"),
            TOKEN_BUCKETS,
        )
        self.tokens = Counter(
            "modelyard_tokens_total", "Tokens by type: input, output, cached_input, reasoning.", (*SERVED, "type")
        )
        self.cost = Counter("modelyard_cost_usd_total", "Cost of the answers served, in USD.", SERVED)
        self.unpriced = Counter(
            "modelyard_unpriced_requests_total", "Answers whose upstream model has no known price.", SERVED
        )
        self.attempts = Counter(
            "modelyard_upstream_attempts_total",
            "Upstream attempts by outcome (ok or the gateway error code).",
            (*SERVED, "outcome"),
        )
        self.attempt_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Time of one upstream attempt until its commit point (whole answer or first content frame).",
            (*SERVED, "outcome"),
            DURATION_BUCKETS,
        )
        self.retries = Counter("modelyard_retries_total", "Retries of the same target.", SERVED)
        self.fallbacks = Counter(
            "modelyard_fallbacks_total",
            "Moves to the next target, by the failure that caused them.",
            ("route", "reason"),
        )
        self.hedges = Counter("modelyard_hedges_total", "Hedged second attempts started.", ("route",))
        self.connections_refused = Counter(
            "modelyard_connections_refused_total",
            "Client connections refused because the process had its limit open (MODELYARD_MAX_CONNECTIONS).",
            (),
        )
        self.consumer_requests = Counter(
            "modelyard_consumer_requests_total",
            "Requests by consumer and outcome: served, failed, rate_limited, budget_exceeded, model_not_allowed, "
            "store_unavailable.",
            ("consumer", "outcome"),
        )
        self.consumer_tokens = Counter(
            "modelyard_consumer_tokens_total", "Tokens by consumer and direction (input, output).", CONSUMER_TOKENS
        )
        self.consumer_cost = Counter("modelyard_consumer_cost_usd_total", "Spend by consumer, in USD.", ("consumer",))
        self.consumer_in_flight = Gauge(
            "modelyard_consumer_in_flight", "Requests of each consumer being served now.", ("consumer",)
        )
        self._all: tuple[Counter | Histogram, ...] = (
            self.requests,
            self.errors,
            self.duration,
            self.ttft,
            self.inter_token,
            self.token_usage,
            self.tokens,
            self.cost,
            self.unpriced,
            self.attempts,
            self.attempt_duration,
            self.retries,
            self.fallbacks,
            self.hedges,
            self.connections_refused,
            self.consumer_requests,
            self.consumer_tokens,
            self.consumer_cost,
            self.consumer_in_flight,
        )

    def render(self, health: HealthRegistry | None = None, store: TableStore | None = None) -> str:
        """The text exposition format (0.0.4) of every series, plus breaker and table gauges."""
        lines: list[str] = []
        for metric in self._all:
            lines += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} {metric.kind}"]
            lines.extend(metric.samples())
        if health is not None:
            name = "modelyard_circuit_breaker_state"
            lines += [f"# HELP {name} 1 for each target's current breaker state.", f"# TYPE {name} gauge"]
            for target_id, state in sorted(health.snapshot().items()):
                for candidate in BreakerState:
                    value = int(candidate.value == state)
                    lines.append(f"{name}{_labels(('target', 'state'), (target_id, candidate.value))} {value}")
        if store is not None:
            table = store.current.table if store.current else None
            lines += [
                "# HELP modelyard_routing_table_generation Generation of the routing table being served.",
                "# TYPE modelyard_routing_table_generation gauge",
                f"modelyard_routing_table_generation {table.generation if table else 0}",
                "# HELP modelyard_routing_table_info The served table's content hash (value 1).",
                "# TYPE modelyard_routing_table_info gauge",
            ]
            if table is not None:
                lines.append(f'modelyard_routing_table_info{{sha256="{table.sha256}"}} 1')
            lines += [
                "# HELP modelyard_routing_table_refused 1 when the last candidate table was refused.",
                "# TYPE modelyard_routing_table_refused gauge",
                f"modelyard_routing_table_refused {int(store.last_error is not None)}",
            ]
            if table is not None and table.consumers:
                lines += [
                    "# HELP modelyard_consumer_info Attribution labels of each consumer (value 1), for group_left.",
                    "# TYPE modelyard_consumer_info gauge",
                ]
                for consumer in table.consumers:
                    names = ("consumer", *consumer.labels)
                    lines.append(
                        f"modelyard_consumer_info{_labels(names, (consumer.name, *consumer.labels.values()))} 1"
                    )
        return "\n".join(lines) + "\n"
