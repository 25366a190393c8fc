"""The chart's Grafana dashboard queries only series the proxy exports, and shows every consumer's use.

Read from the file the chart ships, so it runs without helm; the rendered ConfigMap is compared with this
file in test_chart_render.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.table.store import TableStore

DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "modelyard" / "dashboards" / "modelyard.json"
#: The per-consumer series of the proxy's tenancy (names fixed with the proxy; no attribution labels).
CONSUMER_METRICS = frozenset(
    {
        "modelyard_consumer_requests_total",
        "modelyard_consumer_tokens_total",
        "modelyard_consumer_cost_usd_total",
        "modelyard_consumer_budget_remaining_usd",
        "modelyard_consumer_in_flight",
        "modelyard_store_up",
        "modelyard_store_errors_total",
    }
)
METRIC_NAME = re.compile(r"\b(?:modelyard|gen_ai)_[a-z0-9_]+\b")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def exported_metrics() -> set[str]:
    """Every series name the proxy's metrics render today, histogram series spelled out."""
    names: set[str] = set()
    for line in Metrics().render(HealthRegistry(), TableStore()).splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            names |= {name + suffix for suffix in HISTOGRAM_SERIES} if kind == "histogram" else {name}
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL the dashboard runs: panel targets and template variable queries."""
    targets = [t["expr"] for panel in board["panels"] for t in panel.get("targets", ())]
    variables = [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return [*targets, *variables]


def test_every_queried_metric_is_exported_or_a_consumer_metric() -> None:
    known = exported_metrics() | CONSUMER_METRICS
    used = {name for query in queries(dashboard()) for name in METRIC_NAME.findall(query)}
    assert used - known == set()
    assert "modelyard_requests_total" in known  # the exposition was read, not an empty set


def test_consumer_row_shows_every_consumer_metric_filtered_by_the_consumer_variable() -> None:
    board = dashboard()
    variable = next(v for v in board["templating"]["list"] if v["name"] == "consumer")
    assert variable["query"] == "label_values(modelyard_consumer_requests_total, consumer)"
    assert variable["includeAll"]
    assert variable["multi"]
    rows = [panel for panel in board["panels"] if panel["type"] == "row"]
    assert [row["title"] for row in rows] == ["Consumers"]
    below = [p for p in board["panels"] if p["type"] != "row" and p["gridPos"]["y"] > rows[0]["gridPos"]["y"]]
    exprs = [t["expr"] for panel in below for t in panel["targets"]]
    assert {name for expr in exprs for name in METRIC_NAME.findall(expr)} == CONSUMER_METRICS
    for expr in exprs:
        if "modelyard_consumer_" in expr:
            assert 'consumer=~"$consumer"' in expr, expr
    outcome = next(p for p in below if "modelyard_consumer_requests_total" in p["targets"][0]["expr"])
    assert "by (consumer, outcome)" in outcome["targets"][0]["expr"]
    tokens = next(p for p in below if "modelyard_consumer_tokens_total" in p["targets"][0]["expr"])
    assert "direction" in tokens["targets"][0]["expr"]


def test_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        taken |= cells
