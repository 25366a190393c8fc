"""Conversations in this process: bounded by entries and bytes, least recently used evicted first.

Each worker has its own: a conversation continues only on the worker (and pod) that answered it, so a
gateway with several workers or replicas needs the shared store to serve ``previous_response_id`` reliably.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping, Sequence

DEFAULT_MAX_ENTRIES = 20_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class MemoryStore:
    """``ConversationStore`` in a dict; ``clock`` (monotonic seconds) is replaced by tests."""

    backend = "memory"

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: collections.OrderedDict[tuple[str, str], tuple[float, bytes]] = collections.OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        #: Bytes of every value held.
        self.bytes = 0
        #: Entries dropped to keep within the bounds before they expired.
        self.evicted_total = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, owner: str, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        return [self._get((owner, key), now) for key in keys]

    def _get(self, key: tuple[str, str], now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put_many(self, owner: str, entries: Mapping[str, bytes], ttl_s: int) -> None:
        """Entries together larger than the whole store are not kept (a caller bounds them far lower)."""
        if sum(len(value) for value in entries.values()) > self._max_bytes or len(entries) > self._max_entries:
            return
        now = self._clock()
        for key, value in entries.items():
            self._drop((owner, key))
            self._entries[owner, key] = (now + ttl_s, value)
            self.bytes += len(value)
        self._make_room(now)

    def _make_room(self, now: float) -> None:
        """Drop the expired entries at the old end, then the least recently used until within the bounds."""
        while self._entries:
            key, (expires_at, _) = next(iter(self._entries.items()))
            if expires_at <= now:
                self._drop(key)
            elif len(self._entries) > self._max_entries or self.bytes > self._max_bytes:
                self._drop(key)
                self.evicted_total += 1
            else:
                return

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry[1])

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0
