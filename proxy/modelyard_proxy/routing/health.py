"""Per-target health: a circuit breaker and a latency average, kept outside any routing table.

The registry is keyed by the stable ``target.id`` (credential id and upstream model), so a table swap keeps
what was learnt about a target, and two routes sharing a target share its health.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import time
from collections.abc import Callable

from modelyard_routing import Policy

Clock = Callable[[], float]
#: Weight of the newest sample in the latency average.
EWMA_ALPHA = 0.3
#: The breaker's window is kept as this many buckets of counts: O(1) per outcome and bounded memory at any
#: request rate, at the price of expiring outcomes up to 1/BUCKETS of a window early.
BUCKETS = 32


@dataclasses.dataclass(slots=True)
class _Bucket:
    start: float
    total: int = 0
    failures: int = 0


class BreakerState(enum.StrEnum):
    """Closed: traffic flows. Open: the target is skipped. Half-open: one probe decides."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclasses.dataclass(slots=True)
class TargetHealth:
    """One target's breaker and observed latency."""

    clock: Clock
    state: BreakerState = BreakerState.CLOSED
    opened_at: float = 0.0
    cooldown: float = 10.0
    probing: bool = False
    buckets: collections.deque[_Bucket] = dataclasses.field(default_factory=collections.deque)
    total: int = 0
    failures: int = 0
    latency: float | None = None

    def available(self) -> bool:
        """Whether an attempt may go to this target now (an open breaker past its cooldown turns half-open)."""
        if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.cooldown:
            self.state = BreakerState.HALF_OPEN
            self.probing = False
        if self.state is BreakerState.HALF_OPEN:
            return not self.probing
        return self.state is BreakerState.CLOSED

    def reopens_in(self) -> float:
        """Seconds until this target may be tried again (0 when available)."""
        if self.state is BreakerState.OPEN:
            return max(0.0, self.opened_at + self.cooldown - self.clock())
        return 0.0

    def begin(self) -> None:
        """An attempt is starting; in half-open state it is the single probe."""
        if self.state is BreakerState.HALF_OPEN:
            self.probing = True

    def record(self, policy: Policy, *, ok: bool, latency: float | None = None) -> None:
        """The outcome of one attempt, judged with the route's breaker settings."""
        now = self.clock()
        if ok and latency is not None:
            self.latency = latency if self.latency is None else EWMA_ALPHA * latency + (1 - EWMA_ALPHA) * self.latency
        self.cooldown = policy.breaker_cooldown_ms / 1000
        if self.state is BreakerState.HALF_OPEN:
            self.probing = False
            if ok:
                self.state = BreakerState.CLOSED
                self._forget()
            else:
                self._open(now)
            return
        self._count(now, ok, policy.breaker_window_ms / 1000)
        if (
            self.state is BreakerState.CLOSED
            and self.total >= policy.breaker_min_requests
            and self.failures * 100 >= policy.breaker_failure_rate_percent * self.total
        ):
            self._open(now)

    def _count(self, now: float, ok: bool, window: float) -> None:
        """Add one outcome and expire the buckets that fell out of the window, keeping running totals."""
        buckets = self.buckets
        if not buckets or now - buckets[-1].start >= window / BUCKETS:
            buckets.append(_Bucket(now))
        bucket = buckets[-1]
        bucket.total += 1
        self.total += 1
        if not ok:
            bucket.failures += 1
            self.failures += 1
        horizon = now - window
        while buckets[0].start < horizon:
            expired = buckets.popleft()
            self.total -= expired.total
            self.failures -= expired.failures

    def _forget(self) -> None:
        self.buckets.clear()
        self.total = self.failures = 0

    def _open(self, now: float) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = now
        self._forget()


class HealthRegistry:
    """Health of every target this process has called, by target id; lives on the app, not in the table."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._targets: dict[str, TargetHealth] = {}

    def __getitem__(self, target_id: str) -> TargetHealth:
        health = self._targets.get(target_id)
        if health is None:
            health = self._targets[target_id] = TargetHealth(self._clock)
        return health

    def snapshot(self) -> dict[str, str]:
        """Breaker state per target id, for diagnostics."""
        return {target_id: health.state.value for target_id, health in self._targets.items()}
