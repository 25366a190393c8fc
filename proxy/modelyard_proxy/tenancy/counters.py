"""What every counter backend offers: the request path codes against this, not against a backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease
from modelyard_routing.table import Consumer
from modelyard_routing.usage import UsageReport


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

    async def usage(self, consumers: Sequence[Consumer], days: int) -> UsageReport:
        """Spend per period and per-model use for the last ``days`` UTC days."""
        ...

    async def close(self) -> None: ...
