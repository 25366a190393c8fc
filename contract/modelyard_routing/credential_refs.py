"""What a ProviderCredential's Secret references resolve to, checked for shape before any proxy sees them.

A reference that does not resolve, or whose value is not what it should hold (a service-account key that is
not one, a CA bundle without certificates), leaves the credential unresolved with a condition that names the
Secret and key, never the value.
"""

from __future__ import annotations

import json
import urllib.parse

from pydantic import SecretStr

from modelyard_routing.manifests import Inventory
from modelyard_routing.specs import EgressSpec, Provider, ProviderCredentialSpec
from modelyard_routing.table import AwsKeys, Egress

_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key", "token_uri")


class UnresolvedReference(Exception):
    """A reference that does not resolve: the condition's reason and message."""

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason
        self.problem = problem


class _Secrets:
    """The Secrets of one namespace, read by name and key."""

    def __init__(self, inventory: Inventory, namespace: str) -> None:
        self._inventory = inventory
        self._namespace = namespace

    def value(self, name: str, key: str) -> str:
        secret = self._inventory.secret(self._namespace, name)
        if secret is None:
            raise UnresolvedReference("SecretNotFound", f"Secret {self._namespace}/{name} not found")
        value = secret.values.get(key)
        if not value:
            problem = f"Secret {self._namespace}/{name} has no non-empty key {key!r}"
            raise UnresolvedReference("SecretKeyNotFound", problem)
        return value

    def optional(self, name: str, key: str) -> str | None:
        secret = self._inventory.secret(self._namespace, name)
        return (secret.values.get(key) or None) if secret is not None else None

    def invalid(self, name: str, key: str, what: str) -> UnresolvedReference:
        return UnresolvedReference("SecretValueInvalid", f"Secret {self._namespace}/{name} key {key!r} {what}")


class ResolvedSecrets:
    """Every secret value a credential's spec references."""

    def __init__(self, spec: ProviderCredentialSpec, inventory: Inventory, namespace: str) -> None:
        secrets = _Secrets(inventory, namespace)
        self.api_key: SecretStr | None = None
        self.service_account: SecretStr | None = None
        self.aws_keys: AwsKeys | None = None
        if spec.secret_ref is not None:
            value = secrets.value(spec.secret_ref.name, spec.secret_ref.key)
            if spec.provider is Provider.VERTEX_AI:
                _check_service_account(value, secrets, spec.secret_ref.name, spec.secret_ref.key)
                self.service_account = SecretStr(value)
            else:
                self.api_key = SecretStr(value)
        if spec.aws is not None and (ref := spec.aws.access_key_secret_ref) is not None:
            self.aws_keys = AwsKeys(
                access_key_id=SecretStr(secrets.value(ref.name, "accessKeyId")),
                secret_access_key=SecretStr(secrets.value(ref.name, "secretAccessKey")),
                session_token=_optional_secret(secrets.optional(ref.name, "sessionToken")),
            )
        self.egress = _egress(spec.egress, secrets) if spec.egress is not None else None


def _optional_secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value is not None else None


def _check_service_account(value: str, secrets: _Secrets, name: str, key: str) -> None:
    """A Google service-account key file: JSON with the fields a token request needs (never echoed)."""
    try:
        info = json.loads(value)
    except ValueError:
        raise secrets.invalid(name, key, "is not a service-account key: not JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise secrets.invalid(name, key, 'is not a service-account key: no "type": "service_account"')
    missing = [field for field in _SERVICE_ACCOUNT_FIELDS if not isinstance(info.get(field), str) or not info[field]]
    if missing:
        raise secrets.invalid(name, key, f"is not a service-account key: no {', '.join(missing)}")
    if "PRIVATE KEY-----" not in info["private_key"]:
        raise secrets.invalid(name, key, "is not a service-account key: private_key is not a PEM key")


def _egress(spec: EgressSpec, secrets: _Secrets) -> Egress:
    proxy_url: SecretStr | None = None
    direct = False
    if spec.proxy is not None:
        direct = spec.proxy.direct
        if spec.proxy.url is not None:
            proxy_url = SecretStr(spec.proxy.url)
        elif (ref := spec.proxy.url_secret_ref) is not None:
            url = secrets.value(ref.name, ref.key)
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise secrets.invalid(ref.name, ref.key, "is not an http(s):// proxy URL")
            proxy_url = SecretStr(url)
    ca_bundle = None
    if (ca := spec.ca_bundle_secret_ref) is not None:
        ca_bundle = secrets.value(ca.name, ca.key)
        if _CERTIFICATE not in ca_bundle:
            raise secrets.invalid(ca.name, ca.key, "holds no PEM certificate")
    certificate = key = None
    if (client := spec.client_certificate_secret_ref) is not None:
        certificate = secrets.value(client.name, "tls.crt")
        key = secrets.value(client.name, "tls.key")
        if _CERTIFICATE not in certificate:
            raise secrets.invalid(client.name, "tls.crt", "holds no PEM certificate")
        if "PRIVATE KEY-----" not in key:
            raise secrets.invalid(client.name, "tls.key", "holds no PEM private key")
    return Egress(
        proxy_url=proxy_url,
        direct=direct,
        ca_bundle=ca_bundle,
        client_certificate=certificate,
        client_key=_optional_secret(key),
    )
