"""Bedrock calls authorised as AWS authorises them: SigV4-signed with the credential's AWS identity, or keyed.

A credential with static keys or none (the pod's own identity: IRSA, EKS Pod Identity, ...) signs every call
for service ``bedrock`` in its region, over the exact bytes the adapter built, with the identity's current
keys (:mod:`~modelyard_proxy.cloudauth.aws_identity`, which refreshes them off the event loop). A credential
with a Bedrock API key is not signed: the adapter sends the key as ``Authorization: Bearer``.
"""

from __future__ import annotations

from modelyard_proxy.cloudauth import aws_identity
from modelyard_proxy.cloudauth.authorizer import CallAuthorizer, OutgoingCall
from modelyard_proxy.cloudauth.sigv4 import SigV4Signer
from modelyard_routing import Credential

SERVICE = "bedrock"


class SigV4Authorizer(CallAuthorizer):
    """Signs each call with one reused signer (its signing key cached per day, see ``sigv4``)."""

    def __init__(self, credential: Credential) -> None:
        if credential.region is None:
            msg = f"credential {credential.id} has no region to sign for"
            raise LookupError(msg)
        self._identity = aws_identity.identity_for(credential)
        self._signer = SigV4Signer(SERVICE, credential.region)

    async def authorize(self, call: OutgoingCall) -> None:
        keys = await self._identity.current()
        self._signer.sign(call.method, call.url, call.headers, call.body, credentials=keys)


class ApiKeyAuthorizer(CallAuthorizer):
    """A Bedrock API key travels in the adapter's ``Authorization: Bearer`` header: nothing to add."""

    async def authorize(self, call: OutgoingCall) -> None:  # noqa: ARG002
        return


def bedrock_authorizer(credential: Credential) -> CallAuthorizer:
    """The authoriser for a Bedrock credential: keyed when it has an API key, else signed."""
    return ApiKeyAuthorizer() if credential.api_key is not None else SigV4Authorizer(credential)
