"""A Redis-protocol store (Redis, Valkey): its address checked, and its client made, once for every part of the
gateway that uses one.

The password comes apart from the URL (from a Secret), and both it and any password in the URL are the secrets
a store's error messages must be scrubbed of. The client library loads only when a client is made: importing
redis-py's asyncio client costs a process 20-26 MB, which a gateway without a store does not pay.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio

STORE_SCHEMES = ("redis", "rediss")


def store_address(url: str, password: str | None, what: str) -> list[str]:
    """Check ``url`` is ``redis://`` or ``rediss://`` (TLS), else ValueError naming ``what`` it is for; the
    secrets its errors must never show."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in STORE_SCHEMES:
        msg = f"{what} must start with redis:// or rediss:// (TLS), not {parts.scheme or 'nothing'}"
        raise ValueError(msg)
    return [secret for secret in (password, parts.password) if secret]


def store_client(
    url: str, password: str | None, *, connect_timeout_s: float, decode_responses: bool, protocol: int | None = None
) -> redis.asyncio.Redis:
    """A client for ``redis://`` or ``rediss://`` (TLS) that never retries and has no socket timeout of its own:
    every call is bounded once, by its caller (redis-py's own timeout would also wrap each write in a task)."""
    import redis.asyncio  # noqa: PLC0415 - see the module's docstring
    from redis.asyncio.retry import Retry  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415

    return redis.asyncio.Redis.from_url(
        url,
        password=password,
        decode_responses=decode_responses,
        protocol=protocol,
        retry=Retry(NoBackoff(), 0),
        socket_timeout=None,
        socket_connect_timeout=connect_timeout_s,
    )
