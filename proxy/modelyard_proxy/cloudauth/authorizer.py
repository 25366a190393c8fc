"""The authoriser contract: one per credential, asked to authorise each call just before it is sent."""

from __future__ import annotations

import abc
from typing import Protocol


class OutgoingCall(Protocol):
    """An upstream call as built by an adapter (``providers.base.UpstreamCall`` is one)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class CallAuthorizer(abc.ABC):
    """Adds the headers that authenticate a call to ``call.headers``.

    ``authorize`` returns without awaiting anything while a cached credential or token is valid; fetching and
    refreshing (blocking SDK code) run off the event loop, ahead of expiry. Failures raise the gateway's error
    in a shape the client understands, naming the credential, never its secrets.
    """

    @abc.abstractmethod
    async def authorize(self, call: OutgoingCall) -> None:
        """Authenticate ``call`` in place."""

    def close(self) -> None:  # noqa: B027 - most authorisers hold nothing to release
        """Stop background refreshes (the process is stopping, or the credential changed)."""
