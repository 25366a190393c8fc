"""Per-consumer counters: request and token rates, concurrency and USD budgets, shared by every pod and worker.

With a Redis-protocol store (Redis, Valkey) every limit is global: one Lua script checks and applies all of a
request's limits atomically. Without one, the counters live in the process and are exact for that process.
"""

from modelyard_proxy.tenancy.counters import Counters
from modelyard_proxy.tenancy.guarded import GuardedCounters, StoreState
from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease, PeriodHold, RateState, Refusal, RefusalReason
from modelyard_proxy.tenancy.local import LocalCounters
from modelyard_proxy.tenancy.opening import open_counters
from modelyard_proxy.tenancy.shared import DEFAULT_PREFIX, SharedCounters

__all__ = [
    "DEFAULT_PREFIX",
    "Admission",
    "Ask",
    "Counters",
    "GuardedCounters",
    "Lease",
    "LocalCounters",
    "PeriodHold",
    "RateState",
    "Refusal",
    "RefusalReason",
    "SharedCounters",
    "StoreState",
    "open_counters",
]
