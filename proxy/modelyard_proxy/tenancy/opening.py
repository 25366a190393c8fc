"""The gateway's counters from its settings: the shared store behind its failure policy, or in-process."""

from __future__ import annotations

import urllib.parse

from modelyard_proxy.tenancy.guarded import GuardedCounters
from modelyard_proxy.tenancy.local import LocalCounters
from modelyard_proxy.tenancy.shared import DEFAULT_PREFIX, SharedCounters, connect

STORE_SCHEMES = ("redis", "rediss")
#: The client's own socket timeouts: a backstop for probes and reports (request calls have ``timeout_s``).
SOCKET_TIMEOUT_S = 2.0


def open_counters(
    url: str | None, password: str | None, timeout_s: float, prefix: str = DEFAULT_PREFIX
) -> GuardedCounters | LocalCounters:
    """``redis://`` or ``rediss://`` (TLS) to share the counters; None for counters in this process only.

    The password is passed apart from the URL (from a Secret) and never appears in a log line or an error.
    """
    if not url:
        return LocalCounters()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in STORE_SCHEMES:
        msg = f"the counter store URL must start with redis:// or rediss:// (TLS), not {parts.scheme or 'nothing'}"
        raise ValueError(msg)
    client = connect(url, password, socket_timeout_s=max(SOCKET_TIMEOUT_S, timeout_s))
    secrets = [secret for secret in (password, parts.password) if secret]
    return GuardedCounters(SharedCounters(client, prefix=prefix), LocalCounters(), timeout_s=timeout_s, secrets=secrets)
