"""The AWS keys the simulated AWS accepts: fixed test keys, plus the temporary ones its STS hands out."""

from __future__ import annotations

import dataclasses
import time

from aiohttp import web

#: Keys every simulated AWS account accepts (what tests put in a credential's Secret).
TEST_ACCESS_KEY_ID = "AKIAMODELYARDTEST"
TEST_SECRET_ACCESS_KEY = "modelyard/test+secret/key0000000000000000"  # noqa: S105 - the simulated account's test key


@dataclasses.dataclass(frozen=True)
class IssuedKey:
    """One access key: its secret, the session token that must come with it, and when it stops working."""

    secret_access_key: str
    session_token: str | None = None
    #: Unix time after which the key is refused as expired; None for long-term keys.
    expires_at: float | None = None

    def expired(self, now: float | None = None) -> bool:
        """Whether AWS would answer ExpiredTokenException for this key now."""
        return self.expires_at is not None and (now if now is not None else time.time()) >= self.expires_at


class AwsKeyring:
    """Access key id -> what the simulated AWS knows of it."""

    def __init__(self) -> None:
        self._keys: dict[str, IssuedKey] = {TEST_ACCESS_KEY_ID: IssuedKey(TEST_SECRET_ACCESS_KEY)}

    def add(self, access_key_id: str, key: IssuedKey) -> None:
        """Accept ``access_key_id`` from now on (STS issuing temporary keys)."""
        self._keys[access_key_id] = key

    def revoke(self, access_key_id: str) -> None:
        """Refuse ``access_key_id`` from now on (a rotated key)."""
        self._keys.pop(access_key_id, None)

    def lookup(self, access_key_id: str) -> IssuedKey | None:
        """What is known of ``access_key_id``; None for a key AWS would call unrecognised."""
        return self._keys.get(access_key_id)


#: The simulated AWS account's keyring, one per simulator app (Bedrock checks signatures against it).
AWS_KEYRING = web.AppKey("modelyard_simulator.aws_keys", AwsKeyring)
