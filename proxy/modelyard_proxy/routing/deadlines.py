"""Deadlines of one request: the total one (absolute, on the loop clock) and the per-attempt budgets."""

from __future__ import annotations

import asyncio

from modelyard_proxy.base.settings import ProxySettings
from modelyard_routing import Policy


class Deadlines:
    """Seconds for each phase of an attempt, and the loop time the whole request must end by (or None).

    A plain slotted class: one is made per request, and a frozen dataclass costs several times more to build.
    """

    __slots__ = ("_loop", "connect", "first_token", "idle", "total_at")

    def __init__(self, connect: float, first_token: float, idle: float, total_at: float | None) -> None:
        self.connect = connect
        self.first_token = first_token
        self.idle = idle
        self.total_at = total_at
        self._loop = asyncio.get_running_loop()

    @classmethod
    def start(cls, policy: Policy, settings: ProxySettings) -> Deadlines:
        """The route's deadlines, the proxy's defaults where the route sets none, starting now."""
        connect, first_token, idle, total = policy.connect_ms, policy.first_token_ms, policy.idle_ms, policy.total_ms
        deadlines = cls(
            settings.connect_timeout if connect is None else connect / 1000,
            settings.read_timeout if first_token is None else first_token / 1000,
            settings.read_timeout if idle is None else idle / 1000,
            None,
        )
        if total is not None:
            deadlines.total_at = deadlines._loop.time() + total / 1000
        return deadlines

    def remaining(self) -> float | None:
        """Seconds left before the total deadline, or None without one."""
        if self.total_at is None:
            return None
        return max(0.0, self.total_at - self._loop.time())

    def attempt_budget(self) -> tuple[float, bool]:
        """Seconds an attempt starting now has until its first token, and whether the total deadline (rather
        than the first-token one) is what ends it."""
        remaining = self.remaining()
        if remaining is not None and remaining < self.first_token:
            return remaining, True
        return self.first_token, False
