"""Delivers a table: into the Secret proxy pods mount, and by push to every ready pod's admin port.

The Secret lets a new pod serve without the operator; the push makes a change live in about a second
instead of after the kubelet's next mount sync. Each pod's answer is remembered: the generation and hash it
serves, or why it refused, which is what ``Programmed`` is computed from. Failed pushes retry with a
doubling backoff; a periodic query of every pod catches what pushes cannot (a restarted pod, a lost answer).
A pod that cannot be reached serves nothing as far as the operator knows: what it last answered is dropped,
so a dead pod (or one a NetworkPolicy hides) stops counting at the next query.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Iterable

import aiohttp
from opentelemetry import trace
from pydantic import ValidationError

from modelyard_operator.discovery import ProxyEndpoint
from modelyard_operator.kube import KubeClient
from modelyard_operator.settings import OperatorSettings
from modelyard_operator.status import Rollout
from modelyard_operator.tables import RouteGenerations, TableStep
from modelyard_routing import RoutingTable
from modelyard_routing.push import (
    ADMIN_TABLE_PATH,
    GENERATION_ANNOTATION,
    SHA256_ANNOTATION,
    TABLE_SECRET_KEY,
    AdminToken,
    PushRefused,
    Refusal,
    TableState,
)

log = logging.getLogger(__name__)

#: Pushes in flight at once: enough for a large Deployment, few enough not to starve the event loop.
MAX_CONCURRENT_PUSHES = 16
#: The Secret's item holding each route's first generation (:class:`RouteGenerations`); proxies ignore it.
ROUTE_GENERATIONS_ITEM = "route-generations.json"
SECRET_LABELS = {"app.kubernetes.io/managed-by": "modelyard-operator", "app.kubernetes.io/part-of": "modelyard"}


@dataclasses.dataclass(slots=True)
class ProxyState:
    """What one ready pod serves, as far as its last answer says, and when to try it again."""

    endpoint: ProxyEndpoint
    generation: int | None = None
    sha256: str | None = None
    problem: str = ""
    refused: bool = False
    #: The last query or push did not get an answer (connection refused, timeout).
    unreachable: bool = False
    failures: int = 0
    retry_at: float = 0.0
    #: The (generation, sha256) last offered: the backoff applies to retries of it, not to a newer table.
    offered: tuple[int, str] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PublishedSecret:
    """The table Secret as found at startup: the table if this operator can read it, its generation, and
    the generation that first carried each of its routes as it stands."""

    table: RoutingTable | None
    generation: int
    routes: RouteGenerations = dataclasses.field(default_factory=RouteGenerations)


class Publisher:
    """Writes the table Secret and keeps every ready proxy on the current table."""

    def __init__(
        self, settings: OperatorSettings, kube: KubeClient, token: AdminToken, tracer: trace.Tracer | None = None
    ) -> None:
        self._tracer = tracer or trace.NoOpTracer()
        self._settings = settings
        self._kube = kube
        self._token = token
        self._states: dict[str, ProxyState] = {}
        self._secret_sha: str | None = None
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the connection pool to the proxies."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._settings.push_timeout))
        return self._session

    # --- the Secret -----------------------------------------------------------------------------------------

    async def read_secret(self) -> PublishedSecret:
        """The table last written, so generations continue across operator restarts."""
        secret = await self._kube.read_secret(self._settings.namespace, self._settings.table_secret)
        if secret is None:
            return PublishedSecret(None, 0)
        annotations = (secret.get("metadata") or {}).get("annotations") or {}
        generation = int(annotations.get(GENERATION_ANNOTATION) or 0)
        try:
            encoded = (secret.get("data") or {})[TABLE_SECRET_KEY]
            table = RoutingTable.from_wire(base64.b64decode(encoded))
        except (KeyError, ValueError) as exc:  # missing, not base64/JSON, or another schema version
            log.warning("the table Secret holds no table this operator reads (%s); numbering from %d", exc, generation)
            return PublishedSecret(None, generation)
        self._secret_sha = table.sha256
        try:
            routes = RouteGenerations.model_validate_json(base64.b64decode(secret["data"][ROUTE_GENERATIONS_ITEM]))
        except (KeyError, ValueError):  # an older operator's Secret: every route counts from this table
            routes = RouteGenerations()
        return PublishedSecret(table, max(generation, table.generation), routes.for_table(table))

    async def write_secret(self, step: TableStep) -> None:
        """Write the step's table (and its routes' generations) into the Secret unless it already holds it;
        raises KubeError on failure."""
        table = step.table
        if table.sha256 == self._secret_sha:
            return
        generations = RouteGenerations.of(step).model_dump_json().encode()
        patch = {
            "metadata": {
                "labels": SECRET_LABELS,
                "annotations": {GENERATION_ANNOTATION: str(table.generation), SHA256_ANNOTATION: table.sha256},
            },
            "data": {
                TABLE_SECRET_KEY: base64.b64encode(table.to_wire()).decode(),
                ROUTE_GENERATIONS_ITEM: base64.b64encode(generations).decode(),
            },
        }
        await self._kube.write_secret(self._settings.namespace, self._settings.table_secret, patch)
        self._secret_sha = table.sha256
        log.info("wrote routing table generation %d to Secret %s", table.generation, self._settings.table_secret)

    # --- the proxies ----------------------------------------------------------------------------------------

    async def sync(self, table: RoutingTable, endpoints: Iterable[ProxyEndpoint], *, query: bool) -> None:
        """Bring every proxy to ``table``: ask each what it serves (if ``query``), push where due."""
        # A pod that went away, or changed address or readiness, starts afresh: what it serves is re-checked.
        self._states = {
            e.name: state if (state := self._states.get(e.name)) and state.endpoint == e else ProxyState(e)
            for e in endpoints
        }
        gate = asyncio.Semaphore(MAX_CONCURRENT_PUSHES)
        if query:
            await asyncio.gather(*(self._query(state, gate) for state in self._states.values()))
        now = asyncio.get_running_loop().time()
        offer = (table.generation, table.sha256)
        due = [
            s for s in self._states.values() if s.sha256 != table.sha256 and (s.retry_at <= now or s.offered != offer)
        ]
        if due:
            wire = table.to_wire()
            await asyncio.gather(*(self._push(state, table, wire, gate) for state in due))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.value()}", "Content-Type": "application/json"}

    async def _query(self, state: ProxyState, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                async with self._client().get(state.endpoint.url + ADMIN_TABLE_PATH, headers=self._headers()) as resp:
                    if resp.status != 200:
                        state.problem = f"query answered HTTP {resp.status}"
                        state.generation = state.sha256 = None
                        return
                    served = TableState.model_validate_json(await resp.read())
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._unreachable(state, exc)
                return
            except ValidationError:
                state.problem = "query answered with something that is not a table state"
                state.generation = state.sha256 = None
                return
        if state.unreachable:  # it answers again: what kept it away is over
            state.problem, state.unreachable = "", False
        if (state.generation, state.sha256) != (served.generation, served.sha256):
            log.info("proxy %s serves generation %s", state.endpoint.name, served.generation)
            state.retry_at = 0.0  # it changed under us (a restart): push now, not after a backoff
        state.generation, state.sha256 = served.generation, served.sha256

    async def _push(self, state: ProxyState, table: RoutingTable, wire: bytes, gate: asyncio.Semaphore) -> None:
        """One push, traced as a client span ``push routing-table`` (the proxy, generation and outcome)."""
        with self._tracer.start_as_current_span(
            "push routing-table",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "modelyard.proxy": state.endpoint.name,
                "url.full": state.endpoint.url + ADMIN_TABLE_PATH,
                "modelyard.table.generation": table.generation,
                "modelyard.table.sha256": table.sha256,
            },
        ) as span:
            await self._push_once(state, table, wire, gate)
            if state.sha256 != table.sha256:
                span.set_attribute("error.type", "refused" if state.refused else "failed")
                span.set_status(trace.StatusCode.ERROR, state.problem)

    async def _push_once(self, state: ProxyState, table: RoutingTable, wire: bytes, gate: asyncio.Semaphore) -> None:
        url = state.endpoint.url + ADMIN_TABLE_PATH
        state.offered = (table.generation, table.sha256)
        async with gate:
            try:
                async with self._client().put(url, data=wire, headers=self._headers()) as resp:
                    status, body = resp.status, await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._unreachable(state, exc)
                self._failed(state, state.problem, refused=False)
                return
        state.unreachable = False
        try:
            if status == 200:
                served = TableState.model_validate_json(body)
                state.generation, state.sha256 = served.generation, served.sha256
                state.problem, state.refused, state.failures, state.retry_at = "", False, 0, 0.0
                log.info("proxy %s loaded generation %d", state.endpoint.name, table.generation)
                return
            if status in {409, 422}:
                refusal = PushRefused.model_validate_json(body)
                state.generation, state.sha256 = refusal.generation, refusal.sha256
                # Stale numbering is the operator's to fix (it renumbers); anything else is the proxy refusing.
                renumber = refusal.reason in {Refusal.STALE_GENERATION, Refusal.GENERATION_CONFLICT}
                self._failed(state, f"refused: {refusal.reason}: {refusal.message}", refused=not renumber)
                return
        except ValidationError:
            pass
        problem = "the admin token was refused" if status == 401 else f"push answered HTTP {status}"
        self._failed(state, problem, refused=False)

    @staticmethod
    def _unreachable(state: ProxyState, exc: BaseException) -> None:
        """No answer: forget what the pod served (it is not counted) and say why, the same for queries and
        pushes so that the message stays put while the pod stays away."""
        state.generation = state.sha256 = None
        state.unreachable, state.refused = True, False
        state.problem = f"unreachable: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")

    def _failed(self, state: ProxyState, problem: str, *, refused: bool) -> None:
        state.problem, state.refused = problem, refused
        state.failures += 1
        delay = min(self._settings.retry_max, self._settings.retry_initial * 2 ** (state.failures - 1))
        state.retry_at = asyncio.get_running_loop().time() + delay
        log.warning("proxy %s: %s (retrying in %.1fs)", state.endpoint.name, problem, delay)

    def highest_other(self, table: RoutingTable | None) -> int:
        """The highest generation a proxy serves that is not ``table``: the next table must number past it."""
        sha = table.sha256 if table is not None else None
        return max((s.generation or 0 for s in self._states.values() if s.sha256 != sha), default=0)

    def outnumbered(self, table: RoutingTable) -> bool:
        """Whether a proxy serves another table numbered at or past ``table`` (after a lost Secret, say)."""
        return self.highest_other(table) >= table.generation

    def next_retry(self, table: RoutingTable) -> float | None:
        """When the earliest pending retry is due (loop time), if any proxy still lacks ``table``."""
        due = [s.retry_at for s in self._states.values() if s.sha256 != table.sha256]
        return min(due) if due else None

    def rollout(self, table: RoutingTable) -> Rollout:
        """What the ready proxies serve relative to ``table``, for the Programmed condition."""
        ready = {name: state for name, state in self._states.items() if state.endpoint.ready}
        loaded = {}
        for name, state in ready.items():
            # Our table, or an older one of ours: a newer-numbered other table does not serve ours.
            if state.generation is not None and (state.sha256 == table.sha256 or state.generation < table.generation):
                loaded[name] = state.generation
        return Rollout(
            generation=table.generation,
            ready=tuple(ready),
            loaded=loaded,
            problems={name: s.problem for name, s in ready.items() if s.problem},
            refused=frozenset(name for name, s in ready.items() if s.refused),
            unreachable=frozenset(name for name, s in ready.items() if s.unreachable),
        )
