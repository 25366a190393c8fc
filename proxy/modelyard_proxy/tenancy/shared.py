"""Counters in a Redis-protocol store (Redis, Valkey), shared by every pod and worker: one script per call.

Keys, all under ``<prefix>{<consumer>}:`` (one hash tag per consumer, so a consumer's keys share a Redis
Cluster slot): ``rate`` (both leaky buckets), ``leases`` (requests in flight by expiry), ``finished``
(settled leases until their expiry, so a replayed settlement counts once), per period
``budget:<period>:<start>`` (spent and held micro-USD) and ``holds:<period>:<start>`` (each hold by expiry),
and per day ``usage:<day>`` (per-model requests, tokens and micro-USD). Time is the store's own clock.

A request is admitted only when, atomically, every budget has ``spent + held + ask <= budget`` (and is not
spent already): requests admitted in one period never settle for more than its budget as long as each real
cost stays within the worst case it held and settles before its hold expires.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease, PeriodHold, to_micro_usd
from modelyard_proxy.tenancy.periods import PERIOD_MARGIN_S, PERIODS, USAGE_RETENTION_S, rfc3339, usage_days
from modelyard_proxy.tenancy.report import DayCounts, PeriodCounts, consumer_usage
from modelyard_proxy.tenancy.verdict import Shortfall, Verdict, admission
from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.table import Consumer
from modelyard_routing.usage import UsageReport

DEFAULT_PREFIX = "modelyard:"
_NO_BUDGET = -1
_DAY_FIELDS = {"requests", "input", "output", "cost"}


def _script(name: str) -> str:
    """A script with the shared prelude (clock, periods, key names) in front."""
    lua = resources.files(__package__) / "lua"
    return (lua / "prelude.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


def connect(url: str, password: str | None, *, socket_timeout_s: float) -> redis.asyncio.Redis:
    """A client for ``redis://`` or ``rediss://`` (TLS) that never retries on its own: the guard decides."""
    return redis.asyncio.Redis.from_url(
        url,
        password=password,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
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
        self._admit: AsyncScript = client.register_script(_script("admit"))
        self._finish: AsyncScript = client.register_script(_script("finish"))
        self._report: AsyncScript = client.register_script(_script("report"))

    def base(self, consumer: str) -> str:
        """The start of every key of ``consumer``, hash tag included."""
        return f"{self._prefix}{{{consumer}}}:"

    def _keys(self, consumer: str) -> list[str]:
        base = self.base(consumer)
        return [base + "rate", base + "leases", base + "finished"]

    def _now(self) -> str:
        return "" if self._clock is None else str(int(self._clock() * 1_000_000))

    async def ready(self) -> None:
        """One round trip: the store answers and holds the scripts (a restarted store has lost them)."""
        async with self._client.pipeline(transaction=False) as pipe:
            for script in (self._admit, self._finish, self._report):
                _ = pipe.script_load(script.script)  # queued; ``execute`` sends them all
            await pipe.execute()

    async def admit(self, ask: Ask) -> Admission:
        consumer, limits = ask.consumer, ask.consumer.limits
        budgets = {budget.period: to_micro_usd(budget.usd) for budget in consumer.budgets}
        lease_id = uuid.uuid4().hex
        raw = await self._admit(
            keys=self._keys(consumer.name),
            args=[
                self.base(consumer.name),
                lease_id,
                ask.tokens,
                to_micro_usd(ask.cost_usd),
                int(ask.hold_seconds * 1_000_000),
                limits.requests_per_minute or 0,
                limits.tokens_per_minute or 0,
                limits.concurrent_requests or 0,
                *(budgets.get(period, _NO_BUDGET) for period in PERIODS),
                self._now(),
                PERIOD_MARGIN_S,
            ],
        )
        return admission(ask, self._verdict(ask, lease_id, json.loads(raw)))

    @staticmethod
    def _verdict(ask: Ask, lease_id: str, data: dict[str, Any]) -> Verdict:
        now_s = int(data["now"]) / 1_000_000
        levels = float(data["request_level"]), float(data["token_level"])
        shortfall = data.get("shortfall")
        if data["outcome"] != "ok":
            short = None
            if shortfall:
                period, budget, spent, held, ends = shortfall
                short = Shortfall(BudgetPeriod(period), int(budget), int(spent), int(held), int(ends))
            return Verdict(data["outcome"], now_s, *levels, shortfall=short)
        lease = Lease(
            lease_id=lease_id,
            request_id=ask.request_id,
            consumer=ask.consumer.name,
            tokens=ask.tokens,
            tokens_per_minute=ask.consumer.limits.tokens_per_minute,
            held_micro_usd=to_micro_usd(ask.cost_usd),
            periods=tuple(PeriodHold(BudgetPeriod(p), label, int(ends)) for p, label, ends in data["periods"]),
            expires_at_us=int(data["expires"]),
            backend="shared",
        )
        return Verdict("ok", now_s, *levels, lease=lease)

    async def settle(self, lease: Lease, *, model: str, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        await self.finish(
            lease, input_tokens + output_tokens, to_micro_usd(cost_usd), (model, input_tokens, output_tokens)
        )

    async def release(self, lease: Lease) -> None:
        await self.finish(lease, 0, 0, None)

    async def finish(self, lease: Lease, tokens: int, micro_usd: int, usage: tuple[str, int, int] | None) -> str:
        """Settle (``usage`` given) or release: ``settled``, ``late`` (after expiry) or ``duplicate``."""
        model, input_tokens, output_tokens = usage or ("", 0, 0)
        periods = [str(value) for hold in lease.periods for value in (hold.period.value, hold.label, hold.ends_at)]
        result = await self._finish(
            keys=self._keys(lease.consumer),
            args=[
                self.base(lease.consumer),
                lease.lease_id,
                lease.tokens,
                lease.held_micro_usd,
                lease.expires_at_us,
                lease.tokens_per_minute or 0,
                tokens,
                micro_usd,
                1 if usage else 0,
                model,
                input_tokens,
                output_tokens,
                self._now(),
                PERIOD_MARGIN_S,
                USAGE_RETENTION_S,
                *periods,
            ],
        )
        return str(result)

    async def usage(self, consumers: Sequence[Consumer], days: int) -> UsageReport:
        async with self._client.pipeline(transaction=False) as pipe:
            for consumer in consumers:
                base = self.base(consumer.name)
                await self._report(keys=[base + "rate"], args=[base, usage_days(days), self._now()], client=pipe)
            answers = await pipe.execute()
        decoded = [json.loads(raw) for raw in answers]
        reports = [consumer_usage(consumer, *_counts(data)) for consumer, data in zip(consumers, decoded, strict=True)]
        # The store's clock when it was asked, like every other time here.
        now = int(decoded[0]["now"]) / 1_000_000 if decoded else time.time()
        return UsageReport(store="shared", store_up=True, generated_at=rfc3339(now), consumers=tuple(reports))

    async def close(self) -> None:
        await self._client.aclose()


def _counts(data: dict[str, Any]) -> tuple[list[PeriodCounts], dict[str, dict[str, DayCounts]]]:
    """The report script's answer as period and day counts (cjson writes an empty list as ``{}``)."""
    periods = [
        PeriodCounts(PeriodHold(BudgetPeriod(p), label, int(ends)), int(spent), int(held))
        for p, label, ends, spent, held in data["periods"] or []
    ]
    days: dict[str, dict[str, DayCounts]] = {}
    for day, fields in data["days"] or []:
        models = days.setdefault(day, {})
        flat = fields or []
        for field, value in zip(flat[::2], flat[1::2], strict=True):
            model, _, kind = field.rpartition("|")
            if kind not in _DAY_FIELDS:
                continue
            counts = models.setdefault(model, DayCounts())
            if kind == "requests":
                counts.requests = int(value)
            elif kind == "input":
                counts.input_tokens = int(value)
            elif kind == "output":
                counts.output_tokens = int(value)
            else:
                counts.micro_usd = int(value)
    return periods, days
