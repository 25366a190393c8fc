"""Counters in a Redis-protocol store (Redis, Valkey), shared by every pod and worker: one script per call.

Keys, all under ``<prefix>{<consumer>}:`` (one hash tag per consumer, so a consumer's keys share a Redis
Cluster slot): ``rate`` (both leaky buckets), ``leases`` (requests in flight by expiry, each naming the cost
it holds and the periods it holds it in: ``<id>|<micro-USD>|day:2026-12-06|month:2026-12``),
``finished:<lease id>`` (a finished lease's marker for ``MARKER_S``, so a replayed settlement counts once),
per period ``budget:<period>:<start>`` (spent and held micro-USD; a cost is held only in periods with a
budget), and per day ``usage:<day>`` (per-model requests, tokens and micro-USD). The rates and expiries run
on the store's clock; the gateway names the calendar periods.

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
from typing import Any, cast

import redis.asyncio
from redis.exceptions import NoScriptError

from modelyard_proxy.base.ids import LEASE_IDS
from modelyard_proxy.base.storeurl import store_client
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
from modelyard_proxy.tenancy.verdict import Outcome, Shortfall, Verdict, admission, rate_state
from modelyard_proxy.tenancy.wire import Channel, bulk, pack
from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.table import Consumer
from modelyard_routing.usage import UsageReport

#: How long a finished lease is remembered, whatever its hold: a settlement replayed within this counts
#: once. The store keeps this many seconds of requests' markers, never an hour's.
MARKER_S = 120
_DAY_FIELDS = {"requests", "input", "output", "cost"}
_PLACES = {period: str(place) for place, period in enumerate(PERIODS, start=1)}
#: The finish script's numbers after a settlement's own.
_FINISH_CONSTANTS = f"{MARKER_S} {USAGE_RETENTION_S} "
#: A released lease's model: none.
_NO_MODEL = bulk("")
#: A finished lease: its spend when it settles, None when it is released.
Finish = tuple[Lease, Spend | None]


def hold_suffix(periods: Sequence[PeriodHold], held_in: Sequence[BudgetPeriod]) -> str:
    """The spend hashes a lease holds its cost in, as its member names them: ``|day:2026-12-06|month:2026-12``."""
    return "".join(f"|{hold.period}:{hold.label}" for hold in periods if hold.period in held_in)


def markers(base: str) -> str:
    """Where a consumer's finished leases' marker keys start: ``<base>finished:`` and the lease id."""
    return base + "finished:"


def lease_member(lease_id: str, micro_usd: int, suffix: str) -> str:
    """The lease in the leases zset: its id, and the cost it holds with the spend hashes it holds it in
    (``hold_suffix``), so an expired lease gives its hold back with no other key per request."""
    return f"{lease_id}|{micro_usd}{suffix}" if micro_usd and suffix else lease_id


class _Script:
    """A script with the shared prelude in front, and its SHA-1 for ``EVALSHA``."""

    __slots__ = ("sha", "source")

    def __init__(self, name: str) -> None:
        lua = resources.files(__package__) / "lua"
        self.source = (lua / "prelude.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()


_ADMIT, _FINISH, _REPORT = _Script("admit"), _Script("finish"), _Script("report")
_SCRIPTS = (_ADMIT, _FINISH, _REPORT)


def _head(script: _Script, keys: Sequence[str], args: int, *, own_keys: int = 0) -> bytes:
    """An ``EVALSHA`` of ``script`` in RESP up to ``keys``, for a call with ``own_keys`` more keys (each
    request's own) and ``args`` arguments after them."""
    fields = ("EVALSHA", script.sha, str(len(keys) + own_keys), *keys)
    return b"*%d\r\n" % (len(fields) + own_keys + args) + b"".join(map(bulk, fields))


def _finish_frame(
    base: str, periods: Sequence[PeriodHold], held_in: Sequence[BudgetPeriod], day: str, now_s: float
) -> tuple[bytes, bytes]:
    """The finish script's call around its four per-request parts (marker key, member, numbers, model)."""
    keys = [base + "rate", base + "leases", f"{base}usage:{day}"]
    keys += [f"{base}budget:{hold.period}:{hold.label}" for hold in periods]
    tail = [bulk("".join(_PLACES[period] for period in held_in))]
    tail += [bulk(str(int(max(hold.ends_at, now_s)) + PERIOD_MARGIN_S)) for hold in periods]
    return _head(_FINISH, keys, 4 + len(periods), own_keys=1), b"".join(tail)


class _Shape:
    """A consumer's admit and finish calls for one hour in RESP, but for each request's own arguments: built
    once an hour (or when the consumer changes), not as some twenty strings and encodings per request."""

    __slots__ = (
        "admit_head",
        "admit_tail",
        "budgets",
        "consumer",
        "finish_head",
        "finish_tail",
        "held",
        "held_in",
        "hour",
        "limits",
        "markers",
        "periods",
        "suffix",
        "tokens_per_minute",
    )

    def __init__(self, base: str, consumer: Consumer, hour: int) -> None:
        self.consumer, self.hour = consumer, hour
        self.markers = markers(base)
        self.tokens_per_minute = consumer.limits.tokens_per_minute
        self.periods = current_periods(hour * 3600)
        self.budgets = {budget.period: budget.usd for budget in consumer.budgets}
        self.held = [hold for hold in self.periods if hold.period in self.budgets]
        self.held_in = tuple(hold.period for hold in self.held)
        self.suffix = hold_suffix(self.periods, self.held_in)
        limits = consumer.limits
        self.limits = (
            f"{limits.requests_per_minute or 0} {limits.tokens_per_minute or 0} {limits.concurrent_requests or 0} "
        )
        keys = [base + "rate", base + "leases", *(f"{base}budget:{hold.period}:{hold.label}" for hold in self.held)]
        self.admit_head = _head(_ADMIT, keys, 2 + 2 * len(self.held))
        self.admit_tail = b"".join(
            bulk(str(value))
            for hold in self.held
            for value in (to_micro_usd(self.budgets[hold.period]), hold.ends_at + PERIOD_MARGIN_S)
        )
        self.finish_head, self.finish_tail = _finish_frame(
            base, self.periods, self.held_in, self.periods[1].label, hour * 3600
        )


def _refused(
    shape: _Shape, outcome: Outcome, fields: Sequence[str], request_level: float, token_level: float
) -> Verdict:
    """The admit script's refusal (its answer's fields after the outcome) as a verdict."""
    shortfall = None
    if outcome == "budget":
        hold = shape.held[int(fields[3]) - 1]
        budget = to_micro_usd(shape.budgets[hold.period])
        shortfall = Shortfall(hold.period, budget, int(fields[4]), int(fields[5]), hold.ends_at)
    return Verdict(outcome, int(fields[0]) / 1e6, request_level, token_level, shortfall=shortfall)


def connect(url: str, password: str | None, *, connect_timeout_s: float) -> redis.asyncio.Redis:
    """The store's client as :mod:`~modelyard_proxy.tenancy.wire` reads it: text replies, RESP2."""
    return store_client(url, password, connect_timeout_s=connect_timeout_s, decode_responses=True, protocol=2)


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
        #: Per consumer name, its calls' shape for the current hour.
        self._shapes: dict[str, _Shape] = {}

    def base(self, consumer: str) -> str:
        """The start of every key of ``consumer``, hash tag included."""
        return f"{self._prefix}{{{consumer}}}:"

    def _now(self) -> tuple[float, str]:
        """The time that names the periods, and the store's clock override ('' for the store's own)."""
        if self._clock is None:
            return time.time(), ""
        now = self._clock()
        return now, str(int(now * 1_000_000))

    def _shape(self, consumer: Consumer, now_s: float) -> _Shape:
        hour = int(now_s // 3600)
        shape = self._shapes.get(consumer.name)
        if shape is None or shape.hour != hour or shape.consumer is not consumer:
            shape = self._shapes[consumer.name] = _Shape(self.base(consumer.name), consumer, hour)
        return shape

    async def ready(self, *, timeout_s: float | None = None) -> None:
        """One round trip: the store answers and holds the scripts (a restarted store has lost them)."""
        loads = [("SCRIPT", "LOAD", script.source) for script in _SCRIPTS]
        for answer in await self._channel.call_many(loads, timeout_s=timeout_s):
            if isinstance(answer, BaseException):
                raise answer

    async def _run(self, command: bytes, timeout_s: float | None) -> Any:
        try:
            return await self._channel.request(command, timeout_s=timeout_s)
        except NoScriptError:
            return await self._reloaded(command, timeout_s)

    async def _reloaded(self, command: bytes, timeout_s: float | None) -> Any:
        """``command`` again, once the store that lost the scripts (a restart) holds them again."""
        await self.ready(timeout_s=timeout_s)
        return await self._channel.request(command, timeout_s=timeout_s)

    async def admit(self, ask: Ask, *, timeout_s: float | None = None) -> Admission:
        """``Counters.admit``; the store's answer is awaited ``timeout_s`` at most (then ``TimeoutError``)."""
        consumer = ask.consumer
        now_s, override = self._now()
        shape = self._shape(consumer, now_s)
        ask_micro = to_micro_usd(ask.cost_usd)
        lease_id = LEASE_IDS.next()
        member = lease_member(lease_id, ask_micro, shape.suffix)
        numbers = f"{ask.tokens} {ask_micro} {int(ask.hold_seconds * 1_000_000)} {shape.limits}{override}"
        command = shape.admit_head + bulk(member) + bulk(numbers) + shape.admit_tail
        try:  # the channel's future itself: no coroutine of its own per call
            answer: str = await self._channel.request(command, timeout_s=timeout_s)
        except NoScriptError:
            answer = await self._reloaded(command, timeout_s)
        outcome, *fields = answer.split(" ")
        request_level, token_level = int(fields[1]) / 1e6, int(fields[2]) / 1e6
        if outcome == "ok":
            lease = Lease(
                lease_id,
                ask.request_id,
                consumer.name,
                ask.tokens,
                shape.tokens_per_minute,
                ask_micro,
                shape.periods,
                int(fields[3]),
                "shared",
                shape.held_in,
                bulk(shape.markers + lease_id) + bulk(member),  # as ``_handle`` would name it
            )
            return Admission(lease, None, rate_state(consumer.limits, request_level, token_level))
        return admission(ask, _refused(shape, cast("Outcome", outcome), fields, request_level, token_level))

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
        return str(await self._run(self._finish_command(lease, spend), None))

    async def finish_many(self, finishes: Sequence[Finish], *, timeout_s: float | None = None) -> list[Any]:
        """Many finishes in one pipelined round trip: each one's answer, or the error it met."""
        return await self._pipelined([self._finish_command(lease, spend) for lease, spend in finishes], timeout_s)

    async def _pipelined(self, commands: Sequence[bytes], timeout_s: float | None) -> list[Any]:
        """Each call's answer or error; a store that lost the scripts gets them and the calls it refused again."""
        channel = self._channel
        answers = await channel.request_many(b"".join(commands), len(commands), timeout_s=timeout_s)
        if any(isinstance(answer, NoScriptError) for answer in answers):
            await self.ready(timeout_s=timeout_s)
            again = [call for call, answer in zip(commands, answers, strict=True) if isinstance(answer, NoScriptError)]
            retried = iter(await channel.request_many(b"".join(again), len(again), timeout_s=timeout_s))
            answers = [next(retried) if isinstance(answer, NoScriptError) else answer for answer in answers]
        return answers

    def _finish_command(self, lease: Lease, spend: Spend | None) -> bytes:
        now_s, override = self._now()
        shape = self._shapes.get(lease.consumer)
        if (
            shape is not None
            and shape.hour == int(now_s // 3600)
            and lease.periods is shape.periods
            and lease.held_in == shape.held_in
        ):
            head, tail = shape.finish_head, shape.finish_tail
        else:  # admitted in an hour before this one, or before the consumer changed
            head, tail = _finish_frame(
                self.base(lease.consumer), lease.periods, lease.held_in, current_periods(now_s)[1].label, now_s
            )
        reserved = f"{lease.tokens} {lease.held_micro_usd} {lease.tokens_per_minute or 0}"
        if spend is None:
            model, numbers = _NO_MODEL, f"{reserved} 0 0 0 0 0 {_FINISH_CONSTANTS}{override}"
        else:
            model, input_tokens, output_tokens = bulk(spend.model), spend.input_tokens, spend.output_tokens
            numbers = (
                f"{reserved} {input_tokens + output_tokens} {to_micro_usd(spend.cost_usd)} 1 {input_tokens} "
                f"{output_tokens} {_FINISH_CONSTANTS}{override}"
            )
        return head + (lease.handle or self._handle(lease)) + bulk(numbers) + model + tail

    def _handle(self, lease: Lease) -> bytes:
        """A lease's marker key and zset member, for a lease made without them (admission sets them)."""
        member = lease_member(lease.lease_id, lease.held_micro_usd, hold_suffix(lease.periods, lease.held_in))
        return bulk(markers(self.base(lease.consumer)) + lease.lease_id) + bulk(member)

    async def usage(self, consumers: Sequence[Consumer], days: int) -> UsageReport:
        now_s, override = self._now()
        periods = current_periods(now_s)
        labels = past_days(now_s, days)
        calls: list[bytes] = []
        for consumer in consumers:
            base = self.base(consumer.name)
            keys = [base + "leases", *(f"{base}budget:{hold.period}:{hold.label}" for hold in periods)]
            keys += [f"{base}usage:{label}" for label in labels]
            args = [override, *(f"{hold.period}:{hold.label}" for hold in periods)]
            calls.append(pack(("EVALSHA", _REPORT.sha, len(keys), *keys, *args)))
        answers = await self._pipelined(calls, None)
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
