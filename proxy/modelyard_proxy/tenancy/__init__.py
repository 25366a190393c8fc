"""Per-consumer counters: request and token rates, concurrency and USD budgets, shared by every pod and worker.

With a Redis-protocol store (Redis, Valkey) every limit is global: one Lua script checks and applies all of a
request's limits atomically. Without one, the counters live in the process and are exact for that process.
The store's modules (``guarded``, ``shared``) are imported from their own modules, only when a store is used.
"""

from modelyard_proxy.tenancy.counters import DEFAULT_PREFIX, Counters, StoreCounters, StoreState
from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease, PeriodHold, RateState, Refusal, RefusalReason, Spend
from modelyard_proxy.tenancy.local import LocalCounters
from modelyard_proxy.tenancy.opening import open_counters

__all__ = [
    "DEFAULT_PREFIX",
    "Admission",
    "Ask",
    "Counters",
    "Lease",
    "LocalCounters",
    "PeriodHold",
    "RateState",
    "Refusal",
    "RefusalReason",
    "Spend",
    "StoreCounters",
    "StoreState",
    "open_counters",
]
