"""What the operator watches: each watched kind has an index (what the compiler reads) and an event handler
(which only asks for a reconcile). kopf fills every index from the initial listing before calling any event
handler, so the first compile never sees a half-listed cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from modelyard_operator import discovery, inventory
from modelyard_operator.context import OperatorContext
from modelyard_operator.discovery import ProxyEndpoint
from modelyard_operator.inventory import Key, KeySources, Observed
from modelyard_routing import SecretData
from modelyard_routing.manifests import API_KEYS_LABEL
from modelyard_routing.specs import API_GROUP

VERSION = "v1alpha1"
#: Secret types that can hold a provider key, gateway API keys or a client certificate; others (service-account
#: tokens, Helm releases) are skipped.
KEY_SECRET_TYPES = {"", "Opaque", "kubernetes.io/tls"}


def served(namespace: str | None, memo: OperatorContext, **_: Any) -> bool:
    """An object in a namespace whose routes this operator serves."""
    return memo.settings.watches(namespace)


def consumer_scope(namespace: str | None, memo: OperatorContext, **_: Any) -> bool:
    """A namespace whose ModelConsumers get a status: a served one (an untrusted consumer there is told it
    grants nothing) or a trusted one."""
    return memo.settings.watches(namespace) or memo.settings.trusts(namespace)


def key_secret(namespace: str | None, name: str, body: kopf.Body, memo: OperatorContext, **_: Any) -> bool:
    """A Secret that may hold keys: served or trusted namespace, key-holding type, not the operator's table.

    Secrets of untrusted namespaces that are not served are never read: no consumer there may use them.
    """
    own = namespace == memo.settings.namespace and name == memo.settings.table_secret
    readable = served(namespace, memo) or memo.settings.trusts(namespace)
    return readable and str(body.get("type") or "") in KEY_SECRET_TYPES and not own


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
    return dict.fromkeys(inventory.secret_references(body), inventory.key_of(body))


@kopf.index(API_GROUP, VERSION, "modelconsumers", when=consumer_scope)
async def modelconsumers(body: kopf.Body, **_: Any) -> dict[Key, Observed]:
    """Every ModelConsumer the operator may report on; only trusted ones grant anything (the compiler says)."""
    return {inventory.key_of(body): inventory.observe("ModelConsumer", body)}


@kopf.index(API_GROUP, VERSION, "modelconsumers", when=consumer_scope)
async def consumer_key_sources(
    namespace: str | None, body: kopf.Body, memo: OperatorContext, **_: Any
) -> dict[str, KeySources]:
    """Namespace → where its trusted consumers take their keys, so that only their Secrets wake the reconciler."""
    if namespace is None or not memo.settings.trusts(namespace):
        return {}
    return {namespace: inventory.key_sources(body)}


@kopf.index("", "v1", "secrets", when=key_secret)
async def secrets(namespace: str | None, body: kopf.Body, memo: OperatorContext, **_: Any) -> dict[Key, SecretData]:
    """The decoded values and labels of every Secret that may hold keys (a credential or consumer may name it
    later). In a namespace that is only trusted, not served, the api-keys label counts for nothing."""
    api_keys_allowed = served(namespace, memo)
    return {inventory.key_of(body): inventory.secret_values(body, api_keys_allowed=api_keys_allowed)}


@kopf.index("discovery.k8s.io", "v1", "endpointslices", when=proxy_slice)
async def proxy_endpoints(body: kopf.Body, memo: OperatorContext, **_: Any) -> dict[Key, tuple[ProxyEndpoint, ...]]:
    """The proxy pods of each slice of the proxy Service, with their admin URLs and readiness."""
    return {inventory.key_of(body): discovery.proxy_endpoints(body, memo.settings.admin_port_name)}


@kopf.on.event(API_GROUP, VERSION, "modelroutes", when=served)
@kopf.on.event(API_GROUP, VERSION, "providercredentials", when=served)
@kopf.on.event(API_GROUP, VERSION, "modelconsumers", when=consumer_scope)
@kopf.on.event("discovery.k8s.io", "v1", "endpointslices", when=proxy_slice)
async def changed(memo: OperatorContext, **_: Any) -> None:
    """Any change to a route, a credential, a consumer or the proxy pods: reconcile (debounced)."""
    memo.trigger.request()


def secret_in_use(
    key: Key,
    labels: Mapping[str, str],
    readers: Mapping[Key, object],
    sources: Mapping[str, Iterable[KeySources]],
    memo: OperatorContext,
) -> bool:
    """Whether the Secret ``key`` matters to the table: a credential reads it, it holds gateway API keys, or a
    trusted consumer takes keys from it (by name or labels, now or in the last compile, so a Secret whose
    labels stop matching counts too)."""
    namespace, name = key
    for_consumers = any(source.selects(name, labels) for source in sources.get(namespace, ()))
    return key in readers or API_KEYS_LABEL in labels or for_consumers or memo.consumer_reads(key)


@kopf.on.event("", "v1", "secrets", when=key_secret)
async def secret_changed(
    namespace: str | None, name: str, labels: kopf.Labels, memo: OperatorContext, **kwargs: Any
) -> None:
    """A Secret that matters to the table changed: reconcile (debounced)."""
    # kopf passes indexes by function name.
    readers: kopf.Index[Key, Key] = kwargs["credentials_by_secret"]
    sources: kopf.Index[str, KeySources] = kwargs["consumer_key_sources"]
    if secret_in_use((namespace or "", name), labels, readers, sources, memo):
        memo.trigger.request()
