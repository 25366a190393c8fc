"""Every Secret a ProviderCredential names wakes the reconciler when it changes, TLS Secrets included."""

from __future__ import annotations

from typing import Any

import kopf

from modelyard_operator import inventory
from modelyard_operator.context import OperatorContext
from modelyard_operator.debounce import Debouncer
from modelyard_operator.handlers import watching
from modelyard_operator.kube import KubeClient
from modelyard_operator.settings import OperatorSettings

CREDENTIAL: dict[str, Any] = {
    "apiVersion": "modelyard.io/v1alpha1",
    "kind": "ProviderCredential",
    "metadata": {"name": "bedrock", "namespace": "ml"},
    "spec": {
        "provider": "bedrock",
        "region": "us-east-1",
        "aws": {"accessKeySecretRef": {"name": "aws-keys"}},
        "egress": {
            "proxy": {"urlSecretRef": {"name": "proxy-url", "key": "url"}},
            "caBundleSecretRef": {"name": "internal-ca"},
            "clientCertificateSecretRef": {"name": "client-tls"},
        },
    },
}


def test_every_secret_a_credential_names_is_found() -> None:
    assert inventory.secret_references(CREDENTIAL) == [
        ("ml", "aws-keys"),
        ("ml", "proxy-url"),
        ("ml", "internal-ca"),
        ("ml", "client-tls"),
    ]
    plain = {"metadata": {"name": "o", "namespace": "ml"}, "spec": {"provider": "openai", "secretRef": {"name": "k"}}}
    assert inventory.secret_references(plain) == [("ml", "k")]
    assert inventory.secret_references({"metadata": {"name": "v", "namespace": "ml"}, "spec": {"egress": "x"}}) == []


def test_a_change_to_any_of_them_wakes_the_reconciler() -> None:
    readers = dict.fromkeys(inventory.secret_references(CREDENTIAL), ("ml", "bedrock"))  # the index's entries
    context = OperatorContext(OperatorSettings(), KubeClient(), Debouncer(0.1, 0.1))
    for name in ("aws-keys", "proxy-url", "internal-ca", "client-tls"):
        assert watching.secret_in_use(("ml", name), {}, readers, {}, context)
    assert not watching.secret_in_use(("ml", "unrelated"), {}, readers, {}, context)


def test_a_client_certificate_secret_is_read_but_service_account_tokens_are_not() -> None:
    context = OperatorContext(OperatorSettings(watch_namespaces=("ml",)), KubeClient(), Debouncer(0.1, 0.1))
    tls: kopf.RawBody = {"type": "kubernetes.io/tls", "metadata": {"name": "client-tls"}}  # type: ignore[typeddict-unknown-key]
    token: kopf.RawBody = {"type": "kubernetes.io/service-account-token", "metadata": {"name": "t"}}  # type: ignore[typeddict-unknown-key]
    assert watching.key_secret("ml", "client-tls", kopf.Body(tls), context)
    assert not watching.key_secret("ml", "t", kopf.Body(token), context)
