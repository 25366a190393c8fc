"""Compiles ModelConsumers: trust, key resolution, and the rule that a key belongs to at most one consumer.

A consumer grants spend, so only consumers in trusted namespaces grant anything, and they read keys only from
Secrets in their own namespace. A key that two consumers claim is refused for both (and is not served as a
plain gateway key either), so a second team can never lift or share another team's limits by copying a key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from pydantic import ValidationError

from modelyard_routing.conditions import ACCEPTED, RESOLVED_REFS, Condition, invalid_spec
from modelyard_routing.consumer_spec import ModelConsumerSpec
from modelyard_routing.manifests import Inventory, Manifest, ObjectRef
from modelyard_routing.table import Budget, Consumer, ConsumerLimits, hash_api_key


@dataclasses.dataclass(frozen=True, slots=True)
class ConsumerOutcome:
    """The consumers the table carries, the key hashes they took from the plain key list, and conditions."""

    consumers: tuple[Consumer, ...]
    #: Every key hash any accepted consumer claims, conflicts included: none of them is a plain gateway key.
    claimed_keys: frozenset[str]
    conditions: dict[ObjectRef, tuple[Condition, ...]]


@dataclasses.dataclass(slots=True)
class _Candidate:
    manifest: Manifest
    spec: ModelConsumerSpec
    keys: set[str]
    problems: list[str]


def compile_consumers(inventory: Inventory, trusted_namespaces: Collection[str] | None) -> ConsumerOutcome:
    """Every consumer in the inventory; ``trusted_namespaces=None`` trusts all (standalone manifests)."""
    conditions: dict[ObjectRef, tuple[Condition, ...]] = {}
    candidates: list[_Candidate] = []
    for manifest in inventory.consumers:
        ref, gen = manifest.ref, manifest.generation
        if trusted_namespaces is not None and ref.namespace not in trusted_namespaces:
            message = (
                f"namespace {ref.namespace} is not trusted to grant models, limits or budgets; "
                "the operator reads consumers only from its trusted namespaces"
            )
            conditions[ref] = (
                Condition(ACCEPTED, "False", "UntrustedNamespace", message, gen),
                Condition(RESOLVED_REFS, "Unknown", "NotAccepted", "consumer was not accepted", gen),
            )
            continue
        try:
            spec = ModelConsumerSpec.model_validate(manifest.spec)
        except ValidationError as exc:
            conditions[ref] = invalid_spec(exc, gen)
            continue
        keys, problems = _resolve_keys(ref, spec, inventory)
        candidates.append(_Candidate(manifest, spec, keys, problems))
    owners: dict[str, list[ObjectRef]] = {}
    for candidate in candidates:
        for key in candidate.keys:
            owners.setdefault(key, []).append(candidate.manifest.ref)
    consumers = []
    for candidate in sorted(candidates, key=lambda c: (c.manifest.ref.namespace, c.manifest.ref.name)):
        consumer = _compile_one(candidate, owners, conditions)
        if consumer is not None:
            consumers.append(consumer)
    return ConsumerOutcome(tuple(consumers), frozenset(owners), conditions)


def _resolve_keys(ref: ObjectRef, spec: ModelConsumerSpec, inventory: Inventory) -> tuple[set[str], list[str]]:
    """Key hashes from the named Secrets and those matching the selector, all in the consumer's namespace."""
    keys: set[str] = set()
    problems: list[str] = []
    for secret_ref in spec.keys.secret_refs:
        secret = inventory.secret(ref.namespace, secret_ref.name)
        if secret is None:
            problems.append(f"Secret {ref.namespace}/{secret_ref.name} not found")
            continue
        found = {hash_api_key(value) for value in secret.values.values() if value}
        if not found:
            problems.append(f"Secret {ref.namespace}/{secret_ref.name} holds no non-empty key")
        keys |= found
    if spec.keys.selector:
        selector = spec.keys.selector
        own = (secret for secret in inventory.secrets if secret.ref.namespace == ref.namespace)
        matching = [s for s in own if all(s.labels.get(k) == v for k, v in selector.items())]
        keys |= {hash_api_key(v) for s in matching for v in s.values.values() if v}
        if not matching:
            problems.append(f"no Secret in {ref.namespace} matches labels {dict(sorted(selector.items()))}")
    return keys, problems


def _compile_one(
    candidate: _Candidate, owners: dict[str, list[ObjectRef]], conditions: dict[ObjectRef, tuple[Condition, ...]]
) -> Consumer | None:
    ref, gen, spec = candidate.manifest.ref, candidate.manifest.generation, candidate.spec
    accepted = Condition(ACCEPTED, "True", "Accepted", "spec is valid", gen)
    shared = sorted({str(other) for key in candidate.keys for other in owners[key] if other != ref})
    keys = tuple(sorted(key for key in candidate.keys if len(owners[key]) == 1))
    problems = list(candidate.problems)
    if shared:
        count = len(candidate.keys) - len(keys)
        problems.append(
            f"{count} key(s) are also claimed by {', '.join(shared)}; a shared key is refused for every consumer"
        )
    if problems:
        reason = "KeyConflict" if shared else "SecretNotFound"
        resolved = Condition(RESOLVED_REFS, "False", reason, "; ".join(problems), gen)
    else:
        resolved = Condition(RESOLVED_REFS, "True", "ResolvedRefs", f"{len(keys)} key(s) resolved", gen)
    conditions[ref] = (accepted, resolved)
    if not keys:
        return None
    return Consumer(
        name=f"{ref.namespace}/{ref.name}",
        key_sha256=keys,
        models=tuple(spec.models),
        default_profile=spec.default_profile,
        limits=ConsumerLimits(
            requests_per_minute=spec.limits.requests_per_minute,
            tokens_per_minute=spec.limits.tokens_per_minute,
            concurrent_requests=spec.limits.concurrent_requests,
        ),
        budgets=tuple(Budget(period=b.period, usd=b.usd) for b in spec.budgets),
        unpriced_models=spec.unpriced_models,
        on_store_failure=spec.on_store_failure,
        labels=dict(sorted(spec.labels.items())),
    )
