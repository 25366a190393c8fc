"""From watched objects to the compiler's ``Inventory``: what the kopf indexes store, and how it is read back.

Index values are small frozen records copied out of the watch events, so the reconciler can compile from a
consistent snapshot whenever it likes (level-based), without ever calling the API.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from modelyard_routing import Inventory, Manifest, ObjectRef, SecretData
from modelyard_routing.manifests import API_KEYS_LABEL, DEFAULT_NAMESPACE

#: The key of every per-object index: (namespace, name).
Key = tuple[str, str]
T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Observed:
    """A ModelRoute, ProviderCredential or ModelConsumer as last seen: what the compiler reads, plus what its
    status needs."""

    manifest: Manifest
    uid: str
    status: Mapping[str, Any]

    @property
    def ref(self) -> ObjectRef:
        """The object's identity."""
        return self.manifest.ref


def _ref(kind: str, body: Mapping[str, Any]) -> ObjectRef:
    # The kind is passed in: list responses do not always repeat it in each item.
    metadata = body.get("metadata") or {}
    return ObjectRef(kind, str(metadata.get("namespace") or DEFAULT_NAMESPACE), str(metadata["name"]))


def key_of(body: Mapping[str, Any]) -> Key:
    """The index key of an object."""
    ref = _ref("", body)
    return (ref.namespace, ref.name)


def observe(kind: str, body: Mapping[str, Any]) -> Observed:
    """The index record of a ModelRoute, ProviderCredential or ModelConsumer (deep-copied: watch bodies are reused)."""
    metadata = body.get("metadata") or {}
    manifest = Manifest(
        ref=_ref(kind, body),
        spec=copy.deepcopy(dict(body.get("spec") or {})),
        generation=int(metadata.get("generation") or 1),
        created=str(metadata.get("creationTimestamp") or ""),
    )
    return Observed(manifest, str(metadata.get("uid") or ""), copy.deepcopy(dict(body.get("status") or {})))


def secret_values(body: Mapping[str, Any], *, api_keys_allowed: bool = True) -> SecretData:
    """A Secret's decoded text values and labels; keys that are not base64 text are left out (a reference to
    one fails). ``api_keys_allowed`` False ignores the api-keys label: the Secret is there for consumers only."""
    values: dict[str, str] = {}
    for key, encoded in (body.get("data") or {}).items():
        try:
            values[str(key)] = base64.b64decode(str(encoded), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    labels = {str(k): str(v) for k, v in ((body.get("metadata") or {}).get("labels") or {}).items()}
    api_keys = api_keys_allowed and labels.get(API_KEYS_LABEL, "").lower() == "true"
    return SecretData(_ref("Secret", body), values, api_keys, labels)


@dataclasses.dataclass(frozen=True, slots=True)
class KeySources:
    """The Secrets a ModelConsumer takes its keys from: by name, and by labels (its own namespace only)."""

    names: frozenset[str] = frozenset()
    match_labels: Mapping[str, str] | None = None

    def selects(self, name: str, labels: Mapping[str, str]) -> bool:
        """Whether the Secret ``name`` with ``labels`` is one of them."""
        if name in self.names:
            return True
        return bool(self.match_labels) and all(labels.get(k) == v for k, v in (self.match_labels or {}).items())


def key_sources(body: Mapping[str, Any]) -> KeySources:
    """Where a ModelConsumer says its keys are, read leniently: an invalid spec still names what it meant."""
    keys = (body.get("spec") or {}).get("keys")
    if not isinstance(keys, Mapping):
        return KeySources()
    refs = keys.get("secretRefs")
    refs = refs if isinstance(refs, list) else []
    names = frozenset(str(ref["name"]) for ref in refs if isinstance(ref, Mapping) and isinstance(ref.get("name"), str))
    selector = keys.get("matchLabels")
    match_labels = {str(k): str(v) for k, v in selector.items()} if isinstance(selector, Mapping) else None
    return KeySources(names, match_labels or None)


#: Where a ProviderCredential's spec names a Secret: its key, Bedrock's static keys, and its egress settings.
_CREDENTIAL_SECRET_PATHS = (
    ("secretRef",),
    ("aws", "accessKeySecretRef"),
    ("egress", "proxy", "urlSecretRef"),
    ("egress", "caBundleSecretRef"),
    ("egress", "clientCertificateSecretRef"),
)


def secret_references(body: Mapping[str, Any]) -> list[Key]:
    """The Secrets a ProviderCredential reads (same namespace by construction)."""
    namespace = key_of(body)[0]
    found: list[Key] = []
    for path in _CREDENTIAL_SECRET_PATHS:
        node: Any = body.get("spec") or {}
        for step in path:
            node = node.get(step) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and isinstance(node.get("name"), str):
            found.append((namespace, node["name"]))
    return found


def consumer_secrets(
    consumers: Iterable[Observed], secrets: Iterable[SecretData], trusts: Callable[[str], bool]
) -> frozenset[Key]:
    """The Secrets that trusted consumers take keys from (each only from its own namespace)."""
    sources: dict[str, list[KeySources]] = {}
    for consumer in consumers:
        if trusts(consumer.ref.namespace):
            sources.setdefault(consumer.ref.namespace, []).append(key_sources({"spec": consumer.manifest.spec}))
    return frozenset(
        (secret.ref.namespace, secret.ref.name)
        for secret in secrets
        if any(source.selects(secret.ref.name, secret.labels) for source in sources.get(secret.ref.namespace, ()))
    )


def flatten(index: Mapping[Any, Iterable[T]]) -> list[T]:
    """Every value of a kopf index (each key maps to a store of values)."""
    return [value for store in index.values() for value in store]


def build_inventory(
    routes: Iterable[Observed],
    credentials: Iterable[Observed],
    secrets: Iterable[SecretData],
    consumers: Iterable[Observed] = (),
) -> Inventory:
    """The compiler's input, in a stable order so that equal clusters give equal tables."""

    def by_ref(observed: Observed) -> tuple[str, str]:
        return (observed.ref.namespace, observed.ref.name)

    return Inventory(
        routes=[o.manifest for o in sorted(routes, key=by_ref)],
        credentials=[o.manifest for o in sorted(credentials, key=by_ref)],
        consumers=[o.manifest for o in sorted(consumers, key=by_ref)],
        secrets=sorted(secrets, key=lambda s: (s.ref.namespace, s.ref.name)),
    )
