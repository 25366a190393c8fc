"""Which target a request tries, in what order and when: balancing, retries with backoff, fallback, hedging.

Everything here happens before the commit point, where failing is still free. The plan decides only the
order and the timing; each attempt itself is :class:`modelyard_proxy.relay.attempt.Attempts`' (reached
through the small :class:`Tries` surface, so the plan is testable on its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from typing import Protocol

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.relay.outcomes import Prepared
from modelyard_proxy.relay.reporting import RunRecord
from modelyard_proxy.routing import policy
from modelyard_proxy.routing.balancers import plan
from modelyard_proxy.routing.deadlines import Deadlines
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.table.store import ResolvedRoute, ResolvedTarget
from modelyard_routing import Policy

log = logging.getLogger(__name__)

#: An upstream asking for a longer pause than this is not waited for (as openai-python does past 60-120 s).
MAX_RETRY_AFTER = 60.0


class Tries(Protocol):
    """What the plan needs of an attempt: a check before the first try at a target, and the try itself."""

    def check_fits(self, resolved: ResolvedTarget) -> None:
        """Raise if ``resolved`` cannot take this request at all (nothing is sent to it)."""

    async def run(self, resolved: ResolvedTarget, deadlines: Deadlines, *, retry: int, hedge: bool) -> Prepared:
        """One attempt at ``resolved``; raises its failure as a GatewayError."""


@dataclasses.dataclass(slots=True, eq=False)
class Plan:
    """The order and timing of one request's attempts over its route's targets, until one reaches the commit point."""

    route: ResolvedRoute
    tries: Tries
    record: RunRecord
    metrics: Metrics
    health: HealthRegistry
    rng: random.Random
    policy: Policy = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.policy = self.route.route.policy

    async def find(self, profile: str | None, deadlines: Deadlines) -> Prepared:
        """The first attempt to reach the commit point; the last failure when none does.

        The total deadline needs no timer of its own here: every attempt's budget ends by it, and no backoff
        sleeps past it.
        """
        candidates = self.route.targets_for(profile)
        order = plan(
            self.policy.strategy,
            candidates.targets,
            self.health,
            self.rng,
            one_per_priority=candidates.one_per_priority,
        )
        rest = order
        if self.policy.strategy == "hedge" and len(order) > 1:
            try:
                return await self._hedge(deadlines, order[0], order[1])
            except GatewayError as exc:
                rest = order[2:]
                if not self._can_fall_back(exc, rest, deadlines):
                    raise
                self._fell_back(exc)
        for index, resolved in enumerate(rest):
            try:
                return await self._over_target(deadlines, resolved)
            except GatewayError as exc:
                if not self._can_fall_back(exc, rest[index + 1 :], deadlines):
                    raise
                log.warning("target %s failed (%s), falling back", resolved.target.id, exc.code)
                self._fell_back(exc)
        raise AssertionError("unreachable: the last target's failure is raised")  # pragma: no cover

    def _can_fall_back(self, exc: GatewayError, rest: list[ResolvedTarget], deadlines: Deadlines) -> bool:
        """Whether the route moves on after ``exc``: it falls back on this failure, a target is left, and
        attempts and time remain (else the failure is the answer, and no fallback is counted)."""
        return bool(rest) and policy.falls_back(exc, self.policy) and not self._attempts_exhausted(deadlines)

    def _fell_back(self, exc: GatewayError) -> None:
        self.record.fallback_reason = exc.code or exc.type
        self.metrics.fallbacks.inc((self.route.route.id, self.record.fallback_reason))

    def _attempts_exhausted(self, deadlines: Deadlines) -> bool:
        """No attempt is left: the route's cap on attempts is reached, or the total deadline has passed."""
        cap = self.policy.max_total_attempts
        return (cap is not None and self.record.attempts >= cap) or deadlines.remaining() == 0

    async def _hedge(self, deadlines: Deadlines, first: ResolvedTarget, second: ResolvedTarget) -> Prepared:
        """Race ``second`` against ``first`` once the hedge delay passed (or ``first`` failed); first answer wins."""
        delay = (self.policy.hedge_delay_ms or 0) / 1000
        tasks = {asyncio.ensure_future(self._over_target(deadlines, first))}
        pending_second = True
        last: GatewayError | None = None
        try:
            while tasks or pending_second:
                done, tasks = await asyncio.wait(
                    tasks, timeout=delay if pending_second else None, return_when=asyncio.FIRST_COMPLETED
                )
                winners: list[Prepared] = []
                for task in done:
                    failure = task.exception()
                    if failure is None:
                        winners.append(task.result())
                    elif isinstance(failure, GatewayError):
                        last = failure
                    else:
                        raise failure
                if winners:
                    for extra in winners[1:]:
                        extra.close()
                    return winners[0]
                if pending_second and (not done or not tasks):
                    pending_second = False
                    if last is None or policy.falls_back(last, self.policy):
                        self.metrics.hedges.inc((self.route.route.id,))
                        tasks.add(asyncio.ensure_future(self._over_target(deadlines, second, hedge=True)))
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    loser = await task
                    loser.close()  # it reached the commit point too late: never billed to this stream
        assert last is not None
        raise last

    async def _over_target(self, deadlines: Deadlines, resolved: ResolvedTarget, *, hedge: bool = False) -> Prepared:
        """Attempts at one target: retried with backoff while the failure is transient and time allows."""
        self.tries.check_fits(resolved)
        retry = 0
        while True:
            try:
                return await self.tries.run(resolved, deadlines, retry=retry, hedge=hedge)
            except GatewayError as exc:
                if not policy.retries_same_target(exc, self.policy) or retry + 1 >= self.policy.attempts:
                    raise
                if self._attempts_exhausted(deadlines):
                    raise
                wait = policy.backoff(self.policy, retry, self.rng, exc.retry_after)
                remaining = deadlines.remaining()
                if wait > MAX_RETRY_AFTER or (remaining is not None and wait >= remaining):
                    raise  # waiting would outlast the deadline: fall back now instead
                retry += 1
                self.metrics.retries.inc(resolved.labels)
                await asyncio.sleep(wait)
