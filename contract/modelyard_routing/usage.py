"""What the admin port's usage endpoint answers: spend and tokens per consumer, shared by every reader.

The proxy fills it from the counter store (or its own counters without one); the operator writes it into
each ModelConsumer's status, and ``modelyard usage`` prints it. Amounts are USD; periods are UTC.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from modelyard_routing.consumer_spec import BudgetPeriod

ADMIN_USAGE_PATH = "/admin/v1/usage"
#: How many past days of per-model usage the endpoint keeps and may be asked for (``?days=``).
MAX_USAGE_DAYS = 35


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PeriodUsage(_Report):
    """One calendar period of a consumer: settled spend, spend held by requests in flight, what is left."""

    period: BudgetPeriod
    #: The consumer's budget for this period, None when it has none (spend is still counted).
    budget_usd: float | None
    spent_usd: float
    held_usd: float
    #: ``budget - spent - held``, never below zero; None without a budget.
    remaining_usd: float | None
    #: When the next period starts (RFC 3339, UTC).
    resets_at: str


class DayUsage(_Report):
    """One consumer's use of one public model on one UTC day."""

    day: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class ConsumerUsage(_Report):
    """Everything counted for one consumer (``namespace/name``)."""

    name: str
    labels: dict[str, str] = {}
    periods: tuple[PeriodUsage, ...] = ()
    days: tuple[DayUsage, ...] = ()


class UsageReport(_Report):
    """The endpoint's answer: where the counts live, whether that store answers, and every consumer's use."""

    #: ``shared``: one Redis-protocol store for every pod and worker; ``local``: this process only.
    store: Literal["shared", "local"]
    store_up: bool
    generated_at: str
    consumers: tuple[ConsumerUsage, ...] = ()
