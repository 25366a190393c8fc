"""A Responses API turn in a conversation the gateway keeps: its history resolved before the run, its answer
kept once it is whole.

The gateway, not the upstream, keeps ``previous_response_id`` and ``item_reference`` state, so a fallback to
another provider continues the same conversation; every upstream gets the whole history and ``store: false``.
A request that keeps nothing and refers to nothing (``store: false``, the whole history in ``input``) skips
all of this.
"""

from __future__ import annotations

import dataclasses

import orjson
from aiohttp import web

from modelyard_proxy.conversations import ConversationStore, Resolved, remember, resolve
from modelyard_proxy.keys import API_KEY, CONVERSATIONS, SETTINGS
from modelyard_proxy.providers.base import Inbound, JSONObject
from modelyard_routing import hash_api_key


@dataclasses.dataclass(slots=True)
class Turn:
    """One request's place in its conversation: who owns it, what it resolved to, whether it was kept yet."""

    owner: str
    resolved: Resolved
    store: ConversationStore | None
    ttl: int
    max_bytes: int
    kept: bool = False

    async def keep(self, answer: JSONObject) -> None:
        """Keep the finished answer (once: a stream's closing frames and its delivery both offer it)."""
        if self.kept:
            return
        self.kept = True
        await remember(self.owner, self.resolved, answer, self.store, self.ttl, max_bytes=self.max_bytes)

    async def keep_body(self, body: bytes) -> None:
        """Keep a whole answer, given as the bytes the client receives."""
        answer = orjson.loads(body)
        if isinstance(answer, dict):
            await self.keep(answer)


def stateless(body: JSONObject) -> bool:
    """Nothing to resolve and nothing to keep: ``store: false`` and no reference to earlier answers."""
    if body.get("store") is not False or body.get("previous_response_id") is not None:
        return False
    items = body.get("input")
    return not isinstance(items, list) or not any(
        isinstance(item, dict) and item.get("type") == "item_reference" for item in items
    )


async def begin(request: web.Request, inbound: Inbound) -> tuple[Inbound, Turn | None]:
    """The request the run sends upstream, and its turn (None when it keeps and refers to nothing).

    Raises the conversation's refusal in OpenAI's shape: 400 for an unknown response or item (or one asked of
    a gateway that keeps none), 503 when the store cannot be read.
    """
    if stateless(inbound.body):
        return inbound, None
    app = request.app
    store, settings = app[CONVERSATIONS], app[SETTINGS]
    owner = hash_api_key(request[API_KEY])
    resolved = await resolve(inbound.body, owner, store)
    upstream = Inbound(resolved.body, None, inbound.schema)
    if not resolved.remember:
        return upstream, None
    return upstream, Turn(owner, resolved, store, settings.responses_ttl, settings.responses_max_bytes)
