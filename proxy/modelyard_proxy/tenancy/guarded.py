"""The failure policy around the shared store: every call bounded, and a consumer's own choice when it fails.

After a failure the store is marked down and left alone: requests go to the per-process counters (FailOpen)
or are refused (FailClosed) without waiting, while one background probe a second asks whether it is back.
Settlements the store could not take wait in a bounded queue and are replayed when it answers again.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Sequence

import redis

from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease
from modelyard_proxy.tenancy.local import LocalCounters
from modelyard_proxy.tenancy.periods import rfc3339
from modelyard_proxy.tenancy.shared import SharedCounters
from modelyard_proxy.tenancy.verdict import store_unavailable
from modelyard_routing.consumer_spec import StoreFailure
from modelyard_routing.table import Consumer
from modelyard_routing.usage import UsageReport

log = logging.getLogger(__name__)

#: What a store that cannot be reached raises (a timeout is asyncio's own TimeoutError).
STORE_ERRORS = (redis.RedisError, OSError, TimeoutError)
DEFAULT_TIMEOUT_S = 0.005
DEFAULT_QUEUE_LIMIT = 10_000


@dataclasses.dataclass(slots=True)
class StoreState:
    """The store as the metrics see it at scrape time."""

    up: bool = True
    #: Store calls that failed or timed out (requests' calls and probes).
    errors_total: int = 0
    #: Changes between up and down, both ways.
    transitions_total: int = 0
    #: Settlements waiting for the store.
    settlements_queued: int = 0
    #: Settlements dropped, oldest first, because the queue was full: spend the store never saw.
    settlements_dropped_total: int = 0
    settlements_replayed_total: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class _Settlement:
    lease: Lease
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float


class GuardedCounters:
    """``SharedCounters`` bounded by ``timeout_s``, with ``LocalCounters`` for FailOpen consumers."""

    backend = "shared"

    def __init__(
        self,
        shared: SharedCounters,
        local: LocalCounters,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        probe_interval_s: float = 1.0,
        probe_timeout_s: float = 1.0,
        report_timeout_s: float = 2.0,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        secrets: Sequence[str] = (),
    ) -> None:
        self.state = StoreState()
        self._shared = shared
        self._local = local
        self._timeout_s = timeout_s
        self._probe_interval_s = probe_interval_s
        self._probe_timeout_s = probe_timeout_s
        self._report_timeout_s = report_timeout_s
        self._queue: collections.deque[_Settlement] = collections.deque(maxlen=queue_limit)
        self._secrets = tuple(secret for secret in secrets if secret)
        self._prober: asyncio.Task[None] | None = None

    async def warm_up(self) -> None:
        """Connect and load the scripts before the first request needs them; a store that fails is marked down."""
        try:
            async with asyncio.timeout(self._probe_timeout_s):
                await self._shared.ready()
        except STORE_ERRORS as error:
            self._went_down(error)

    async def admit(self, ask: Ask) -> Admission:
        if self.state.up:
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await self._shared.admit(ask)
            except STORE_ERRORS as error:
                self._went_down(error)
        if ask.consumer.on_store_failure is StoreFailure.FAIL_CLOSED:
            return store_unavailable(ask.consumer)
        return await self._local.admit(ask)

    async def settle(self, lease: Lease, *, model: str, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        if lease.backend == "local":
            await self._local.settle(
                lease, model=model, input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost_usd
            )
            return
        settlement = _Settlement(lease, model, input_tokens, output_tokens, cost_usd)
        if self.state.up:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._replay(settlement)
                return
            except STORE_ERRORS as error:
                self._went_down(error)
        self._enqueue(settlement)

    async def release(self, lease: Lease) -> None:
        if lease.backend == "local":
            await self._local.release(lease)
            return
        if not self.state.up:
            return  # its hold and slot expire in the store on their own
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._shared.release(lease)
        except STORE_ERRORS as error:
            self._went_down(error)

    async def usage(self, consumers: Sequence[Consumer], days: int) -> UsageReport:
        """The store's counts; while it is down, an empty report that says so (the last one read still holds)."""
        if self.state.up:
            try:
                async with asyncio.timeout(self._report_timeout_s):
                    return await self._shared.usage(consumers, days)
            except STORE_ERRORS as error:
                self._went_down(error)
        return UsageReport(store="shared", store_up=False, generated_at=rfc3339(time.time()))

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
        await self._shared.close()
        await self._local.close()

    def _enqueue(self, settlement: _Settlement) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.state.settlements_dropped_total += 1
        self._queue.append(settlement)
        self.state.settlements_queued = len(self._queue)

    async def _replay(self, settlement: _Settlement) -> None:
        await self._shared.settle(
            settlement.lease,
            model=settlement.model,
            input_tokens=settlement.input_tokens,
            output_tokens=settlement.output_tokens,
            cost_usd=settlement.cost_usd,
        )

    def _went_down(self, error: BaseException) -> None:
        self.state.errors_total += 1
        if not self.state.up:
            return
        self.state.up = False
        self.state.transitions_total += 1
        log.warning("counter store unreachable: %s", self._describe(error))
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        """Once per interval: ask; when the store answers, mark it up and replay the queued settlements."""
        while True:
            await asyncio.sleep(self._probe_interval_s)
            try:
                async with asyncio.timeout(self._probe_timeout_s):
                    await self._shared.ready()
            except STORE_ERRORS:
                self.state.errors_total += 1
                continue
            self.state.up = True
            self.state.transitions_total += 1
            log.info("counter store reachable again")
            if await self._drain_queue():
                return

    async def _drain_queue(self) -> bool:
        """Replay the queue oldest first; False when the store failed again (it is marked down)."""
        while self._queue:
            settlement = self._queue[0]
            try:
                async with asyncio.timeout(self._probe_timeout_s):
                    await self._replay(settlement)
            except STORE_ERRORS as error:
                self._went_down(error)
                return False
            self._queue.popleft()
            self.state.settlements_queued = len(self._queue)
            self.state.settlements_replayed_total += 1
        return True

    def _describe(self, error: BaseException) -> str:
        """The error for the log, never with a password in it."""
        if isinstance(error, TimeoutError) and not str(error):
            text = f"no answer within {self._timeout_s * 1000:g} ms"
        else:
            text = f"{type(error).__name__}: {error}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
