"""Bedrock, Vertex AI and egress settings compile into the table, their Secrets checked for shape and masked."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trustme

from modelyard_routing import ObjectRef, compile_inventory
from modelyard_routing.table import Credential, RoutingTable
from tests.routing.test_compiler import credential, inventory, route, secret

CA = trustme.CA()
CLIENT = CA.issue_cert("client.modelyard.test")
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "team-ml-prod",
    "client_email": "gateway@team-ml-prod.iam.gserviceaccount.com",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    "token_uri": "https://oauth2.googleapis.com/token",
}


ROUTE = route("m", {"model": "m", "targets": [{"credentialRef": {"name": "cloud"}, "model": "some-model"}]})


def compiled(spec: dict[str, Any], *secrets: dict[str, Any]) -> tuple[Credential | None, tuple[str, str, str]]:
    """The credential ``cloud`` compiled from ``spec`` and ``secrets``, and its ResolvedRefs condition."""
    result = compile_inventory(inventory(*secrets, credential("cloud", spec), ROUTE), generation=1)
    by_type = {c.type: c for c in result.conditions[ObjectRef("ProviderCredential", "default", "cloud")]}
    resolved = by_type["ResolvedRefs"]
    table_credential = result.table.credentials[0] if result.table.credentials else None
    return table_credential, (resolved.status, resolved.reason, resolved.message)


def test_bedrock_with_static_keys_gets_its_regional_endpoint_and_masked_keys() -> None:
    keys = secret(
        "aws", {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "wJalr-secret", "sessionToken": "sess-tok-9"}
    )
    spec = {"provider": "bedrock", "region": "eu-central-1", "aws": {"accessKeySecretRef": {"name": "aws"}}}
    cred, resolved = compiled(spec, keys)
    assert resolved[0] == "True"
    assert cred is not None
    assert cred.aws_keys is not None
    assert cred.base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    assert cred.aws_keys.secret_access_key.get_secret_value() == "wJalr-secret"
    assert cred.aws_keys.session_token is not None
    masked = json.dumps(cred.model_dump(mode="json"))
    assert "wJalr-secret" not in masked
    assert "AKIAEXAMPLE" not in masked
    assert "sess-tok-9" not in masked


def test_bedrock_keys_secret_without_the_secret_key_is_unresolved_naming_the_key() -> None:
    keys = secret("aws", {"accessKeyId": "AKIAEXAMPLE"})
    spec = {"provider": "bedrock", "region": "us-east-1", "aws": {"accessKeySecretRef": {"name": "aws"}}}
    cred, (status, reason, message) = compiled(spec, keys)
    assert cred is None
    assert (status, reason) == ("False", "SecretKeyNotFound")
    assert "'secretAccessKey'" in message


def test_bedrock_without_keys_uses_the_pods_identity_and_an_api_key_is_a_bearer_token() -> None:
    ambient, resolved = compiled({"provider": "bedrock", "region": "us-west-2"})
    assert resolved[0] == "True"
    assert ambient is not None
    assert ambient.aws_keys is None
    assert ambient.api_key is None
    api_key, _ = compiled(
        {"provider": "bedrock", "region": "us-west-2", "secretRef": {"name": "k"}}, secret("k", {"apiKey": "ABSK-1"})
    )
    assert api_key is not None
    assert api_key.api_key is not None
    assert api_key.aws_keys is None


@pytest.mark.parametrize(
    ("region", "base_url"),
    [
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com/v1"),
        ("global", "https://aiplatform.googleapis.com/v1"),
    ],
)
def test_vertex_service_account_key_is_kept_apart_from_api_keys(region: str, base_url: str) -> None:
    spec = {
        "provider": "vertex-ai",
        "region": region,
        "vertex": {"project": "team-ml-prod", "publisher": "anthropic"},
        "secretRef": {"name": "sa", "key": "key.json"},
    }
    cred, resolved = compiled(spec, secret("sa", {"key.json": json.dumps(SERVICE_ACCOUNT)}))
    assert resolved[0] == "True"
    assert cred is not None
    assert cred.vertex is not None
    assert cred.service_account is not None
    assert cred.api_key is None
    assert (cred.base_url, cred.vertex.project, cred.vertex.publisher) == (base_url, "team-ml-prod", "anthropic")
    assert "PRIVATE KEY" not in json.dumps(cred.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("not json at all", "not JSON"),
        (json.dumps({**SERVICE_ACCOUNT, "type": "authorized_user"}), '"type": "service_account"'),
        (json.dumps({k: v for k, v in SERVICE_ACCOUNT.items() if k != "private_key"}), "no private_key"),
        (json.dumps({**SERVICE_ACCOUNT, "private_key": "hunter2"}), "private_key is not a PEM key"),
    ],
)
def test_a_malformed_service_account_key_is_refused_without_echoing_it(value: str, fragment: str) -> None:
    spec = {
        "provider": "vertex-ai",
        "region": "us-east5",
        "vertex": {"project": "p-12345"},
        "secretRef": {"name": "sa"},
    }
    cred, (status, reason, message) = compiled(spec, secret("sa", {"apiKey": value}))
    assert cred is None
    assert (status, reason) == ("False", "SecretValueInvalid")
    assert fragment in message
    assert "default/sa" in message
    assert "hunter2" not in message
    assert "BEGIN" not in message


def test_egress_resolves_proxy_ca_and_client_certificate() -> None:
    spec = {
        "provider": "openai-compatible",
        "baseURL": "https://vllm.internal:8443/v1",
        "egress": {
            "proxy": {"urlSecretRef": {"name": "proxy"}},
            "caBundleSecretRef": {"name": "internal-ca"},
            "clientCertificateSecretRef": {"name": "client-tls"},
        },
    }
    tls = {
        "tls.crt": CLIENT.cert_chain_pems[0].bytes().decode(),
        "tls.key": CLIENT.private_key_pem.bytes().decode(),
    }
    secrets = (
        secret("proxy", {"url": "http://gw:Pa55-word@squid.egress:3128"}),
        secret("internal-ca", {"ca.crt": CA.cert_pem.bytes().decode()}),
        secret("client-tls", tls),
    )
    cred, resolved = compiled(spec, *secrets)
    assert resolved[0] == "True"
    assert cred is not None
    assert cred.egress is not None
    assert cred.egress.proxy_url is not None
    assert cred.egress.proxy_url.get_secret_value() == "http://gw:Pa55-word@squid.egress:3128"
    assert cred.egress.ca_bundle == CA.cert_pem.bytes().decode()
    assert cred.egress.client_key is not None
    dumped = json.dumps(cred.model_dump(mode="json"))
    assert "Pa55-word" not in dumped
    assert "PRIVATE KEY" not in dumped
    table = compile_inventory(inventory(*secrets, credential("cloud", spec), ROUTE), generation=1).table
    revived = RoutingTable.from_wire(table.to_wire()).credentials[0]
    assert revived == table.credentials[0]  # the pushed table carries the secrets to the proxy


@pytest.mark.parametrize(
    ("egress", "secrets", "fragment"),
    [
        ({"proxy": {"urlSecretRef": {"name": "p"}}}, [secret("p", {"url": "socks5://h:1"})], "not an http(s)://"),
        ({"caBundleSecretRef": {"name": "ca"}}, [secret("ca", {"ca.crt": "just text"})], "holds no PEM certificate"),
        (
            {"clientCertificateSecretRef": {"name": "tls"}},
            [secret("tls", {"tls.crt": CA.cert_pem.bytes().decode(), "tls.key": "nope"})],
            "holds no PEM private key",
        ),
    ],
)
def test_egress_values_of_the_wrong_shape_are_refused(
    egress: dict[str, Any], secrets: list[dict[str, Any]], fragment: str
) -> None:
    spec = {"provider": "openai", "secretRef": {"name": "k"}, "egress": egress}
    cred, (status, reason, message) = compiled(spec, secret("k", {"apiKey": "sk-1"}), *secrets)
    assert cred is None
    assert (status, reason) == ("False", "SecretValueInvalid")
    assert fragment in message


def test_a_credential_without_the_new_fields_hashes_as_before() -> None:
    """Tables of existing installs keep their hash: the new fields are left out of the dump when unset."""
    cred, _ = compiled({"provider": "openai", "secretRef": {"name": "k"}}, secret("k", {"apiKey": "sk-1"}))
    assert cred is not None
    assert set(cred.model_dump(mode="json")) == {
        "id",
        "provider",
        "base_url",
        "api_key",
        "azure",
        "headers",
        "region",
        "jurisdiction",
        "data_retention",
    }
