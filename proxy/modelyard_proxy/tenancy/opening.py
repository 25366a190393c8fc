"""The gateway's counters from its settings: the shared store behind its failure policy, or in-process.

The store's client library (and this package's modules that use it) load only when a store is configured:
importing redis-py's asyncio client costs a process 20-26 MB.
"""

from __future__ import annotations

from modelyard_proxy.base.storeurl import store_address
from modelyard_proxy.tenancy.counters import DEFAULT_PREFIX, StoreCounters
from modelyard_proxy.tenancy.local import LocalCounters

#: How long connecting may take (request calls have ``timeout_s``, probes and reports their own).
CONNECT_TIMEOUT_S = 2.0


def open_counters(
    url: str | None, password: str | None, timeout_s: float, prefix: str = DEFAULT_PREFIX
) -> StoreCounters | LocalCounters:
    """``redis://`` or ``rediss://`` (TLS) to share the counters; None for counters in this process only.

    The password is passed apart from the URL (from a Secret) and never appears in a log line or an error.
    """
    if not url:
        return LocalCounters()
    secrets = store_address(url, password, "the counter store URL")
    from modelyard_proxy.tenancy.guarded import GuardedCounters  # noqa: PLC0415 - see the module's docstring
    from modelyard_proxy.tenancy.shared import SharedCounters, connect  # noqa: PLC0415

    client = connect(url, password, connect_timeout_s=max(CONNECT_TIMEOUT_S, timeout_s))
    return GuardedCounters(SharedCounters(client, prefix=prefix), LocalCounters(), timeout_s=timeout_s, secrets=secrets)
