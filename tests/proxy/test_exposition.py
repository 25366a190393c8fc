"""Merging the workers' ``/metrics``: what each worker's real ``Metrics.render`` writes, merged and parsed back."""

from __future__ import annotations

from modelyard_proxy.observability.exposition import ExpositionMerger, Scrape
from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.table.store import TableStore
from modelyard_routing import compile_inventory
from tests.harness import example_inventory
from tests.observability.test_metrics import parse, value

GPT = ("default/gpt-4o", "openai", "gpt-4o-2024-08-06")
CLAUDE = ("default/claude-sonnet", "anthropic", "claude-sonnet-4-5")


class Worker:
    """One worker's metrics, breakers and table, as its admin app renders them."""

    def __init__(self, generation: int = 1) -> None:
        self.metrics = Metrics()
        self.health = HealthRegistry()
        self.store = TableStore()
        self.store.apply(compile_inventory(example_inventory("http://127.0.0.1:9"), generation).table)

    def serve(self, labels: tuple[str, str, str], elapsed: float, times: int = 1) -> None:
        for _ in range(times):
            self.metrics.requests.inc((*labels, "200"))
            self.metrics.duration.observe((*labels, "200", "chat"), elapsed)
            self.metrics.cost.inc(labels, 0.1)

    def render(self) -> str:
        return self.metrics.render(self.health, self.store)


def test_counters_and_histograms_add_up_and_gauges_stay_per_worker() -> None:
    first, second = Worker(), Worker(generation=2)
    first.serve(GPT, 0.05, times=3)
    second.serve(GPT, 3.0, times=2)
    second.serve(CLAUDE, 0.05)
    first.health["default/sim-openai|gpt-4o-2024-08-06"].begin()
    text = ExpositionMerger().merge([Scrape(0, 1, first.render()), Scrape(1, 1, second.render())])

    samples, types = parse(text)  # strict: every line is exposition format, no series twice
    assert types == parse(first.render())[1]
    for name in types:
        assert text.count(f"# TYPE {name} ") == 1
        assert text.count(f"# HELP {name} ") == 1
    assert value(samples, "modelyard_requests_total", route=GPT[0]) == 5
    assert value(samples, "modelyard_requests_total", route=CLAUDE[0]) == 1
    assert round(value(samples, "modelyard_cost_usd_total"), 9) == 0.6
    duration = "gen_ai_server_request_duration_seconds"
    assert value(samples, f"{duration}_count", route=GPT[0]) == 5
    assert value(samples, f"{duration}_bucket", route=GPT[0], le="0.08") == 3
    assert value(samples, f"{duration}_bucket", route=GPT[0], le="5.12") == 5
    assert value(samples, f"{duration}_bucket", route=GPT[0], le="+Inf") == 5
    assert round(value(samples, f"{duration}_sum", route=GPT[0]), 6) == 6.15

    assert value(samples, "modelyard_routing_table_generation", worker="0") == 1
    assert value(samples, "modelyard_routing_table_generation", worker="1") == 2
    assert value(samples, "modelyard_routing_table_refused", worker="1") == 0
    breakers = [labels for name, labels in samples if name == "modelyard_circuit_breaker_state"]
    assert {dict(labels)["worker"] for labels in breakers} == {"0"}  # only the first worker used that target
    assert all("worker" not in dict(labels) for name, labels in samples if name == "modelyard_requests_total")


def test_a_restarted_worker_never_makes_the_sums_go_back() -> None:
    merger = ExpositionMerger()
    first, second = Worker(), Worker()
    first.serve(GPT, 0.05, times=4)
    second.serve(GPT, 0.05, times=2)
    merger.merge([Scrape(0, 1, first.render()), Scrape(1, 1, second.render())])

    restarted = Worker()  # worker 0's replacement counts from zero
    restarted.serve(GPT, 0.05)
    samples, _ = parse(merger.merge([Scrape(0, 2, restarted.render()), Scrape(1, 1, second.render())]))
    assert value(samples, "modelyard_requests_total") == 4 + 1 + 2
    assert value(samples, "gen_ai_server_request_duration_seconds_count") == 7

    restarted.serve(GPT, 0.05)  # the predecessor's counts are retired once, not on every scrape
    samples, _ = parse(merger.merge([Scrape(0, 2, restarted.render()), Scrape(1, 1, second.render())]))
    assert value(samples, "modelyard_requests_total") == 8


def test_a_worker_missing_a_scrape_keeps_its_counts_but_not_its_gauges() -> None:
    merger = ExpositionMerger()
    first, second = Worker(), Worker()
    first.serve(GPT, 0.05, times=2)
    second.serve(GPT, 0.05, times=3)
    merger.merge([Scrape(0, 1, first.render()), Scrape(1, 1, second.render())])

    samples, _ = parse(merger.merge([Scrape(0, 1, first.render()), Scrape(1, 1, None)]))
    assert value(samples, "modelyard_requests_total") == 5
    generations = [dict(labels) for name, labels in samples if name == "modelyard_routing_table_generation"]
    assert generations == [{"worker": "0"}]
