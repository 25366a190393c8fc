"""Where the gateway keeps Responses API conversations: what every backend offers, and how it fails.

Entries are opaque bytes under a key (``response:<id>``, ``item:<id>``) inside one owner's space: the owner
is a digest of the gateway key, so one key can never read what another key stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Protocol

from modelyard_proxy.base.errors import GatewayError

#: The client is told to try again after this many seconds when the store cannot be reached.
RETRY_AFTER_S = 1.0


class ConversationStoreUnavailable(GatewayError):
    """The store did not answer in time or refused the connection: a 503 the client may retry.

    The message names neither the store's address nor its password: what failed is in the gateway's log.
    """

    def __init__(self) -> None:
        super().__init__(
            503,
            "Stored responses cannot be read or written right now: the gateway's conversation store is unreachable.",
            type="server_error",
            code="responses_store_unavailable",
            retry_after=RETRY_AFTER_S,
        )


def owner_digest(owner: str) -> str:
    """What names an owner's space in a shared store: never the owner string itself."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


class ConversationStore(Protocol):
    """Entries that expire, scoped by owner. Every call either answers or raises ``ConversationStoreUnavailable``
    within the backend's bound: none waits on a store that does not answer."""

    #: ``memory`` or ``shared``, for logs and metrics.
    backend: str

    async def get_many(self, owner: str, keys: Sequence[str]) -> list[bytes | None]:
        """Each key's value (None when absent or expired), in the order asked."""
        ...

    async def put_many(self, owner: str, entries: Mapping[str, bytes], ttl_s: int) -> None:
        """Store every entry for ``ttl_s`` seconds, all or none."""
        ...

    async def close(self) -> None: ...
