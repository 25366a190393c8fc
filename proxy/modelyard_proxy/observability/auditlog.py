"""The audit trail: one JSON line per request, written to stderr in batches.

Through ``logging`` a line costs a LogRecord, a lock, a formatter with its own clock reading, a write and a
flush: ~8 µs alone and several times that inside a busy proxy, the largest cost the proxy added per request
after its spans. Here a line is one ``orjson.dumps`` and an append; the buffer goes out in one write every
``FLUSH_INTERVAL`` seconds, when it passes ``MAX_BUFFERED`` characters, and at shutdown (Envoy flushes its
access logs once a second). Lines look like every other log line (``<time> INFO modelyard.audit: {...}``)
and obey the ``modelyard.audit`` logger's level, so ``--log-level WARNING`` turns them off.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

import orjson
from aiohttp import web

AUDIT_LOGGER = logging.getLogger("modelyard.audit")
FLUSH_INTERVAL = 0.2
MAX_BUFFERED = 64 * 1024


class AuditLog:
    """Buffered audit lines for one process; ``stream`` defaults to the ``sys.stderr`` of flush time."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._buffered = 0
        self._second = -1
        self._stamp = ""

    def enabled(self) -> bool:
        """Whether audit lines are wanted (the ``modelyard.audit`` logger's level admits INFO)."""
        return AUDIT_LOGGER.isEnabledFor(logging.INFO)

    def write(self, record: dict[str, Any]) -> None:
        """Queue one record's line."""
        now = time.time()
        second = int(now)
        if second != self._second:  # the date part changes once a second: format it once a second
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        line = f"{self._stamp},{int(now % 1 * 1000):03d} INFO modelyard.audit: {orjson.dumps(record).decode()}\n"
        self._lines.append(line)
        self._buffered += len(line)
        if self._buffered >= MAX_BUFFERED:
            self.flush()

    def flush(self) -> None:
        """Write out what is queued."""
        if not self._lines:
            return
        text = "".join(self._lines)
        self._lines.clear()
        self._buffered = 0
        stream = self._stream or sys.stderr
        stream.write(text)
        stream.flush()

    def flushing(self) -> Callable[[web.Application], AsyncIterator[None]]:
        """A cleanup context flushing every ``FLUSH_INTERVAL`` for the app's lifetime, and once at its end."""

        async def flush_periodically(_: web.Application) -> AsyncIterator[None]:
            async def loop() -> None:
                while True:
                    await asyncio.sleep(FLUSH_INTERVAL)
                    self.flush()

            task = asyncio.create_task(loop())
            try:
                yield
            finally:
                task.cancel()
                self.flush()

        return flush_periodically
