"""Which AWS identity each Bedrock credential of a routing table signs with, across tables: static keys until a
new table rotates them (a new credential object, a new identity; the old authoriser closed), the one chain
identity of the process for every credential without keys, none for a Bedrock API key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelyard_proxy.cloudauth import registry
from modelyard_proxy.cloudauth.authorizer import CallAuthorizer, OutgoingCall
from modelyard_proxy.cloudauth.aws_identity import AwsIdentity, ChainIdentity, identity_for, pod_identity
from modelyard_proxy.cloudauth.registry import Authorizers
from modelyard_routing import Provider, compile_inventory
from modelyard_routing.table import Credential
from tests.routing.test_compiler import credential, inventory, route, secret


class IdentityProbe(CallAuthorizer):
    """An authoriser that only keeps the identity its credential got, and whether it was closed."""

    def __init__(self, credential: Credential) -> None:
        self.identity: AwsIdentity = identity_for(credential)
        self.closed = False

    async def authorize(self, call: OutgoingCall) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def probes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(registry.FACTORIES, Provider.BEDROCK, IdentityProbe)
    pod_identity.cache_clear()
    yield
    pod_identity.cache_clear()


def bedrock(name: str, **auth: Any) -> dict[str, Any]:
    return credential(name, {"provider": "bedrock", "region": "us-east-1", **auth})


def credentials(*docs: dict[str, Any]) -> dict[str, Credential]:
    """The table's credentials by name, compiled from ``docs`` and a route per credential."""
    names = [doc["metadata"]["name"] for doc in docs if doc["kind"] == "ProviderCredential"]
    routes = [
        route(n, {"model": n, "targets": [{"credentialRef": {"name": n}, "model": "amazon.nova-lite-v1:0"}]})
        for n in names
    ]
    table = compile_inventory(inventory(*docs, *routes), generation=1).table
    return {c.id.rpartition("/")[2]: c for c in table.credentials}


def probe(authorizers: Authorizers, credential: Credential) -> IdentityProbe:
    authorizer = authorizers.for_credential(credential)
    assert isinstance(authorizer, IdentityProbe)
    return authorizer


def keys(key_id: str, secret_key: str) -> dict[str, Any]:
    return secret("aws", {"accessKeyId": key_id, "secretAccessKey": secret_key})


STATIC = bedrock("static", aws={"accessKeySecretRef": {"name": "aws"}})


async def test_rotated_static_keys_get_a_new_identity_with_the_next_table() -> None:
    authorizers = Authorizers()
    old = probe(authorizers, credentials(keys("AKIAOLDKEY", "old-secret"), STATIC)["static"])
    assert (await old.identity.current()).access_key == "AKIAOLDKEY"

    # A new table with the credential unchanged keeps its authoriser.
    assert probe(authorizers, credentials(keys("AKIAOLDKEY", "old-secret"), STATIC)["static"]) is old

    rotated = credentials(keys("AKIANEWKEY", "new-secret"), STATIC)["static"]
    new = probe(authorizers, rotated)
    authorizers.keep_only([rotated.id])
    assert new is not old
    assert old.closed
    assert not new.closed
    current = await new.identity.current()
    assert (current.access_key, current.secret_key) == ("AKIANEWKEY", "new-secret")


def test_credentials_without_keys_share_the_process_chain_identity() -> None:
    compiled = credentials(bedrock("east"), bedrock("west", region="us-west-2"))
    authorizers = Authorizers()
    east, west = probe(authorizers, compiled["east"]), probe(authorizers, compiled["west"])
    assert east is not west
    assert isinstance(east.identity, ChainIdentity)
    assert east.identity is west.identity is pod_identity()


def test_a_bedrock_api_key_signs_with_no_aws_identity() -> None:
    keyed = credentials(secret("k", {"apiKey": "ABSK-key"}), bedrock("keyed", secretRef={"name": "k"}))["keyed"]
    with pytest.raises(LookupError, match="API key"):
        identity_for(keyed)
