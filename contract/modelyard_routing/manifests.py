"""Kubernetes manifests as the compiler sees them: kind, identity, spec, and decoded Secret data.

Standalone mode reads them from YAML files; the operator builds the same objects from watch events, so
both feed one compiler.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from modelyard_routing.specs import API_GROUP

DEFAULT_NAMESPACE = "default"
#: Label that marks a Secret whose values are gateway API keys clients may present.
API_KEYS_LABEL = f"{API_GROUP}/api-keys"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
#: The custom resources the compiler reads; documents of other kinds are ignored.
MANIFEST_KINDS = frozenset({"ModelRoute", "ProviderCredential", "ModelConsumer"})


class ManifestError(ValueError):
    """A file or document that is not a manifest the gateway can read; the message names where."""


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectRef:
    """Identity of a namespaced object, used to key statuses and resolve references."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class Manifest:
    """A ModelRoute or ProviderCredential: its identity, generation, and raw spec."""

    ref: ObjectRef
    spec: Mapping[str, Any]
    generation: int = 1
    created: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class SecretData:
    """A Secret's decoded values; ``is_api_keys`` marks the gateway's own client keys."""

    ref: ObjectRef
    values: Mapping[str, str]
    is_api_keys: bool = False
    #: The Secret's labels, which a ModelConsumer's ``keys.matchLabels`` selects on.
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class Inventory:
    """Every object the compiler reads, in the order they were found (the tie-breaker for duplicates)."""

    routes: list[Manifest] = dataclasses.field(default_factory=list)
    credentials: list[Manifest] = dataclasses.field(default_factory=list)
    consumers: list[Manifest] = dataclasses.field(default_factory=list)
    secrets: list[SecretData] = dataclasses.field(default_factory=list)

    def add_document(self, doc: Mapping[str, Any], where: str = "") -> None:
        """Sort one parsed YAML document into its list; documents of other kinds are ignored."""
        kind = doc.get("kind")
        metadata = doc.get("metadata") or {}
        if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
            raise ManifestError(f"{where}: {kind or 'document'} has no metadata.name")
        ref = ObjectRef(str(kind), str(metadata.get("namespace") or DEFAULT_NAMESPACE), metadata["name"])
        if kind == "Secret":
            labels = metadata.get("labels") or {}
            self.secrets.append(
                SecretData(
                    ref,
                    decode_secret(doc, where),
                    str(labels.get(API_KEYS_LABEL, "")).lower() == "true",
                    {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
                )
            )
            return
        if kind not in MANIFEST_KINDS:
            return
        api_version = str(doc.get("apiVersion", ""))
        if not api_version.startswith(f"{API_GROUP}/"):
            raise ManifestError(f"{where}: {ref} has apiVersion {api_version!r}, expected {API_GROUP}/v1alpha1")
        spec = doc.get("spec")
        if not isinstance(spec, Mapping):
            raise ManifestError(f"{where}: {ref} has no spec")
        manifest = Manifest(
            ref, spec, int(metadata.get("generation") or 1), str(metadata.get("creationTimestamp") or "")
        )
        {"ModelRoute": self.routes, "ProviderCredential": self.credentials, "ModelConsumer": self.consumers}[
            str(kind)
        ].append(manifest)

    def secret(self, namespace: str, name: str) -> SecretData | None:
        """The Secret ``namespace/name``, if present."""
        for secret in self.secrets:
            if secret.ref.namespace == namespace and secret.ref.name == name:
                return secret
        return None


def decode_secret(doc: Mapping[str, Any], where: str) -> dict[str, str]:
    """A Secret's ``data`` (base64) and ``stringData`` merged, as the API server would store them."""
    values: dict[str, str] = {}
    for key, encoded in (doc.get("data") or {}).items():
        try:
            values[str(key)] = base64.b64decode(str(encoded), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ManifestError(f"{where}: Secret key {key!r} is not valid base64 text") from exc
    values.update({str(k): str(v) for k, v in (doc.get("stringData") or {}).items()})
    return values


def load_documents(paths: Iterable[Path]) -> Inventory:
    """Read every manifest file; raises ManifestError naming the file for anything unreadable."""
    inventory = Inventory()
    for path in paths:
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ManifestError(f"{path}: {exc}") from exc
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, Mapping):
                raise ManifestError(f"{path}: a document is not a mapping")
            for item in doc.get("items", [doc]) if doc.get("kind") == "List" else [doc]:
                inventory.add_document(item, str(path))
    return inventory


def manifest_files(directory: Path) -> list[Path]:
    """The manifest files in ``directory`` and below, in a stable order; hidden entries are skipped."""
    return sorted(
        path
        for path in directory.rglob("*")
        if path.suffix in MANIFEST_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )
