"""Whose AWS keys sign a Bedrock call: the credential's static keys, or the pod's own identity.

The pod's own identity (IRSA, EKS Pod Identity, environment, instance role) comes through botocore's
standard credential chain.
"""

from __future__ import annotations

import abc

from botocore.credentials import ReadOnlyCredentials

from modelyard_routing import Credential


class AwsIdentity(abc.ABC):
    """The AWS keys to sign with now."""

    @abc.abstractmethod
    async def current(self) -> ReadOnlyCredentials:
        """Keys valid for at least the next request."""


class StaticIdentity(AwsIdentity):
    """Keys from the credential's Secret: they change only with a new table (a rotated Secret)."""

    def __init__(self, access_key_id: str, secret_access_key: str, session_token: str | None) -> None:
        self._keys = ReadOnlyCredentials(access_key_id, secret_access_key, session_token)

    async def current(self) -> ReadOnlyCredentials:
        return self._keys


def identity_for(credential: Credential) -> AwsIdentity:
    """The identity a Bedrock credential signs with."""
    keys = credential.aws_keys
    if keys is None:
        msg = f"credential {credential.id} has no static AWS keys and the pod's own identity is not wired yet"
        raise LookupError(msg)
    token = keys.session_token.get_secret_value() if keys.session_token is not None else None
    return StaticIdentity(keys.access_key_id.get_secret_value(), keys.secret_access_key.get_secret_value(), token)
