"""The failure policy around the shared store: every call bounded, and a consumer's own choice when it fails.

After a failure the store is marked down and left alone: requests go to the per-process counters (FailOpen)
or are refused (FailClosed) without waiting, while one background probe a second asks whether it is back.
A connection error marks it down at once; timeouts only when ``timeouts_to_down`` calls in a row overran
(each one still falls back for its own request), each sent after the previous one was given up, so the
concurrent calls of one slow moment count once: a busy event loop makes calls late (the clock runs while
replies wait behind other requests' callbacks), and marking the store down for that would stop sharing the
limits exactly when a pod is saturated.

Settlements and releases are batched: each loop iteration's (and those that finish while a batch is being
written) go in one pipelined round trip. Settlements the store could not take wait in a bounded queue and
are replayed when it answers again.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Sequence

import redis

from modelyard_proxy.tenancy.counters import StoreState
from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease, Spend
from modelyard_proxy.tenancy.local import LocalCounters
from modelyard_proxy.tenancy.periods import rfc3339
from modelyard_proxy.tenancy.shared import Finish, SharedCounters
from modelyard_proxy.tenancy.verdict import store_unavailable
from modelyard_routing.consumer_spec import StoreFailure
from modelyard_routing.table import Consumer
from modelyard_routing.usage import UsageReport

log = logging.getLogger(__name__)

#: What a store that cannot be reached raises (a timeout is asyncio's own TimeoutError).
STORE_ERRORS = (redis.RedisError, OSError, TimeoutError)
DEFAULT_TIMEOUT_S = 0.025
DEFAULT_QUEUE_LIMIT = 10_000
#: Timeouts in a row that mark the store down.
DEFAULT_TIMEOUTS_TO_DOWN = 3


class GuardedCounters:
    """``SharedCounters`` bounded by ``timeout_s``, with ``LocalCounters`` for FailOpen consumers."""

    backend = "shared"

    def __init__(
        self,
        shared: SharedCounters,
        local: LocalCounters,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        timeouts_to_down: int = DEFAULT_TIMEOUTS_TO_DOWN,
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
        self._timeouts_to_down = timeouts_to_down
        self._timeouts_in_a_row = 0
        #: When the last timeout was counted (loop time): calls sent before it belong to the same slow moment.
        self._last_timeout_at = float("-inf")
        self._probe_interval_s = probe_interval_s
        self._probe_timeout_s = probe_timeout_s
        self._report_timeout_s = report_timeout_s
        self._queue: collections.deque[Finish] = collections.deque(maxlen=queue_limit)
        self._batch: list[Finish] = []
        self._writer: asyncio.Task[None] | None = None
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
            sent_at = asyncio.get_running_loop().time()
            try:
                admitted = await self._shared.admit(ask, timeout_s=self._timeout_s)
            except STORE_ERRORS as error:
                self._failed(error, sent_at)
            else:
                self._timeouts_in_a_row = 0
                return admitted
        if ask.consumer.on_store_failure is StoreFailure.FAIL_CLOSED:
            return store_unavailable(ask.consumer)
        return await self._local.admit(ask)

    def submit(self, lease: Lease, spend: Spend | None) -> None:
        if lease.backend == "local":
            self._local.submit(lease, spend)
        elif not self.state.up:
            # A release is dropped: its hold and slot expire in the store on their own.
            if spend is not None:
                self._enqueue((lease, spend))
        else:
            self._batch.append((lease, spend))
            if self._writer is None or self._writer.done():
                # Starts on the loop's next iteration: every finish of this one is in the batch by then.
                self._writer = asyncio.get_running_loop().create_task(self._write_batches())

    async def settle(self, lease: Lease, *, model: str, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        self.submit(lease, Spend(model, input_tokens, output_tokens, cost_usd))
        await self._written()

    async def release(self, lease: Lease) -> None:
        self.submit(lease, None)
        await self._written()

    async def _written(self) -> None:
        """Wait until every batch submitted so far is written (or queued for the store's return)."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write_batches(self) -> None:
        """Write batches while there are any: those that finish during a round trip go in the next one."""
        while self._batch:
            batch, self._batch = self._batch, []
            if not self.state.up:
                for lease, spend in batch:
                    if spend is not None:
                        self._enqueue((lease, spend))
                continue
            sent_at = asyncio.get_running_loop().time()
            try:
                answers = await self._shared.finish_many(batch, timeout_s=self._probe_timeout_s)
            except STORE_ERRORS as error:
                self._failed(error, sent_at)
                # Sent again (a marker in the store makes a repeat count once), or queued if it is down now.
                self._batch[:0] = batch
                continue
            self._timeouts_in_a_row = 0
            for answer in answers:
                if isinstance(answer, BaseException):  # the store refused the script: sending it again would not help
                    self.state.errors_total += 1
                    log.error("the counter store refused a settlement: %s", self._describe(answer))

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
        await self._written()
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
        await self._shared.close()
        await self._local.close()

    def _enqueue(self, finish: Finish) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.state.settlements_dropped_total += 1
        self._queue.append(finish)
        self.state.settlements_queued = len(self._queue)

    def _failed(self, error: BaseException, sent_at: float) -> None:
        """A call sent at ``sent_at`` failed: the store is down after a connection error, or after enough
        timeouts in a row."""
        if isinstance(error, TimeoutError) and not isinstance(error, redis.RedisError):
            if sent_at > self._last_timeout_at:
                self._timeouts_in_a_row += 1
                self._last_timeout_at = asyncio.get_running_loop().time()
            if self._timeouts_in_a_row < self._timeouts_to_down:
                self.state.errors_total += 1
                return
        self._went_down(error)

    def _went_down(self, error: BaseException) -> None:
        self.state.errors_total += 1
        self._timeouts_in_a_row = 0
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
            lease, spend = self._queue[0]
            try:
                async with asyncio.timeout(self._probe_timeout_s):
                    await self._shared.finish(lease, spend)
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
            text = f"no answer within {self._timeout_s * 1000:g} ms, {self._timeouts_to_down} calls in a row"
        else:
            text = f"{type(error).__name__}: {error}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
