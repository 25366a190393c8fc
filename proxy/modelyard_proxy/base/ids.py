"""Unique ids without a uuid4 each: a random per-process prefix and a counter.

A uuid4 costs a system call for randomness per id; on the request path that is measurable. The prefix is
drawn again in a forked child, so worker processes never share a sequence, and it is random, so neither do
pods. Not for anything secret.
"""

from __future__ import annotations

import itertools
import os


class UniqueIds:
    """Fresh 32-hex-digit ids: 16 random digits per process, then a 16-digit counter."""

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        """A fresh id."""
        return f"{self._prefix}{next(self._counter):016x}"


#: Lease ids: unique across the pods sharing a counter store, as members of its lease sets.
LEASE_IDS = UniqueIds()
