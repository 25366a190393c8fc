"""The operator's pure step: the cluster's objects plus the last published table in, the next table out.

It adds two things to the shared compiler. Generations: a table whose content did not change keeps its
generation, any change gets the next one; each route and each consumer remembers the generation from which
it has been served as it now stands (its ``since``), which is what its status names. And last-good
retention, per route: a route whose object still exists but stopped compiling cleanly (an invalid edit, a
deleted Secret, a missing key) keeps its previous version in the table, so one team's mistake neither takes
its own traffic down nor blocks anyone else's change. Deleting the route is what removes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Mapping
from typing import Any

import orjson
import pydantic

from modelyard_routing import CompileResult, Condition, Inventory, ObjectRef, Route, RoutingTable, compile_inventory
from modelyard_routing.table import REVEAL_SECRETS


@dataclasses.dataclass(frozen=True, slots=True)
class TableStep:
    """One compile: the sealed table, each object's conditions, and what the table keeps from before."""

    table: RoutingTable
    conditions: Mapping[ObjectRef, tuple[Condition, ...]]
    #: Routes served in their last good version, with the generation that version was published in.
    retained: Mapping[ObjectRef, int]
    #: Per route id: the table generation from which this route's current content has been served.
    since: Mapping[str, int]
    #: The sha256 of each table generation named in ``since`` (a route's status names that table).
    hashes: Mapping[int, str] = dataclasses.field(default_factory=dict)
    #: Per consumer name (``namespace/name``): the generation from which it has been served as it now stands.
    consumer_since: Mapping[str, int] = dataclasses.field(default_factory=dict)


class RouteGenerations(pydantic.BaseModel):
    """What a step's ``since``, ``consumer_since`` and ``hashes`` say, kept beside the table in its Secret so
    that a restarted operator goes on naming the same generation in each status (rewriting none of them)."""

    model_config = pydantic.ConfigDict(frozen=True)

    since: dict[str, int] = {}
    hashes: dict[int, str] = {}
    consumers: dict[str, int] = {}

    @classmethod
    def of(cls, step: TableStep) -> RouteGenerations:
        """The record of ``step``."""
        return cls(since=dict(step.since), hashes=dict(step.hashes), consumers=dict(step.consumer_since))

    def for_table(self, table: RoutingTable) -> RouteGenerations:
        """Only what can hold for ``table``: its routes and consumers, from generations at or before it, with
        known hashes."""
        hashes = {**self.hashes, table.generation: table.sha256}

        def known(ids: list[str], record: dict[str, int]) -> dict[str, int]:
            return {
                id_: generation
                for id_ in ids
                if (generation := record.get(id_)) is not None
                and generation <= table.generation
                and generation in hashes
            }

        since = known([route.id for route in table.routes], self.since)
        consumers = known([consumer.name for consumer in table.consumers], self.consumers)
        used = {*since.values(), *consumers.values()}
        return RouteGenerations(since=since, hashes={g: hashes[g] for g in used}, consumers=consumers)


def route_ref(route: Route) -> ObjectRef:
    """The ModelRoute a table route was compiled from (route ids are ``namespace/name``)."""
    namespace, _, name = route.id.partition("/")
    return ObjectRef("ModelRoute", namespace, name)


def route_fingerprints(table: RoutingTable) -> dict[str, str]:
    """Per route id, a hash of what serving the route depends on: the route and the credentials (keys) it uses."""
    credentials = {c.id: c.model_dump(mode="json", context={REVEAL_SECRETS: True}) for c in table.credentials}
    fingerprints = {}
    for route in table.routes:
        used = sorted({target.credential for target in route.targets})
        content = {"route": route.model_dump(mode="json"), "credentials": [credentials.get(c) for c in used]}
        fingerprints[route.id] = _digest(content)
    return fingerprints


def consumer_fingerprints(table: RoutingTable) -> dict[str, str]:
    """Per consumer name, a hash of what the proxies enforce for it (its key hashes included)."""
    return {consumer.name: _digest(consumer.model_dump(mode="json")) for consumer in table.consumers}


def _digest(content: Any) -> str:
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _since(
    now: Mapping[str, str], before: Mapping[str, str], previous_since: Mapping[str, int], previous: int, current: int
) -> dict[str, int]:
    """Each id's first generation: kept from ``previous_since`` while its fingerprint stays, else ``current``."""
    return {
        id_: previous_since.get(id_, previous) if before.get(id_) == fingerprint else current
        for id_, fingerprint in now.items()
    }


def retain_last_good(
    result: CompileResult, previous: RoutingTable | None, live: set[ObjectRef]
) -> tuple[RoutingTable, set[ObjectRef]]:
    """``result.table`` plus the previous version of each live route that no longer compiles cleanly."""
    table = result.table
    if previous is None:
        return table, set()
    routes = {route.id: route for route in table.routes}
    credentials = {c.id: c for c in table.credentials}
    previous_credentials = {c.id: c for c in previous.credentials}
    names = {name: route.id for route in table.routes for name in (route.model, *route.aliases)}
    retained: set[ObjectRef] = set()
    for old in previous.routes:
        ref = route_ref(old)
        if ref not in live or all(c.ok for c in result.conditions.get(ref, ())):
            continue
        if any(names.get(name, old.id) != old.id for name in (old.model, *old.aliases)):
            continue  # another route serves one of its names now
        used = {target.credential for target in old.targets}
        if not used <= previous_credentials.keys():
            continue  # not a table this operator wrote; nothing sound to keep
        routes[old.id] = old
        for credential in sorted(used):
            credentials.setdefault(credential, previous_credentials[credential])
        retained.add(ref)
    merged = table.model_copy(
        update={
            "routes": tuple(routes[key] for key in sorted(routes)),
            "credentials": tuple(credentials[key] for key in sorted(credentials)),
        }
    )
    return merged, retained


def next_table(
    inventory: Inventory,
    previous: RoutingTable | None,
    previous_since: Mapping[str, int],
    floor: int = 0,
    previous_hashes: Mapping[int, str] | None = None,
    *,
    previous_consumers: Mapping[str, int] | None = None,
    trusted_namespaces: Collection[str] | None = None,
) -> TableStep:
    """Compile ``inventory``; the generation moves past ``previous`` (and ``floor``) only if content changed.

    ``floor`` is the highest generation any proxy reported, so an operator that lost its Secret still
    numbers past what the proxies serve. ModelConsumers count only in ``trusted_namespaces``.
    """
    result = compile_inventory(inventory, generation=0, trusted_namespaces=trusted_namespaces)
    live = {manifest.ref for manifest in inventory.routes}
    merged, retained = retain_last_good(result, previous, live)
    if previous is not None and merged.content_hash() == previous.sha256 and previous.generation >= floor:
        table = previous
    else:
        table = merged.sealed(max(previous_generation(previous), floor) + 1)
    routes_now, consumers_now = route_fingerprints(table), consumer_fingerprints(table)
    if table is previous:  # nothing changed: every id keeps its generation
        routes_before, consumers_before = routes_now, consumers_now
    elif previous is not None:
        routes_before, consumers_before = route_fingerprints(previous), consumer_fingerprints(previous)
    else:
        routes_before, consumers_before = {}, {}
    old, new = previous_generation(previous), table.generation
    since = _since(routes_now, routes_before, previous_since, old, new)
    consumer_since = _since(consumers_now, consumers_before, previous_consumers or {}, old, new)
    known = {**(previous_hashes or {}), table.generation: table.sha256}
    if previous is not None:
        known[previous.generation] = previous.sha256
    used = {*since.values(), *consumer_since.values()}
    return TableStep(
        table=table,
        conditions=result.conditions,
        retained={ref: since[f"{ref.namespace}/{ref.name}"] for ref in retained},
        since=since,
        hashes={generation: known[generation] for generation in used if generation in known},
        consumer_since=consumer_since,
    )


def previous_generation(table: RoutingTable | None) -> int:
    """The generation of ``table``, 0 for none."""
    return table.generation if table is not None else 0
