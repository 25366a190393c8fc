"""A usage report as aligned text tables: budget periods per consumer, then spend by consumer, day and model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelyard_routing.usage import ConsumerUsage, DayUsage, UsageReport

NONE = "-"


def render_report(report: UsageReport) -> str:
    """The report as ``modelyard usage`` prints it: a status line and two tables."""
    store = f"store: {report.store}, {'up' if report.store_up else 'NOT ANSWERING (figures may be incomplete)'}"
    lines = [f"Usage at {report.generated_at} ({store})", ""]
    if not report.consumers:
        return "\n".join([*lines, "No consumers in the report."]) + "\n"
    consumers = sorted(report.consumers, key=lambda consumer: consumer.name)
    lines += ["Budgets", *_budgets(consumers, report.generated_at), ""]
    lines += ["Spend by consumer, day and model", *_spend(consumers)]
    return "\n".join(lines) + "\n"


def _budgets(consumers: Sequence[ConsumerUsage], generated_at: str) -> list[str]:
    rows = [
        [
            consumer.name,
            str(period.period),
            _usd(period.budget_usd),
            _usd(period.spent_usd),
            _usd(period.held_usd),
            _usd(period.remaining_usd),
            _resets(period.resets_at, generated_at),
        ]
        for consumer in consumers
        for period in consumer.periods
    ]
    if not rows:
        return ["No budget periods counted."]
    headers = ["CONSUMER", "PERIOD", "BUDGET", "SPENT", "HELD", "REMAINING", "RESETS"]
    return table(headers, rows, numeric={2, 3, 4, 5})


def _spend(consumers: Sequence[ConsumerUsage]) -> list[str]:
    days = [(consumer.name, day) for consumer in consumers for day in consumer.days]
    if not days:
        return ["No requests counted."]
    days.sort(key=lambda pair: (pair[0], pair[1].day, pair[1].model))
    rows = [[name, *_day_cells(day)] for name, day in days]
    total = DayUsage(
        day="",
        model="",
        requests=sum(day.requests for _, day in days),
        input_tokens=sum(day.input_tokens for _, day in days),
        output_tokens=sum(day.output_tokens for _, day in days),
        cost_usd=sum(day.cost_usd for _, day in days),
    )
    rows.append(["TOTAL", *_day_cells(total)])
    headers = ["CONSUMER", "DAY", "MODEL", "REQUESTS", "INPUT TOKENS", "OUTPUT TOKENS", "COST"]
    return table(headers, rows, numeric={3, 4, 5, 6})


def _day_cells(day: DayUsage) -> list[str]:
    return [
        day.day,
        day.model,
        f"{day.requests:,}",
        f"{day.input_tokens:,}",
        f"{day.output_tokens:,}",
        _usd(day.cost_usd),
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> list[str]:
    """Columns padded to their widest cell, ``numeric`` ones right-aligned, two spaces apart."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if index in numeric else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def _usd(amount: float | None) -> str:
    """Dollars: cents from $1 up, otherwise every digit down to a millionth (one request costs fractions)."""
    if amount is None:
        return NONE
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    digits = f"{amount:.6f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def _resets(resets_at: str, now: str) -> str:
    """The reset instant and how far off it is from when the report was made (``in 3h 20m``)."""
    try:
        seconds = int((datetime.fromisoformat(resets_at) - datetime.fromisoformat(now)).total_seconds())
    except (ValueError, TypeError):
        return resets_at
    if seconds <= 0:
        return resets_at
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours or days else []
    parts.append(f"{minutes}m")
    return f"{resets_at} (in {' '.join(parts)})"
