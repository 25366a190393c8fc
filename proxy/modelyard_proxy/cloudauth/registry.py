"""Which authoriser each credential gets, kept across routing tables while the credential stays the same.

A new table that changes a credential (a rotated Secret, another region) gets a new authoriser; one that
leaves it unchanged keeps the old one with its cached keys and tokens. The cloud SDKs (botocore, google-auth:
about 15 MB resident and 0.4 s of start-up together) load only in a process that serves such a credential.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from modelyard_proxy.cloudauth.authorizer import CallAuthorizer
from modelyard_routing import Credential, Provider


def _bedrock(credential: Credential) -> CallAuthorizer:
    from modelyard_proxy.cloudauth.aws import bedrock_authorizer  # noqa: PLC0415 - botocore, on first use

    return bedrock_authorizer(credential)


def _vertex_ai(credential: Credential) -> CallAuthorizer:
    from modelyard_proxy.cloudauth.google import GoogleTokens  # noqa: PLC0415 - google-auth, on first use

    return GoogleTokens(credential)


#: How an authoriser is made for each provider that needs one; the others send static keys in headers.
FACTORIES: dict[Provider, Callable[[Credential], CallAuthorizer]] = {
    Provider.BEDROCK: _bedrock,
    Provider.VERTEX_AI: _vertex_ai,
}


class Authorizers:
    """The authorisers of one process's credentials, by credential id."""

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[Credential, CallAuthorizer]] = {}
        self._retired: list[CallAuthorizer] = []

    def for_credential(self, credential: Credential) -> CallAuthorizer | None:
        """The authoriser for ``credential``: the kept one while the credential is unchanged, else a new one."""
        factory = FACTORIES.get(credential.provider)
        if factory is None:
            return None
        kept = self._by_id.get(credential.id)
        if kept is not None and kept[0] == credential:
            return kept[1]
        if kept is not None:
            self._retired.append(kept[1])
        authorizer = factory(credential)
        self._by_id[credential.id] = (credential, authorizer)
        return authorizer

    def keep_only(self, credential_ids: Iterable[str]) -> None:
        """Close the authorisers a new table no longer uses: its credentials changed or are gone."""
        wanted = set(credential_ids)
        for credential_id in [cid for cid in self._by_id if cid not in wanted]:
            self._retired.append(self._by_id.pop(credential_id)[1])
        for authorizer in self._retired:
            authorizer.close()
        self._retired.clear()

    def close(self) -> None:
        """Stop every authoriser's background work (the process is stopping)."""
        self.keep_only(())
