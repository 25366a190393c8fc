"""What every counter backend offers: the request path codes against this, not against a backend."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease, Spend
from modelyard_routing.table import Consumer
from modelyard_routing.usage import UsageReport

#: The start of every key in a shared store (``MODELYARD_STORE_PREFIX``).
DEFAULT_PREFIX = "modelyard:"


class Counters(Protocol):
    """Admit a request against its consumer's limits, then settle (or release) what it really used."""

    async def admit(self, ask: Ask) -> Admission:
        """Check and apply every limit at once: a lease (rates charged, cost held) or a refusal."""
        ...

    async def settle(self, lease: Lease, *, model: str, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        """Real usage: the hold becomes spend, tokens per minute is corrected, the slot freed, the day counted."""
        ...

    async def release(self, lease: Lease) -> None:
        """A failed request: its hold and tokens are returned and its slot freed (it still counts as a request)."""
        ...

    def submit(self, lease: Lease, spend: Spend | None) -> None:
        """Settle (``spend`` given) or release in the background, never raising: the request path's way, so
        that a client that leaves cannot cancel the bookkeeping and many requests' writes share a round trip."""
        ...

    async def usage(self, consumers: Sequence[Consumer], days: int) -> UsageReport:
        """Spend per period and per-model use for the last ``days`` UTC days."""
        ...

    async def close(self) -> None: ...


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


@runtime_checkable
class StoreCounters(Counters, Protocol):
    """Counters in a store (they need warming up and report its health); checkable without importing its
    client library, which a gateway with no store never loads."""

    state: StoreState

    async def warm_up(self) -> None: ...
