"""Responses API conversations kept by the gateway: ``previous_response_id`` and ``item_reference`` served for
every provider, in the shared store (Redis, Valkey) when one is configured, else in the process.

The store's modules (``shared``) are imported from their own modules, only when a store is used.
"""

from modelyard_proxy.conversations.memory import MemoryStore
from modelyard_proxy.conversations.opening import open_conversations, open_shared
from modelyard_proxy.conversations.store import ConversationStore, ConversationStoreUnavailable, owner_digest
from modelyard_proxy.conversations.turns import Remembered, Resolved, remember, resolve

__all__ = [
    "ConversationStore",
    "ConversationStoreUnavailable",
    "MemoryStore",
    "Remembered",
    "Resolved",
    "open_conversations",
    "open_shared",
    "owner_digest",
    "remember",
    "resolve",
]
