"""Gauges about consumers that live in the counter store, read at scrape time (never on the request path).

What budget each consumer has left is the store's to know, so a scrape asks it (bounded by the counters'
own report timeout); the store's health is what the failure policy last saw.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard_proxy.observability.metrics import gauge_family
from modelyard_proxy.tenancy.counters import Counters, StoreCounters
from modelyard_routing.table import Consumer


async def tenancy_lines(counters: Counters, consumers: Sequence[Consumer]) -> list[str]:
    """``modelyard_store_*`` for a shared store, and each budgeted consumer's remaining USD per period."""
    lines: list[str] = []
    if isinstance(counters, StoreCounters):
        state = counters.state
        lines += gauge_family("modelyard_store_up", "1 while the counter store answers.", [((), int(state.up))])
        lines += [
            "# HELP modelyard_store_errors_total Counter store calls that failed or timed out.",
            "# TYPE modelyard_store_errors_total counter",
            f"modelyard_store_errors_total {state.errors_total}",
        ]
        lines += gauge_family(
            "modelyard_store_settlements_queued",
            "Settlements waiting for the counter store to come back.",
            [((), state.settlements_queued)],
        )
    budgeted = [consumer for consumer in consumers if consumer.budgets]
    if not budgeted:
        return lines
    report = await counters.usage(budgeted, 1)
    remaining = [
        ((usage.name, period.period.value), period.remaining_usd)
        for usage in report.consumers
        for period in usage.periods
        if period.remaining_usd is not None
    ]
    lines += gauge_family(
        "modelyard_consumer_budget_remaining_usd",
        "What each consumer may still spend in each budget period, in USD.",
        remaining,
        ("consumer", "period"),
    )
    return lines
