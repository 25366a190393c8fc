"""Deadlines of one request: the total one (absolute, on the loop clock) and the per-attempt budgets."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp

from modelyard_proxy.settings import ProxySettings
from modelyard_routing import Policy


@dataclasses.dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds for each phase of an attempt, and the loop time the whole request must end by (or None)."""

    connect: float
    first_token: float
    idle: float
    total_at: float | None

    @classmethod
    def start(cls, policy: Policy, settings: ProxySettings) -> Deadlines:
        """The route's deadlines, the proxy's defaults where the route sets none, starting now."""

        def seconds(ms: int | None, default: float) -> float:
            return default if ms is None else ms / 1000

        now = asyncio.get_running_loop().time()
        return cls(
            connect=seconds(policy.connect_ms, settings.connect_timeout),
            first_token=seconds(policy.first_token_ms, settings.read_timeout),
            idle=seconds(policy.idle_ms, settings.read_timeout),
            total_at=None if policy.total_ms is None else now + policy.total_ms / 1000,
        )

    def client_timeout(self) -> aiohttp.ClientTimeout:
        """aiohttp's timeouts for one attempt: connect, and the longest silence between reads."""
        return aiohttp.ClientTimeout(total=None, connect=self.connect, sock_read=self.idle)

    def remaining(self) -> float | None:
        """Seconds left before the total deadline, or None without one."""
        if self.total_at is None:
            return None
        return max(0.0, self.total_at - asyncio.get_running_loop().time())

    def first_token_budget(self) -> float:
        """The first-token deadline of an attempt starting now, never past the total deadline."""
        remaining = self.remaining()
        return self.first_token if remaining is None else min(self.first_token, remaining)
