"""What the operator watches: each watched kind has an index (what the compiler reads) and an event handler
(which only asks for a reconcile). kopf fills every index from the initial listing before calling any event
handler, so the first compile never sees a half-listed cluster.
"""

from __future__ import annotations

from typing import Any

import kopf

from modelyard_operator import discovery, inventory
from modelyard_operator.context import OperatorContext
from modelyard_operator.discovery import ProxyEndpoint
from modelyard_operator.inventory import Key, Observed
from modelyard_routing import SecretData
from modelyard_routing.manifests import API_KEYS_LABEL
from modelyard_routing.specs import API_GROUP

VERSION = "v1alpha1"
#: Secret types that can hold a provider key or gateway API keys; others (tokens, TLS, Helm releases) are skipped.
KEY_SECRET_TYPES = {"", "Opaque"}


def served(namespace: str | None, memo: OperatorContext, **_: Any) -> bool:
    """An object in a namespace whose routes this operator serves."""
    return memo.settings.watches(namespace)


def key_secret(namespace: str | None, name: str, body: kopf.Body, memo: OperatorContext, **_: Any) -> bool:
    """A Secret that may hold keys: served namespace, key-holding type, and not the operator's own table."""
    own = namespace == memo.settings.namespace and name == memo.settings.table_secret
    return served(namespace, memo) and str(body.get("type") or "") in KEY_SECRET_TYPES and not own


def proxy_slice(namespace: str | None, labels: kopf.Labels, memo: OperatorContext, **_: Any) -> bool:
    """An EndpointSlice of the proxy Service."""
    settings = memo.settings
    return namespace == settings.namespace and labels.get(discovery.SERVICE_NAME_LABEL) == settings.proxy_service


@kopf.index(API_GROUP, VERSION, "modelroutes", when=served)
async def modelroutes(body: kopf.Body, **_: Any) -> dict[Key, Observed]:
    """Every served ModelRoute."""
    return {inventory.key_of(body): inventory.observe("ModelRoute", body)}


@kopf.index(API_GROUP, VERSION, "providercredentials", when=served)
async def providercredentials(body: kopf.Body, **_: Any) -> dict[Key, Observed]:
    """Every served ProviderCredential."""
    return {inventory.key_of(body): inventory.observe("ProviderCredential", body)}


@kopf.index(API_GROUP, VERSION, "providercredentials", when=served)
async def credentials_by_secret(body: kopf.Body, **_: Any) -> dict[Key, Key]:
    """Secret → the credentials reading it, so an unrelated Secret's change does not wake the reconciler."""
    secret = inventory.secret_reference(body)
    return {secret: inventory.key_of(body)} if secret is not None else {}


@kopf.index("", "v1", "secrets", when=key_secret)
async def secrets(body: kopf.Body, **_: Any) -> dict[Key, SecretData]:
    """The decoded values of every Secret that may hold keys (a credential may name it later)."""
    return {inventory.key_of(body): inventory.secret_values(body)}


@kopf.index("discovery.k8s.io", "v1", "endpointslices", when=proxy_slice)
async def proxy_endpoints(body: kopf.Body, memo: OperatorContext, **_: Any) -> dict[Key, tuple[ProxyEndpoint, ...]]:
    """The proxy pods of each slice of the proxy Service, with their admin URLs and readiness."""
    return {inventory.key_of(body): discovery.proxy_endpoints(body, memo.settings.admin_port_name)}


@kopf.on.event(API_GROUP, VERSION, "modelroutes", when=served)
@kopf.on.event(API_GROUP, VERSION, "providercredentials", when=served)
@kopf.on.event("discovery.k8s.io", "v1", "endpointslices", when=proxy_slice)
async def changed(memo: OperatorContext, **_: Any) -> None:
    """Any change to a route, a credential or the proxy pods: reconcile (debounced)."""
    memo.trigger.request()


@kopf.on.event("", "v1", "secrets", when=key_secret)
async def secret_changed(
    namespace: str | None, name: str, labels: kopf.Labels, memo: OperatorContext, **kwargs: Any
) -> None:
    """A Secret a credential reads, or one holding gateway API keys: reconcile (debounced)."""
    readers: kopf.Index[Key, Key] = kwargs["credentials_by_secret"]  # kopf passes indexes by function name
    if (namespace, name) in readers or API_KEYS_LABEL in labels:
        memo.trigger.request()
