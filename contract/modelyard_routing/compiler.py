"""The pure compiler: manifests and Secret values in, one routing table and per-object conditions out.

Standalone mode and the operator both call :func:`compile_inventory`, so what a pod serves never depends
on how the manifests reached it. No I/O and no clock: the same inventory always gives the same hash.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from pydantic import ValidationError

from modelyard_routing.conditions import ACCEPTED, RESOLVED_REFS, Condition, describe_validation_error, invalid_spec
from modelyard_routing.consumer_compiler import compile_consumers
from modelyard_routing.credential_refs import ResolvedSecrets, UnresolvedReference
from modelyard_routing.defaults import default_base_url
from modelyard_routing.manifests import Inventory, Manifest, ObjectRef
from modelyard_routing.specs import ModelRouteSpec, ProviderCredentialSpec, RequireSpec, TargetSpec, duration_ms
from modelyard_routing.table import (
    Credential,
    Faults,
    ModelPrice,
    Policy,
    Profile,
    Route,
    RoutingTable,
    Target,
    hash_api_key,
)


@dataclasses.dataclass(frozen=True, slots=True)
class CompileResult:
    """The sealed table plus what the compiler found out about each object."""

    table: RoutingTable
    conditions: dict[ObjectRef, tuple[Condition, ...]]


@dataclasses.dataclass(frozen=True, slots=True)
class _CredentialOutcome:
    credential: Credential | None
    problem: str


def compile_inventory(
    inventory: Inventory, generation: int, trusted_namespaces: Collection[str] | None = None
) -> CompileResult:
    """Compile every object; invalid or unresolved ones are left out of the table and say why.

    Consumers count only in ``trusted_namespaces`` (None trusts every namespace, as standalone manifests do).
    """
    tenancy = compile_consumers(inventory, trusted_namespaces)
    conditions: dict[ObjectRef, tuple[Condition, ...]] = dict(tenancy.conditions)
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
    used = sorted(
        {
            target.credential
            for route in routes
            for targets in (route.targets, *(profile.targets for profile in route.profiles))
            for target in targets
        }
    )
    keys = sorted(
        {hash_api_key(v) for s in inventory.secrets if s.is_api_keys for v in s.values.values() if v}
        - tenancy.claimed_keys
    )
    table = RoutingTable(
        routes=tuple(sorted(routes, key=lambda r: r.id)),
        credentials=tuple(by_id[k] for k in used),
        api_key_sha256=tuple(keys),
        consumers=tenancy.consumers,
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
        conditions[ref] = invalid_spec(exc, gen)
        return _CredentialOutcome(None, f"{ref} is invalid: {message}")
    accepted = Condition(ACCEPTED, "True", "Accepted", "spec is valid", gen)
    try:
        secrets = ResolvedSecrets(spec, inventory, ref.namespace)
    except UnresolvedReference as unresolved:
        conditions[ref] = (accepted, Condition(RESOLVED_REFS, "False", unresolved.reason, unresolved.problem, gen))
        return _CredentialOutcome(None, f"{ref}: {unresolved.problem}")
    conditions[ref] = (
        accepted,
        Condition(RESOLVED_REFS, "True", "ResolvedRefs", "all references resolve", gen),
    )
    credential = Credential(
        id=f"{ref.namespace}/{ref.name}",
        provider=spec.provider,
        base_url=(spec.base_url or default_base_url(spec.provider, spec.region)).rstrip("/"),
        api_key=secrets.api_key,
        azure=spec.azure,
        aws_keys=secrets.aws_keys,
        vertex=spec.vertex,
        service_account=secrets.service_account,
        egress=secrets.egress,
        headers=spec.headers,
        region=spec.region,
        jurisdiction=spec.jurisdiction,
        data_retention=spec.data_retention,
        prices={
            model: ModelPrice(
                input=price.input_per_m_tokens,
                output=price.output_per_m_tokens,
                cached_input=price.cached_input_per_m_tokens,
            )
            for model, price in spec.prices.items()
        },
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
        conditions[ref] = invalid_spec(exc, gen)
        return None
    names = [*spec.public_names(), *spec.model_patterns]
    taken = [(name, claimed[name]) for name in names if name in claimed]
    if taken:
        message = "; ".join(
            f"model name {name!r} is already served by ModelRoute {o.namespace}/{o.name}" for name, o in taken
        )
        conditions[ref] = (
            Condition(ACCEPTED, "False", "DuplicateModelName", message, gen),
            Condition(RESOLVED_REFS, "Unknown", "NotAccepted", "route was not accepted", gen),
        )
        return None
    for name in names:
        claimed[name] = ref
    accepted = Condition(ACCEPTED, "True", "Accepted", "spec is valid", gen)
    problems: list[str] = []
    targets = _compile_targets(spec.targets, "targets", ref, require=spec.require, outcomes=outcomes, problems=problems)
    profiles = []
    for index, profile in enumerate(spec.profiles):
        chosen = _compile_targets(
            profile.targets,
            f"profiles[{index}].targets",
            ref,
            require=spec.require,
            outcomes=outcomes,
            problems=problems,
        )
        if chosen:
            profiles.append(Profile(name=profile.name, targets=tuple(chosen)))
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
        patterns=tuple(spec.model_patterns),
        targets=tuple(targets),
        profiles=tuple(profiles),
        policy=compile_policy(spec),
    )


def _compile_targets(
    specs: list[TargetSpec],
    where: str,
    ref: ObjectRef,
    *,
    require: RequireSpec | None,
    outcomes: dict[ObjectRef, _CredentialOutcome],
    problems: list[str],
) -> list[Target]:
    """The targets whose credential resolves and passes the route's guard rails; the rest go to ``problems``."""
    targets: list[Target] = []
    for index, target in enumerate(specs):
        cred_ref = ObjectRef("ProviderCredential", ref.namespace, target.credential_ref.name)
        outcome = outcomes.get(cred_ref)
        if outcome is None:
            problems.append(f"{where}[{index}]: ProviderCredential {ref.namespace}/{cred_ref.name} not found")
        elif outcome.credential is None:
            problems.append(f"{where}[{index}]: {outcome.problem}")
        elif refusal := guard_rail_refusal(require, outcome.credential, target):
            problems.append(f"{where}[{index}]: excluded by require: {refusal}")
        else:
            targets.append(
                Target(
                    id=f"{outcome.credential.id}|{target.model}",
                    credential=outcome.credential.id,
                    model=target.model,
                    weight=target.weight,
                    priority=target.priority,
                    context_window=target.context_window,
                )
            )
    return targets


def guard_rail_refusal(require: RequireSpec | None, credential: Credential, target: TargetSpec) -> str:
    """Why ``require`` forbids sending to this target through ``credential``; empty when it may."""
    if require is None:
        return ""
    facts = (
        ("jurisdiction", credential.jurisdiction, require.jurisdictions),
        ("region", credential.region, require.regions),
        (
            "dataRetention",
            credential.data_retention.value if credential.data_retention else None,
            [r.value for r in require.data_retention],
        ),
    )
    for name, value, allowed in facts:
        if allowed and value not in allowed:
            return f"{name} {value or 'unset'} of {credential.id} is not one of {', '.join(allowed)}"
    cap = require.max_price_per_m_tokens
    price = target_price(credential, target)
    if cap is not None and (price is None or price > cap):
        shown = "unset" if price is None else f"{price:g}"
        return f"pricePerMTokens {shown} is above maxPricePerMTokens {cap:g}"
    return ""


def target_price(credential: Credential, target: TargetSpec) -> float | None:
    """The price a guard rail compares: the target's ``pricePerMTokens``, else the credential's price table
    entry for its model (the higher of input and output, so a cap is never under-estimated)."""
    if target.price_per_m_tokens is not None:
        return target.price_per_m_tokens
    listed = credential.prices.get(target.model)
    return None if listed is None else max(listed.input, listed.output)


def compile_policy(spec: ModelRouteSpec) -> Policy:
    """The route's resilience settings with every duration in milliseconds."""

    def ms(value: str | None) -> int | None:
        return None if value is None else duration_ms(value)

    policy: dict[str, object] = {"fallback_on": tuple(t.value for t in spec.fallback_on)}
    if spec.strategy is not None:
        policy |= {"strategy": spec.strategy.type.value, "hedge_delay_ms": ms(spec.strategy.hedge_delay)}
    if spec.retry is not None:
        policy |= {
            "attempts": spec.retry.attempts,
            "max_total_attempts": spec.retry.max_total_attempts,
            "retry_on": tuple(t.value for t in spec.retry.retry_on),
        }
        if spec.retry.backoff is not None:
            policy |= {
                "backoff_initial_ms": duration_ms(spec.retry.backoff.initial),
                "backoff_max_ms": duration_ms(spec.retry.backoff.max),
            }
    if spec.timeouts is not None:
        t = spec.timeouts
        policy |= {
            "connect_ms": ms(t.connect),
            "first_token_ms": ms(t.first_token),
            "idle_ms": ms(t.idle),
            "total_ms": ms(t.total),
        }
    if spec.circuit_breaker is not None:
        b = spec.circuit_breaker
        policy |= {
            "breaker_failure_rate_percent": b.failure_rate_percent,
            "breaker_min_requests": b.min_requests,
            "breaker_window_ms": duration_ms(b.window),
            "breaker_cooldown_ms": duration_ms(b.cooldown),
        }
    if spec.faults is not None:
        f = spec.faults
        policy["faults"] = Faults(
            abort_percent=f.abort_percent,
            abort_status=f.abort_status,
            delay_ms=ms(f.delay) or 0,
            delay_percent=f.delay_percent,
        )
    return Policy.model_validate(policy)
