"""The address of a Redis-protocol store (Redis, Valkey): checked once for every part of the gateway that uses one.

The password comes apart from the URL (from a Secret), and both it and any password in the URL are the secrets
a store's error messages must be scrubbed of.
"""

from __future__ import annotations

import urllib.parse

STORE_SCHEMES = ("redis", "rediss")


def store_address(url: str, password: str | None, what: str) -> list[str]:
    """Check ``url`` is ``redis://`` or ``rediss://`` (TLS), else ValueError naming ``what`` it is for; the
    secrets its errors must never show."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in STORE_SCHEMES:
        msg = f"{what} must start with redis:// or rediss:// (TLS), not {parts.scheme or 'nothing'}"
        raise ValueError(msg)
    return [secret for secret in (password, parts.password) if secret]
