"""What a ModelConsumer's status says (pure): conditions, one-line summaries for ``kubectl get``, and spend.

The summaries are status fields so that the CRD's printer columns can point at them: ``.status.models``
(``gpt-4o-mini,claude-*``), ``.status.limits`` (``60rpm 100000tpm 4conc``), ``.status.budget``
(``$50/day $1000/month``) and ``.status.spentUSD`` (``$12.34``, the largest budget period's spend).
``.status.usage`` holds ``periods`` (``period``, ``budgetUSD``, ``spentUSD``, ``remainingUSD``,
``resetsAt``), ``today`` (``requests``, ``inputTokens``, ``outputTokens``) and ``updatedAt``. Nothing here
holds a key or a key hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from modelyard_operator.inventory import Observed
from modelyard_operator.status import Rollout, Status, programmed
from modelyard_operator.tables import TableStep
from modelyard_routing import Condition
from modelyard_routing.conditions import ACCEPTED
from modelyard_routing.consumer_spec import BudgetPeriod, ModelConsumerSpec
from modelyard_routing.usage import ConsumerUsage, PeriodUsage

#: Shortest period first, the order the budget summary and ``usage.periods`` use.
PERIODS = (BudgetPeriod.HOUR, BudgetPeriod.DAY, BudgetPeriod.MONTH)
#: Longest models summary; a longer list ends in ``+N`` (the spec has them all).
MAX_MODELS_SUMMARY = 100


def dollars(amount: float, *, whole: bool = False) -> str:
    """``$12.34``; with ``whole``, a whole amount goes without cents (``$50``), as budgets are written."""
    return f"${amount:.0f}" if whole and amount == int(amount) else f"${amount:.2f}"


def models_summary(spec: ModelConsumerSpec) -> str:
    """The models it may call, comma-separated, cut after ``MAX_MODELS_SUMMARY`` characters."""
    shown: list[str] = []
    for index, model in enumerate(spec.models):
        if shown and len(",".join([*shown, model])) > MAX_MODELS_SUMMARY:
            return ",".join([*shown, f"+{len(spec.models) - index}"])
        shown.append(model)
    return ",".join(shown)


def limits_summary(spec: ModelConsumerSpec) -> str:
    """``60rpm 100000tpm 4conc`` (only those set), or ``unlimited``."""
    limits = spec.limits
    parts = [
        f"{value}{unit}"
        for value, unit in (
            (limits.requests_per_minute, "rpm"),
            (limits.tokens_per_minute, "tpm"),
            (limits.concurrent_requests, "conc"),
        )
        if value is not None
    ]
    return " ".join(parts) or "unlimited"


def budget_summary(spec: ModelConsumerSpec) -> str:
    """``$50/day $1000/month`` (shortest period first), or ``none``."""
    by_period = {budget.period: budget.usd for budget in spec.budgets}
    return " ".join(f"{dollars(by_period[p], whole=True)}/{p.value}" for p in PERIODS if p in by_period) or "none"


def _period(usage: PeriodUsage) -> dict[str, Any]:
    # A period without a budget leaves budgetUSD and remainingUSD out rather than writing nulls.
    rendered: dict[str, Any] = {"period": usage.period.value}
    if usage.budget_usd is not None:
        rendered["budgetUSD"] = usage.budget_usd
    rendered["spentUSD"] = round(usage.spent_usd, 6)
    if usage.remaining_usd is not None:
        rendered["remainingUSD"] = round(usage.remaining_usd, 6)
    rendered["resetsAt"] = usage.resets_at
    return rendered


def _today(usage: ConsumerUsage, day: str) -> dict[str, int]:
    """Requests and tokens of the UTC day ``day`` (``YYYY-MM-DD``), over every model."""
    counted = [d for d in usage.days if d.day == day]
    return {
        "requests": sum(d.requests for d in counted),
        "inputTokens": sum(d.input_tokens for d in counted),
        "outputTokens": sum(d.output_tokens for d in counted),
    }


def usage_fields(usage: ConsumerUsage, read_at: str, current: Mapping[str, Any]) -> Status:
    """``usage`` and ``spentUSD`` from a report read at ``read_at``.

    ``updatedAt`` moves only when the figures do, so a consumer that spends nothing is not rewritten at
    every refresh: it says since when the figures are what they are.
    """
    periods = sorted(usage.periods, key=lambda p: PERIODS.index(p.period))
    rendered = [_period(p) for p in periods]
    today = _today(usage, read_at[:10])
    before = current.get("usage") or {}
    unchanged = (
        isinstance(before, Mapping)
        and before.get("periods") == rendered
        and before.get("today") == today
        and before.get("updatedAt")
    )
    updated = before["updatedAt"] if unchanged else read_at
    fields: Status = {"usage": {"periods": rendered, "today": today, "updatedAt": updated}}
    if periods:
        fields["spentUSD"] = dollars(periods[-1].spent_usd)
    return fields


def consumer_status(
    observed: Observed,
    conditions: Sequence[Condition],
    step: TableStep,
    rollout: Rollout,
    *,
    usage: tuple[ConsumerUsage, str] | None,
    current: Mapping[str, Any],
) -> tuple[Status, tuple[Condition, ...]]:
    """The status of a ModelConsumer (conditions still without transition times) and its full condition list.

    ``usage`` is the consumer's entry in the last usage report and when it was read; None leaves whatever
    usage the status holds as it is.
    """
    generation = observed.manifest.generation
    name = f"{observed.ref.namespace}/{observed.ref.name}"
    accepted = any(c.type == ACCEPTED and c.ok for c in conditions)
    since = step.consumer_since.get(name)
    full = (
        *conditions,
        programmed(
            generation,
            accepted=accepted,
            since=since,
            retained=False,
            rollout=rollout,
            subject="consumer",
            unresolved="no key resolves",
        ),
    )
    status: Status = {"observedGeneration": generation}
    try:
        spec = ModelConsumerSpec.model_validate(observed.manifest.spec)
    except ValidationError:
        status |= {"models": None, "limits": None, "budget": None}
    else:
        status |= {"models": models_summary(spec), "limits": limits_summary(spec), "budget": budget_summary(spec)}
    if usage is not None:
        status |= usage_fields(*usage, current)
    return status, full
