"""The pure compiler: manifests and Secret values in, one routing table and per-object conditions out.

Standalone mode and the operator both call :func:`compile_inventory`, so what a pod serves never depends
on how the manifests reached it. No I/O and no clock: the same inventory always gives the same hash.
"""

from __future__ import annotations

import dataclasses

from pydantic import SecretStr, ValidationError

from modelyard_routing.conditions import Condition, describe_validation_error
from modelyard_routing.defaults import DEFAULT_BASE_URLS
from modelyard_routing.manifests import Inventory, Manifest, ObjectRef
from modelyard_routing.specs import ModelRouteSpec, ProviderCredentialSpec
from modelyard_routing.table import Credential, Route, RoutingTable, Target, hash_api_key

ACCEPTED = "Accepted"
RESOLVED_REFS = "ResolvedRefs"


@dataclasses.dataclass(frozen=True, slots=True)
class CompileResult:
    """The sealed table plus what the compiler found out about each object."""

    table: RoutingTable
    conditions: dict[ObjectRef, tuple[Condition, ...]]


@dataclasses.dataclass(frozen=True, slots=True)
class _CredentialOutcome:
    credential: Credential | None
    problem: str


def compile_inventory(inventory: Inventory, generation: int) -> CompileResult:
    """Compile every object; invalid or unresolved ones are left out of the table and say why."""
    conditions: dict[ObjectRef, tuple[Condition, ...]] = {}
    outcomes = {
        manifest.ref: _compile_credential(manifest, inventory, conditions) for manifest in inventory.credentials
    }
    routes: list[Route] = []
    claimed: dict[str, ObjectRef] = {}
    for manifest in sorted(inventory.routes, key=lambda m: m.created):
        route = _compile_route(manifest, outcomes, claimed, conditions)
        if route is not None:
            routes.append(route)
    by_id = {o.credential.id: o.credential for o in outcomes.values() if o.credential is not None}
    used = sorted({target.credential for route in routes for target in route.targets})
    keys = sorted({hash_api_key(v) for s in inventory.secrets if s.is_api_keys for v in s.values.values() if v})
    table = RoutingTable(
        routes=tuple(sorted(routes, key=lambda r: r.id)),
        credentials=tuple(by_id[k] for k in used),
        api_key_sha256=tuple(keys),
    )
    return CompileResult(table.sealed(generation), conditions)


def _compile_credential(
    manifest: Manifest, inventory: Inventory, conditions: dict[ObjectRef, tuple[Condition, ...]]
) -> _CredentialOutcome:
    ref, gen = manifest.ref, manifest.generation
    try:
        spec = ProviderCredentialSpec.model_validate(manifest.spec)
    except ValidationError as exc:
        message = describe_validation_error(exc)
        conditions[ref] = (
            Condition(ACCEPTED, "False", "InvalidSpec", message, gen),
            Condition(RESOLVED_REFS, "Unknown", "InvalidSpec", "spec is not valid", gen),
        )
        return _CredentialOutcome(None, f"{ref} is invalid: {message}")
    accepted = Condition(ACCEPTED, "True", "Accepted", "spec is valid", gen)
    api_key: SecretStr | None = None
    if spec.secret_ref is not None:
        secret = inventory.secret(ref.namespace, spec.secret_ref.name)
        problem = ""
        if secret is None:
            reason, problem = "SecretNotFound", f"Secret {ref.namespace}/{spec.secret_ref.name} not found"
        elif not secret.values.get(spec.secret_ref.key):
            reason = "SecretKeyNotFound"
            problem = f"Secret {ref.namespace}/{spec.secret_ref.name} has no non-empty key {spec.secret_ref.key!r}"
        if problem:
            conditions[ref] = (accepted, Condition(RESOLVED_REFS, "False", reason, problem, gen))
            return _CredentialOutcome(None, f"{ref}: {problem}")
        assert secret is not None
        api_key = SecretStr(secret.values[spec.secret_ref.key])
    conditions[ref] = (
        accepted,
        Condition(RESOLVED_REFS, "True", "ResolvedRefs", "all references resolve", gen),
    )
    credential = Credential(
        id=f"{ref.namespace}/{ref.name}",
        provider=spec.provider,
        base_url=(spec.base_url or DEFAULT_BASE_URLS[spec.provider]).rstrip("/"),
        api_key=api_key,
        azure=spec.azure,
        headers=spec.headers,
        region=spec.region,
        jurisdiction=spec.jurisdiction,
        data_retention=spec.data_retention,
    )
    return _CredentialOutcome(credential, "")


def _compile_route(
    manifest: Manifest,
    outcomes: dict[ObjectRef, _CredentialOutcome],
    claimed: dict[str, ObjectRef],
    conditions: dict[ObjectRef, tuple[Condition, ...]],
) -> Route | None:
    ref, gen = manifest.ref, manifest.generation
    try:
        spec = ModelRouteSpec.model_validate(manifest.spec)
    except ValidationError as exc:
        conditions[ref] = (
            Condition(ACCEPTED, "False", "InvalidSpec", describe_validation_error(exc), gen),
            Condition(RESOLVED_REFS, "Unknown", "InvalidSpec", "spec is not valid", gen),
        )
        return None
    taken = [(name, claimed[name]) for name in spec.public_names() if name in claimed]
    if taken:
        message = "; ".join(
            f"model name {name!r} is already served by ModelRoute {o.namespace}/{o.name}" for name, o in taken
        )
        conditions[ref] = (
            Condition(ACCEPTED, "False", "DuplicateModelName", message, gen),
            Condition(RESOLVED_REFS, "Unknown", "NotAccepted", "route was not accepted", gen),
        )
        return None
    for name in spec.public_names():
        claimed[name] = ref
    accepted = Condition(ACCEPTED, "True", "Accepted", "spec is valid", gen)
    targets: list[Target] = []
    problems: list[str] = []
    for index, target in enumerate(spec.targets):
        cred_ref = ObjectRef("ProviderCredential", ref.namespace, target.credential_ref.name)
        outcome = outcomes.get(cred_ref)
        if outcome is None:
            problems.append(f"targets[{index}]: ProviderCredential {ref.namespace}/{cred_ref.name} not found")
        elif outcome.credential is None:
            problems.append(f"targets[{index}]: {outcome.problem}")
        else:
            targets.append(
                Target(
                    id=f"{outcome.credential.id}|{target.model}",
                    credential=outcome.credential.id,
                    model=target.model,
                    weight=target.weight,
                    priority=target.priority,
                )
            )
    if problems:
        reason = "PartiallyResolved" if targets else "UnresolvedRefs"
        resolved = Condition(RESOLVED_REFS, "False", reason, "; ".join(problems), gen)
    else:
        resolved = Condition(RESOLVED_REFS, "True", "ResolvedRefs", "all references resolve", gen)
    conditions[ref] = (accepted, resolved)
    if not targets:
        return None
    return Route(
        id=f"{ref.namespace}/{ref.name}",
        model=spec.model,
        aliases=tuple(spec.aliases),
        targets=tuple(targets),
    )
