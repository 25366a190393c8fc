"""Counters in this process: exact for one process, per pod (and per worker) when several serve.

They decide exactly as the store's script does (``lua/admit.lua``), so a FailOpen consumer keeps its limits,
per pod, while the store is down; and a gateway without a store still enforces every limit.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Callable, Sequence

from modelyard_proxy.base.ids import LEASE_IDS
from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease, PeriodHold, Spend, to_micro_usd
from modelyard_proxy.tenancy.periods import (
    PERIOD_MARGIN_S,
    USAGE_RETENTION_S,
    current_periods,
    day_label,
    past_days,
    rfc3339,
)
from modelyard_proxy.tenancy.report import DayCounts, PeriodCounts, consumer_usage
from modelyard_proxy.tenancy.verdict import MINUTE_S, Outcome, Shortfall, Verdict, admission
from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.table import Consumer
from modelyard_routing.usage import UsageReport


@dataclasses.dataclass(slots=True)
class _Bucket:
    """A leaky bucket (GCRA's equivalent form): ``level`` drains at ``limit`` per minute."""

    level: float = 0.0
    at: float = 0.0

    def level_at(self, now: float, limit: int) -> float:
        return max(0.0, self.level - (now - self.at) * limit / MINUTE_S)

    def set(self, level: float, now: float) -> None:
        self.level, self.at = level, now


class _Expiring:
    """Entries (id → amount) that vanish at their expiry, with their total: each sweep costs what it removes."""

    __slots__ = ("_entries", "_heap", "total")

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, float]] = {}
        self._heap: list[tuple[float, str]] = []
        self.total = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entry_id: str) -> bool:
        return entry_id in self._entries

    def add(self, entry_id: str, amount: int, expires: float) -> None:
        self._entries[entry_id] = (amount, expires)
        self.total += amount
        heapq.heappush(self._heap, (expires, entry_id))

    def pop(self, entry_id: str) -> bool:
        """Remove an entry (its heap slot goes stale and is skipped later); False when it was not there."""
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return False
        self.total -= entry[0]
        if len(self._heap) > 2 * len(self._entries) + 64:
            # Stale slots of removed entries would otherwise stay until their expiry: memory per request.
            self._heap = [(expires, key) for key, (_, expires) in self._entries.items()]
            heapq.heapify(self._heap)
        return True

    def sweep(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires, entry_id = heapq.heappop(self._heap)
            entry = self._entries.get(entry_id)
            if entry is not None and entry[1] == expires:
                self.pop(entry_id)


@dataclasses.dataclass(slots=True)
class _Book:
    """One period's spend: settled micro-USD and the live holds."""

    ends_at: int
    spent: int = 0
    holds: _Expiring = dataclasses.field(default_factory=_Expiring)


@dataclasses.dataclass(slots=True)
class _Consumer:
    requests: _Bucket = dataclasses.field(default_factory=_Bucket)
    tokens: _Bucket = dataclasses.field(default_factory=_Bucket)
    #: Live leases: the requests in flight. A finished one leaves no trace: one missing before its expiry
    #: was finished already, so a second settlement is told apart without a marker per request.
    leases: _Expiring = dataclasses.field(default_factory=_Expiring)
    books: dict[tuple[BudgetPeriod, str], _Book] = dataclasses.field(default_factory=dict)
    days: dict[str, dict[str, DayCounts]] = dataclasses.field(default_factory=dict)

    def book(self, hold: PeriodHold) -> _Book:
        return self.books.setdefault((hold.period, hold.label), _Book(hold.ends_at))

    def sweep(self, now: float) -> None:
        self.leases.sweep(now)
        for key, book in list(self.books.items()):
            if book.ends_at + PERIOD_MARGIN_S <= now:
                del self.books[key]
            else:
                book.holds.sweep(now)
        oldest = day_label(now - USAGE_RETENTION_S)
        for day in [day for day in self.days if day < oldest]:
            del self.days[day]


class LocalCounters:
    """The ``Counters`` of one process; ``clock`` (epoch seconds) is injectable so tests need not sleep."""

    backend = "local"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._consumers: dict[str, _Consumer] = {}

    async def admit(self, ask: Ask) -> Admission:
        return admission(ask, self.decide(ask))

    def decide(self, ask: Ask) -> Verdict:
        """Check every limit and, when all pass, apply them all (the script's logic, in Python)."""
        now = self._clock()
        state = self._consumers.setdefault(ask.consumer.name, _Consumer())
        state.sweep(now)
        limits = ask.consumer.limits
        rpm, tpm, cap = limits.requests_per_minute, limits.tokens_per_minute, limits.concurrent_requests
        request_level = state.requests.level_at(now, rpm) if rpm else 0.0
        token_level = state.tokens.level_at(now, tpm) if tpm else 0.0
        periods = current_periods(now)
        ask_micro = to_micro_usd(ask.cost_usd)
        outcome: Outcome = "ok"
        shortfall = None
        if tpm and ask.tokens > tpm:
            outcome = "tokens_oversize"
        elif rpm and request_level + 1 > rpm:
            outcome = "requests"
        elif tpm and token_level + ask.tokens > tpm:
            outcome = "tokens"
        elif cap and len(state.leases) >= cap:
            outcome = "concurrency"
        else:
            shortfall = self._shortfall(ask, state, periods, ask_micro)
            outcome = "budget" if shortfall else "ok"
        if outcome != "ok":
            return Verdict(outcome, now, request_level, token_level, shortfall=shortfall)
        lease_id = LEASE_IDS.next()
        expires = now + ask.hold_seconds
        request_level += 1 if rpm else 0
        token_level += ask.tokens if tpm else 0
        state.requests.set(request_level, now)
        state.tokens.set(token_level, now)
        state.leases.add(lease_id, 1, expires)
        held_in = tuple(budget.period for budget in ask.consumer.budgets)
        if ask_micro:
            for hold in periods:
                if hold.period in held_in:
                    state.book(hold).holds.add(lease_id, ask_micro, expires)
        lease = Lease(
            lease_id=lease_id,
            request_id=ask.request_id,
            consumer=ask.consumer.name,
            tokens=ask.tokens,
            tokens_per_minute=tpm,
            held_micro_usd=ask_micro,
            periods=periods,
            expires_at_us=int(expires * 1_000_000),
            backend="local",
            held_in=held_in,
        )
        return Verdict("ok", now, request_level, token_level, lease=lease)

    @staticmethod
    def _shortfall(ask: Ask, state: _Consumer, periods: Sequence[PeriodHold], ask_micro: int) -> Shortfall | None:
        budgets = {budget.period: to_micro_usd(budget.usd) for budget in ask.consumer.budgets}
        for hold in periods:
            budget = budgets.get(hold.period)
            if budget is None:
                continue
            book = state.book(hold)
            spent, held = book.spent, book.holds.total
            if spent >= budget or spent + held + ask_micro > budget:
                return Shortfall(hold.period, budget, spent, held, hold.ends_at)
        return None

    async def settle(self, lease: Lease, *, model: str, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        self.submit(lease, Spend(model, input_tokens, output_tokens, cost_usd))

    async def release(self, lease: Lease) -> None:
        self.submit(lease, None)

    def submit(self, lease: Lease, spend: Spend | None) -> None:
        """At once: nothing to wait for in process."""
        now = self._clock()
        state = self._consumers.setdefault(lease.consumer, _Consumer())
        state.sweep(now)
        live = state.leases.pop(lease.lease_id)
        if not live and now < lease.expires_at_us / 1_000_000:
            return  # gone before its expiry: finished already, so this is a second settlement of it
        micro_usd = 0 if spend is None else to_micro_usd(spend.cost_usd)
        for hold in lease.periods:
            book = state.book(hold)
            book.holds.pop(lease.lease_id)
            book.spent += micro_usd
        if live and lease.tokens_per_minute:
            used = 0 if spend is None else spend.input_tokens + spend.output_tokens
            level = state.tokens.level_at(now, lease.tokens_per_minute) - (lease.tokens - used)
            state.tokens.set(max(0.0, level), now)
        if spend is not None:
            day = state.days.setdefault(day_label(now), {})
            day.setdefault(spend.model, DayCounts()).add(spend.input_tokens, spend.output_tokens, micro_usd)

    async def usage(self, consumers: Sequence[Consumer], days: int) -> UsageReport:
        now = self._clock()
        reports = []
        for consumer in consumers:
            state = self._consumers.get(consumer.name, _Consumer())
            state.sweep(now)
            periods = [
                PeriodCounts(hold, book.spent, book.holds.total)
                for hold in current_periods(now)
                for book in [state.books.get((hold.period, hold.label), _Book(hold.ends_at))]
            ]
            history = {day: state.days.get(day, {}) for day in past_days(now, days)}
            reports.append(consumer_usage(consumer, periods, history))
        return UsageReport(store="local", store_up=True, generated_at=rfc3339(now), consumers=tuple(reports))

    async def close(self) -> None:
        self._consumers.clear()
