"""Conversations in a Redis-protocol store (Redis, Valkey), shared by every pod and worker.

Keys: ``<prefix>responses:{<owner digest>}:<key>`` (the owner's digest as a hash tag, so one owner's keys share
a Redis Cluster slot and a conversation is written in one transaction), each set with ``EX`` so the store
forgets it by itself. Every call is bounded by ``timeout_s``; a store that fails is logged once when it goes
and once when it is back, never with its password.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import TypeVar

import redis.asyncio

from modelyard_proxy.base.storeurl import store_client
from modelyard_proxy.conversations.store import ConversationStoreUnavailable, owner_digest

log = logging.getLogger(__name__)

#: What a store that cannot be reached raises (a timeout is asyncio's own TimeoutError).
STORE_ERRORS = (redis.RedisError, OSError, TimeoutError)
NAMESPACE = "responses:"
T = TypeVar("T")


def connect(url: str, password: str | None, *, connect_timeout_s: float) -> redis.asyncio.Redis:
    """The store's client for conversations: values are bytes (JSON the caller encodes)."""
    return store_client(url, password, connect_timeout_s=connect_timeout_s, decode_responses=False)


class SharedStore:
    """``ConversationStore`` in one Redis or Valkey."""

    backend = "shared"

    def __init__(
        self, client: redis.asyncio.Redis, *, prefix: str, timeout_s: float, secrets: Sequence[str] = ()
    ) -> None:
        self._client = client
        self._prefix = prefix + NAMESPACE
        self._timeout_s = timeout_s
        self._secrets = tuple(secret for secret in secrets if secret)
        #: False after a failure until a call succeeds again: the log says so once each way.
        self.up = True
        self.errors_total = 0

    def key(self, owner: str, key: str) -> str:
        """The store's key for ``key`` in ``owner``'s space."""
        return f"{self._prefix}{{{owner_digest(owner)}}}:{key}"

    async def get_many(self, owner: str, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        values = await self._bounded(self._client.mget([self.key(owner, key) for key in keys]))
        return [value.encode() if isinstance(value, str) else value for value in values]

    async def put_many(self, owner: str, entries: Mapping[str, bytes], ttl_s: int) -> None:
        if not entries:
            return
        pipeline = self._client.pipeline(transaction=True)
        for key, value in entries.items():
            _ = pipeline.set(self.key(owner, key), value, ex=ttl_s)  # queued: sent by ``execute``
        await self._bounded(pipeline.execute())

    async def _bounded(self, call: Awaitable[T]) -> T:
        """The call's answer within ``timeout_s``, else ``ConversationStoreUnavailable``."""
        try:
            async with asyncio.timeout(self._timeout_s):
                answer = await call
        except STORE_ERRORS as error:
            self.errors_total += 1
            if self.up:
                self.up = False
                log.warning("conversation store unavailable: %s", self._describe(error))
            raise ConversationStoreUnavailable from None  # the log has said why; the chain may quote the conversation
        if not self.up:
            self.up = True
            log.info("conversation store reachable again")
        return answer

    def _describe(self, error: BaseException) -> str:
        """The error for the log, never with a password or a conversation in it."""
        if isinstance(error, TimeoutError) and not str(error):
            text = f"no answer within {self._timeout_s * 1000:g} ms"
        elif isinstance(error, redis.ResponseError):
            text = type(error).__name__  # redis-py quotes the command in it: the conversation itself
        else:
            text = f"{type(error).__name__}: {error}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def close(self) -> None:
        await self._client.aclose()
