"""The live routing table: compiled once per swap into lookups the request path reads without locking.

A swap is one reference assignment, so requests in flight finish on the table they started with, and a
table that fails to compile never replaces the good one.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import logging
from collections.abc import Iterable

import orjson

from modelyard_proxy.cloudauth import Authorizers, CallAuthorizer
from modelyard_proxy.providers.base import ProviderAdapter
from modelyard_proxy.providers.registry import adapter_for
from modelyard_routing import Credential, InvalidTableError, Route, RoutingTable, Target, hash_api_key
from modelyard_routing.prices import UNKNOWN_OUTPUT_LIMIT, output_limit, price_for
from modelyard_routing.table import Consumer, ModelPrice

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A target of one route bound to its credential, the adapter for its wire dialect, and what the request
    path would otherwise work out per request: its metric labels and its price."""

    target: Target
    credential: Credential
    adapter: ProviderAdapter
    #: ``(route, provider, model)``, the labels of every metric about this target's answers.
    labels: tuple[str, str, str]
    #: What its tokens cost (the credential's price, else the built-in one); None when unknown.
    price: ModelPrice | None
    #: The most output tokens its model may produce in one answer: what a budget reserves without ``max_tokens``.
    output_limit: int = UNKNOWN_OUTPUT_LIMIT
    #: What signs or authenticates its calls (Bedrock, Vertex AI); None where the adapter's static key does.
    authorizer: CallAuthorizer | None = None

    @property
    def target_id(self) -> str:
        """The stable id health state is keyed by."""
        return self.target.id

    @property
    def weight(self) -> int:
        """Share of traffic among its priority."""
        return self.target.weight

    @property
    def priority(self) -> int:
        """Failover order, lowest first."""
        return self.target.priority


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """A route with its targets (lowest priority value first) and each profile's targets."""

    route: Route
    targets: TargetSet
    profiles: dict[str, TargetSet] = dataclasses.field(default_factory=dict)

    def targets_for(self, profile: str | None) -> TargetSet:
        """The profile's targets when it names one the route has, else the route's own."""
        return self.profiles.get(profile, self.targets) if profile else self.targets


@dataclasses.dataclass(frozen=True, slots=True)
class TargetSet:
    """Targets sorted by priority, and whether no two share one (then their order needs no shuffle)."""

    targets: tuple[ResolvedTarget, ...]
    one_per_priority: bool

    @classmethod
    def of(cls, targets: tuple[ResolvedTarget, ...]) -> TargetSet:
        """``targets`` (already sorted by priority) with the flag worked out."""
        return cls(targets, all(a.priority < b.priority for a, b in itertools.pairwise(targets)))


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """Who a gateway key belongs to: a consumer with its grants, or nobody in particular (a plain key)."""

    #: None for a key of a labelled Secret no consumer claims: every model, no limits, no budget.
    consumer: Consumer | None = None
    #: Public names the consumer lists exactly, and its wildcard patterns (``*`` alone: everything).
    names: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, consumer: Consumer) -> Caller:
        """The caller a consumer's keys identify."""
        patterns = tuple(m for m in consumer.models if "*" in m)
        return cls(consumer, frozenset(m for m in consumer.models if "*" not in m), patterns)

    @property
    def name(self) -> str:
        """The consumer's ``namespace/name``; empty for a plain key."""
        return self.consumer.name if self.consumer is not None else ""

    def allows(self, requested: str, route: Route) -> bool:
        """Whether the caller may call ``requested`` (served by ``route``): the name, or any name of the same
        route, is listed, or a listed pattern matches the name asked for."""
        if self.consumer is None:
            return True
        names = self.names
        if requested in names or route.model in names or any(alias in names for alias in route.aliases):
            return True
        return any(fnmatch.fnmatchcase(requested, pattern) for pattern in self.patterns)


#: The caller behind a plain gateway key.
PLAIN_KEY = Caller()


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledTable:
    """A routing table turned into what the request path needs: name lookups, key hashes, /v1/models."""

    table: RoutingTable
    routes: dict[str, ResolvedRoute]
    #: Every valid key's hash, and the caller it identifies.
    key_hashes: dict[str, Caller]
    models_body: bytes
    #: Wildcard names, most specific (longest) first.
    patterns: tuple[tuple[str, ResolvedRoute], ...] = ()
    #: Keys already found valid, so a client's key is hashed once per table, not once per request. Only
    #: valid keys are kept, so its size is bounded by the table's keys whatever clients send.
    _accepted: dict[str, Caller] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    #: ``/v1/models`` as each consumer sees it (only what it may call), by consumer, made on first use.
    _models_by_consumer: dict[str, bytes] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def identify(self, key: str) -> Caller | None:
        """The caller ``key`` identifies, or None when it is none of the table's gateway API keys."""
        caller = self._accepted.get(key)
        if caller is not None:
            return caller
        caller = self.key_hashes.get(hash_api_key(key))
        if caller is not None:
            self._accepted[key] = caller
        return caller

    def models_for(self, caller: Caller) -> bytes:
        """``/v1/models`` for ``caller``: every public name, or only those its consumer may call."""
        if caller.consumer is None:
            return self.models_body
        body = self._models_by_consumer.get(caller.name)
        if body is None:
            names = sorted(name for name, route in self.routes.items() if caller.allows(name, route.route))
            body = self._models_by_consumer[caller.name] = _models_body(names)
        return body

    def lookup(self, model: str) -> ResolvedRoute | None:
        """The route for ``model``: an exact name or alias, else the longest wildcard pattern that matches."""
        route = self.routes.get(model)
        if route is not None:
            return route
        return next((r for pattern, r in self.patterns if fnmatch.fnmatchcase(model, pattern)), None)

    @classmethod
    def from_table(
        cls, table: RoutingTable, extra_keys: Iterable[str] = (), authorizers: Authorizers | None = None
    ) -> CompiledTable:
        """Bind every target; raises InvalidTableError if the table contradicts itself.

        ``authorizers`` keeps each credential's authoriser (and its cached keys and tokens) across tables.
        """
        authorizers = authorizers if authorizers is not None else Authorizers()
        credentials = {c.id: c for c in table.credentials}
        routes: dict[str, ResolvedRoute] = {}
        patterns: list[tuple[str, ResolvedRoute]] = []

        def bind(route: Route, targets: Iterable[Target]) -> TargetSet:
            bound = []
            for target in sorted(targets, key=lambda t: t.priority):
                credential = credentials.get(target.credential)
                if credential is None:
                    msg = f"route {route.id} names credential {target.credential} that the table does not carry"
                    raise InvalidTableError(msg)
                labels = (route.id, credential.provider.value, target.model)
                price = price_for(credential, target.model)
                adapter = adapter_for(credential.provider)
                authorizer = authorizers.for_credential(credential)
                limit = output_limit(target.model)
                bound.append(ResolvedTarget(target, credential, adapter, labels, price, limit, authorizer))
            return TargetSet.of(tuple(bound))

        for route in table.routes:
            profiles = {profile.name: bind(route, profile.targets) for profile in route.profiles}
            resolved = ResolvedRoute(route, bind(route, route.targets), profiles)
            patterns.extend((pattern, resolved) for pattern in route.patterns)
            for name in (route.model, *route.aliases):
                if name in routes:
                    msg = f"model name {name!r} appears in two routes"
                    raise InvalidTableError(msg)
                routes[name] = resolved
        keys = dict.fromkeys((*table.api_key_sha256, *(hash_api_key(k) for k in extra_keys)), PLAIN_KEY)
        for consumer in table.consumers:
            caller = Caller.of(consumer)
            keys.update(dict.fromkeys(consumer.key_sha256, caller))
        return cls(
            table=table,
            routes=routes,
            key_hashes=keys,
            models_body=_models_body(sorted(routes)),
            patterns=tuple(sorted(patterns, key=lambda p: (-len(p[0].replace("*", "")), p[0]))),
        )


def _models_body(names: Iterable[str]) -> bytes:
    models = [{"id": name, "object": "model", "created": 0, "owned_by": "modelyard"} for name in names]
    return orjson.dumps({"object": "list", "data": models})


class StaleTableError(InvalidTableError):
    """A table no newer than the one served (an older generation, or the same one with other content)."""

    def __init__(self, message: str, *, conflict: bool) -> None:
        super().__init__(message)
        self.conflict = conflict


class TableStore:
    """Holds the current compiled table and the reason the last rejected one was refused."""

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self._extra_keys = tuple(extra_keys)
        self.current: CompiledTable | None = None
        self.last_error: str | None = None
        #: Each credential's authoriser, kept across tables while the credential is unchanged.
        self.authorizers = Authorizers()

    def apply(self, table: RoutingTable) -> CompiledTable:
        """Compile and swap in ``table``; on failure the old table stays and the error is raised."""
        try:
            compiled = CompiledTable.from_table(table, self._extra_keys, self.authorizers)
        except InvalidTableError as exc:
            self.reject(str(exc))
            raise
        self.authorizers.keep_only(credential.id for credential in table.credentials)
        self.current = compiled
        self.last_error = None
        log.info(
            "routing table generation %d loaded (sha256 %s, %d routes)",
            table.generation,
            table.sha256[:12],
            len(table.routes),
        )
        return compiled

    def apply_newer(self, table: RoutingTable) -> bool:
        """Apply ``table`` only if its generation is newer; False if it is exactly the table being served.

        Pushes and the mounted file can arrive in any order, so generations only move forward: an older one
        raises StaleTableError (and is not recorded as ``last_error``, since nothing is wrong with the served one).
        """
        served = self.current.table if self.current else None
        if served is not None and table.generation <= served.generation:
            if table.generation == served.generation and table.sha256 == served.sha256:
                return False
            conflict = table.generation == served.generation
            msg = (
                f"generation {table.generation} {'has other content than' if conflict else 'is older than'} "
                f"the served generation {served.generation}"
            )
            raise StaleTableError(msg, conflict=conflict)
        self.apply(table)
        return True

    def reject(self, reason: str) -> None:
        """Record why a candidate table was refused; the current one keeps serving."""
        self.last_error = reason
        log.warning("routing table refused, keeping generation %s: %s", self.generation, reason)

    @property
    def generation(self) -> int | None:
        """Generation of the table being served, if any."""
        return self.current.table.generation if self.current else None
