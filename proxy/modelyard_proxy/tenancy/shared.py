"""Counters in a Redis-protocol store (Redis, Valkey), shared by every pod and worker: one script per call.

Keys, all under ``<prefix>{<consumer>}:`` (one hash tag per consumer, so a consumer's keys share a Redis
Cluster slot): ``rate`` (both leaky buckets), ``leases`` (requests in flight by expiry, each naming the cost
it holds and the periods it holds it in: ``<id>|<micro-USD>|day:2026-12-06|month:2026-12``), ``finished``
(finished leases for ``MARKER_S``, so a replayed settlement counts once), per period
``budget:<period>:<start>`` (spent and held micro-USD; a cost is held only in periods with a budget), and
per day ``usage:<day>`` (per-model requests, tokens and micro-USD). The rates and expiries run on the
store's clock; the gateway names the calendar periods.

A request is admitted only when, atomically, every budget has ``spent + held + ask <= budget`` (and is not
spent already): requests admitted in one period never settle for more than its budget as long as each real
cost stays within the worst case it held and settles before its hold expires.

The scripts run by ``EVALSHA`` over one pipelined connection (``wire.Channel``), their numbers packed into
one argument: redis-py's command path cost more client time than the round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from modelyard_proxy.base.ids import LEASE_IDS
from modelyard_proxy.tenancy.counters import DEFAULT_PREFIX
from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease, PeriodHold, Spend, to_micro_usd
from modelyard_proxy.tenancy.periods import (
    PERIOD_MARGIN_S,
    PERIODS,
    USAGE_RETENTION_S,
    current_periods,
    past_days,
    rfc3339,
)
from modelyard_proxy.tenancy.report import DayCounts, PeriodCounts, consumer_usage
from modelyard_proxy.tenancy.verdict import Outcome, Shortfall, Verdict, admission
from modelyard_proxy.tenancy.wire import Channel
from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.table import Consumer
from modelyard_routing.usage import UsageReport

#: How long a finished lease is remembered, whatever its hold: a settlement replayed within this counts
#: once. The store keeps this many seconds of requests' markers, never an hour's.
MARKER_S = 120
_DAY_FIELDS = {"requests", "input", "output", "cost"}
_PLACES = {period: str(place) for place, period in enumerate(PERIODS, start=1)}
#: A finished lease: its spend when it settles, None when it is released.
Finish = tuple[Lease, Spend | None]


def lease_member(lease_id: str, micro_usd: int, periods: Sequence[PeriodHold], held_in: Sequence[BudgetPeriod]) -> str:
    """The lease in the leases zset: its id, and the cost it holds with the spend hashes it holds it in (so an
    expired lease gives its hold back with no other key per request)."""
    if not micro_usd or not held_in:
        return lease_id
    return f"{lease_id}|{micro_usd}" + "".join(
        f"|{hold.period}:{hold.label}" for hold in periods if hold.period in held_in
    )


class _Script:
    """A script with the shared prelude in front, and its SHA-1 for ``EVALSHA``."""

    __slots__ = ("sha", "source")

    def __init__(self, name: str) -> None:
        lua = resources.files(__package__) / "lua"
        self.source = (lua / "prelude.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()


_ADMIT, _FINISH, _REPORT = _Script("admit"), _Script("finish"), _Script("report")
_SCRIPTS = (_ADMIT, _FINISH, _REPORT)


def connect(url: str, password: str | None, *, connect_timeout_s: float) -> redis.asyncio.Redis:
    """A client for ``redis://`` or ``rediss://`` (TLS) that never retries on its own: the guard decides.

    No socket timeout on commands: every call is bounded by its caller's own timeout, and redis-py's would
    wrap each write in a task of its own.
    """
    return redis.asyncio.Redis.from_url(
        url,
        password=password,
        decode_responses=True,
        protocol=2,  # what ``wire`` reads
        retry=Retry(NoBackoff(), 0),
        socket_timeout=None,
        socket_connect_timeout=connect_timeout_s,
    )


class SharedCounters:
    """The ``Counters`` in one store. ``clock`` (epoch seconds) replaces the store's clock, for tests only."""

    backend = "shared"

    def __init__(
        self, client: redis.asyncio.Redis, *, prefix: str = DEFAULT_PREFIX, clock: Callable[[], float] | None = None
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._channel = Channel(client)
        self._background: set[asyncio.Task[Any]] = set()

    def base(self, consumer: str) -> str:
        """The start of every key of ``consumer``, hash tag included."""
        return f"{self._prefix}{{{consumer}}}:"

    def _now(self) -> tuple[float, str]:
        """The time that names the periods, and the store's clock override ('' for the store's own)."""
        if self._clock is None:
            return time.time(), ""
        now = self._clock()
        return now, str(int(now * 1_000_000))

    async def ready(self) -> None:
        """One round trip: the store answers and holds the scripts (a restarted store has lost them)."""
        for answer in await self._channel.call_many([("SCRIPT", "LOAD", script.source) for script in _SCRIPTS]):
            if isinstance(answer, BaseException):
                raise answer

    async def _run(self, script: _Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        try:
            return await self._channel.call(("EVALSHA", script.sha, len(keys), *keys, *args))
        except NoScriptError:
            await self.ready()
            return await self._channel.call(("EVALSHA", script.sha, len(keys), *keys, *args))

    async def admit(self, ask: Ask) -> Admission:
        consumer, limits = ask.consumer, ask.consumer.limits
        now_s, override = self._now()
        periods = current_periods(now_s)
        base = self.base(consumer.name)
        ask_micro = to_micro_usd(ask.cost_usd)
        lease_id = LEASE_IDS.next()
        budgets = {budget.period: budget.usd for budget in consumer.budgets}
        held = [hold for hold in periods if hold.period in budgets]
        held_in = tuple(hold.period for hold in held)
        keys = [base + "rate", base + "leases"]
        args: list[str | int] = [
            lease_member(lease_id, ask_micro, periods, held_in),
            f"{ask.tokens} {ask_micro} {int(ask.hold_seconds * 1_000_000)} {limits.requests_per_minute or 0} "
            f"{limits.tokens_per_minute or 0} {limits.concurrent_requests or 0} {override}",
        ]
        for hold in held:
            keys.append(f"{base}budget:{hold.period}:{hold.label}")
            args += (to_micro_usd(budgets[hold.period]), hold.ends_at + PERIOD_MARGIN_S)
        raw = await self._run(_ADMIT, keys, args)
        outcome: Outcome = raw[0]
        now_us, request_level, token_level = int(raw[1]), int(raw[2]) / 1e6, int(raw[3]) / 1e6
        if outcome == "ok":
            lease = Lease(
                lease_id=lease_id,
                request_id=ask.request_id,
                consumer=consumer.name,
                tokens=ask.tokens,
                tokens_per_minute=limits.tokens_per_minute,
                held_micro_usd=ask_micro,
                periods=periods,
                expires_at_us=int(raw[4]),
                backend="shared",
                held_in=held_in,
            )
            verdict = Verdict("ok", now_us / 1e6, request_level, token_level, lease=lease)
        else:
            shortfall = None
            if outcome == "budget":
                hold, spent, held_now = held[int(raw[4]) - 1], int(raw[5]), int(raw[6])
                budget = to_micro_usd(budgets[hold.period])
                shortfall = Shortfall(hold.period, budget, spent, held_now, hold.ends_at)
            verdict = Verdict(outcome, now_us / 1e6, request_level, token_level, shortfall=shortfall)
        return admission(ask, verdict)

    async def settle(self, lease: Lease, *, model: str, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        await self.finish(lease, Spend(model, input_tokens, output_tokens, cost_usd))

    async def release(self, lease: Lease) -> None:
        await self.finish(lease, None)

    def submit(self, lease: Lease, spend: Spend | None) -> None:
        """Unguarded, each on its own task (``GuardedCounters`` batches them); a failure is lost."""
        task = asyncio.get_running_loop().create_task(self.finish(lease, spend))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def finish(self, lease: Lease, spend: Spend | None) -> str:
        """Settle (``spend`` given) or release: ``settled``, ``late`` (after expiry) or ``duplicate``."""
        keys, args = self._finish_call(lease, spend)
        return str(await self._run(_FINISH, keys, args))

    async def finish_many(self, finishes: Sequence[Finish]) -> list[Any]:
        """Many finishes in one pipelined round trip: each one's answer, or the error it met."""
        return await self._pipelined(_FINISH, [self._finish_call(lease, spend) for lease, spend in finishes])

    async def _pipelined(self, script: _Script, calls: Sequence[tuple[list[str], list[str | int]]]) -> list[Any]:
        """Each call's answer or error; a store that lost the scripts gets them and the calls it refused again."""
        answers = await self._send(script, calls)
        if any(isinstance(answer, NoScriptError) for answer in answers):
            await self.ready()
            again = [call for call, answer in zip(calls, answers, strict=True) if isinstance(answer, NoScriptError)]
            retried = iter(await self._send(script, again))
            answers = [next(retried) if isinstance(answer, NoScriptError) else answer for answer in answers]
        return answers

    async def _send(self, script: _Script, calls: Sequence[tuple[list[str], list[str | int]]]) -> list[Any]:
        return await self._channel.call_many([("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls])

    def _finish_call(self, lease: Lease, spend: Spend | None) -> tuple[list[str], list[str | int]]:
        now_s, override = self._now()
        base = self.base(lease.consumer)
        model, input_tokens, output_tokens, cost_usd = (
            ("", 0, 0, 0.0)
            if spend is None
            else (
                spend.model,
                spend.input_tokens,
                spend.output_tokens,
                spend.cost_usd,
            )
        )
        used = input_tokens + output_tokens
        budget_keys = [f"{base}budget:{hold.period}:{hold.label}" for hold in lease.periods]
        day = current_periods(now_s)[1].label
        keys = [base + "rate", base + "leases", base + "finished", f"{base}usage:{day}", *budget_keys]
        args: list[str | int] = [
            lease_member(lease.lease_id, lease.held_micro_usd, lease.periods, lease.held_in),
            f"{lease.tokens} {lease.held_micro_usd} {lease.tokens_per_minute or 0} {used} "
            f"{to_micro_usd(cost_usd)} {0 if spend is None else 1} {input_tokens} {output_tokens} {MARKER_S} "
            f"{USAGE_RETENTION_S} {override}",
            model,
            "".join(_PLACES[period] for period in lease.held_in),
            *(int(max(hold.ends_at, now_s)) + PERIOD_MARGIN_S for hold in lease.periods),
        ]
        return keys, args

    async def usage(self, consumers: Sequence[Consumer], days: int) -> UsageReport:
        now_s, override = self._now()
        periods = current_periods(now_s)
        labels = past_days(now_s, days)
        calls: list[tuple[list[str], list[str | int]]] = []
        for consumer in consumers:
            base = self.base(consumer.name)
            keys = [base + "leases", *(f"{base}budget:{hold.period}:{hold.label}" for hold in periods)]
            keys += [f"{base}usage:{label}" for label in labels]
            calls.append((keys, [override, *(f"{hold.period}:{hold.label}" for hold in periods)]))
        answers = await self._pipelined(_REPORT, calls)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        reports = [
            consumer_usage(consumer, *_counts(periods, labels, answer))
            for consumer, answer in zip(consumers, answers, strict=True)
        ]
        # The store's clock when it was asked, like every other time here.
        now = int(answers[0][0]) / 1_000_000 if answers else now_s
        return UsageReport(store="shared", store_up=True, generated_at=rfc3339(now), consumers=tuple(reports))

    async def close(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        self._channel.close()
        await self._client.aclose()


def _counts(
    periods: Sequence[PeriodHold], labels: Sequence[str], answer: list[Any]
) -> tuple[list[PeriodCounts], dict[str, dict[str, DayCounts]]]:
    """The report script's flat answer as period and day counts."""
    counts = [
        PeriodCounts(hold, int(answer[1 + 2 * place]), int(answer[2 + 2 * place])) for place, hold in enumerate(periods)
    ]
    days: dict[str, dict[str, DayCounts]] = {}
    for day, flat in zip(labels, answer[1 + 2 * len(periods) :], strict=True):
        models = days.setdefault(day, {})
        for field, value in zip(flat[::2], flat[1::2], strict=True):
            model, _, kind = field.rpartition("|")
            if kind not in _DAY_FIELDS:
                continue
            day_counts = models.setdefault(model, DayCounts())
            if kind == "requests":
                day_counts.requests = int(value)
            elif kind == "input":
                day_counts.input_tokens = int(value)
            elif kind == "output":
                day_counts.output_tokens = int(value)
            else:
                day_counts.micro_usd = int(value)
    return counts, days
