"""Turns bursts of watch events into one recompile.

Handlers only say "something changed"; the reconciler rebuilds everything from the indexes (level-based),
so a burst of a hundred events needs one compile, after the burst settles.
"""

from __future__ import annotations

import asyncio


class Debouncer:
    """Settles ``delay`` seconds after the last request, or ``max_delay`` after the first of a burst."""

    def __init__(self, delay: float, max_delay: float) -> None:
        self.delay = delay
        self.max_delay = max(max_delay, delay)
        self._first: float | None = None
        self._last = 0.0
        self._wakeup = asyncio.Event()

    def request(self) -> None:
        """Note a change; cheap and synchronous, for any coroutine in the operator's loop (not threads)."""
        now = asyncio.get_running_loop().time()
        if self._first is None:
            self._first = now
        self._last = now
        self._wakeup.set()

    @property
    def pending(self) -> bool:
        """Whether a change is waiting to be handled."""
        return self._first is not None

    async def wait(self, give_up_after: float | None = None) -> bool:
        """Wait for a burst to settle (True), or ``give_up_after`` seconds with no change at all (False)."""
        if self._first is None:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), give_up_after)
            except TimeoutError:
                return False
        while self._first is not None:
            settle_at = min(self._last + self.delay, self._first + self.max_delay)
            remaining = settle_at - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)
        self._first = None
        return True
