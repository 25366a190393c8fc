"""The conversation store from the gateway's settings: the shared store when one is configured, else this process.

The store's client library (and ``shared``, which uses it) load only when a store is configured: importing
redis-py's asyncio client costs a process 20-26 MB.
"""

from __future__ import annotations

from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.base.storeurl import store_address
from modelyard_proxy.conversations.memory import MemoryStore
from modelyard_proxy.conversations.store import ConversationStore

#: How long connecting may take, at least (a call's own bound applies when it is longer).
CONNECT_TIMEOUT_S = 2.0


def open_conversations(settings: ProxySettings) -> ConversationStore | None:
    """Where ``POST /v1/responses`` keeps conversations; None when ``MODELYARD_RESPONSES_STORE`` is off."""
    if not settings.responses_store:
        return None
    if not settings.store_url:
        return MemoryStore(max_entries=settings.responses_memory_entries, max_bytes=settings.responses_memory_bytes)
    return open_shared(
        settings.store_url,
        settings.store_password,
        prefix=settings.store_prefix,
        timeout_s=settings.responses_store_timeout_ms / 1000,
    )


def open_shared(url: str, password: str | None, *, prefix: str, timeout_s: float) -> ConversationStore:
    """``redis://`` or ``rediss://`` (TLS); the password is passed apart from the URL and never logged."""
    secrets = store_address(url, password, "the store URL")
    from modelyard_proxy.conversations.shared import SharedStore, connect  # noqa: PLC0415 - see the module's docstring

    client = connect(url, password, connect_timeout_s=max(CONNECT_TIMEOUT_S, timeout_s))
    return SharedStore(client, prefix=prefix, timeout_s=timeout_s, secrets=secrets)
