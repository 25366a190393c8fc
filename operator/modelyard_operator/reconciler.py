"""The control loop: on any change (debounced), or when a retry or resync is due, rebuild everything.

One pass reads the kopf indexes, compiles the next table, publishes it, and writes every status. It is
level-based: nothing depends on which event arrived, so a missed or duplicated event costs nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace

from modelyard_operator import consumer_status, discovery, inventory, status
from modelyard_operator.debounce import Debouncer
from modelyard_operator.discovery import ProxyEndpoint
from modelyard_operator.inventory import Key, Observed
from modelyard_operator.kube import KubeClient, KubeError
from modelyard_operator.publisher import Publisher
from modelyard_operator.settings import OperatorSettings
from modelyard_operator.tables import TableStep, next_table
from modelyard_operator.usage import UsageReader
from modelyard_routing import Condition, ObjectRef, RoutingTable, SecretData
from modelyard_routing.usage import ConsumerUsage

log = logging.getLogger(__name__)

#: Status patches in flight at once.
MAX_CONCURRENT_PATCHES = 8


@dataclasses.dataclass(frozen=True, slots=True)
class Indices:
    """The live kopf indexes the reconciler compiles from (each key maps to a store of values)."""

    routes: Mapping[Key, Iterable[Observed]]
    credentials: Mapping[Key, Iterable[Observed]]
    secrets: Mapping[Key, Iterable[SecretData]]
    proxies: Mapping[Key, Iterable[tuple[ProxyEndpoint, ...]]]
    consumers: Mapping[Key, Iterable[Observed]] = dataclasses.field(default_factory=dict)

    def endpoints(self) -> tuple[ProxyEndpoint, ...]:
        """The proxy pods as the EndpointSlices list them now."""
        return discovery.merge(inventory.flatten(self.proxies))


class Reconciler:
    """Owns the current table and what was last written to each object's status."""

    def __init__(
        self,
        settings: OperatorSettings,
        kube: KubeClient,
        trigger: Debouncer,
        indices: Indices,
        publisher: Publisher,
        *,
        tracer: trace.Tracer | None = None,
        usage: UsageReader | None = None,
    ) -> None:
        self._tracer = tracer or trace.NoOpTracer()
        self._usage = usage
        self._settings = settings
        self._kube = kube
        self._trigger = trigger
        self._indices = indices
        self._publisher = publisher
        self._published_generation = 0
        self._written: dict[ObjectRef, dict[str, Any]] = {}
        self._next_query = 0.0
        self._retry_soon = False
        self._retry_delay = settings.retry_initial
        self._table: RoutingTable | None = None
        self._since: Mapping[str, int] = {}
        self._hashes: Mapping[int, str] = {}
        self._consumer_since: Mapping[str, int] = {}
        self.step: TableStep | None = None
        #: The Secrets trusted consumers took keys from in the last pass: a change to one recompiles even
        #: when its labels no longer match.
        self.consumer_secrets: frozenset[Key] = frozenset()
        #: Passes completed; the first one is what makes the operator ready.
        self.passes = 0
        #: Loop time the running pass started at (None between passes), for the liveness probe.
        self.pass_started: float | None = None

    async def run(self) -> None:
        """Wait for the indexes to fill (kopf's first handler call), then reconcile forever."""
        await self._trigger.wait()
        await self._bootstrap()
        while True:
            self.pass_started = asyncio.get_running_loop().time()
            try:
                await self.reconcile()
                self.passes += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile failed; retrying")
                self._retry_soon = True
            finally:
                self.pass_started = None
            await self._trigger.wait(give_up_after=self._until_next_duty())

    async def _bootstrap(self) -> None:
        """Continue from the table in the Secret: its generation, and the last good routes it holds."""
        delay = self._settings.retry_initial
        while True:
            try:
                published = await self._publisher.read_secret()
            except KubeError as exc:
                log.warning("cannot read the table Secret (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.retry_max)
                continue
            break
        self._published_generation = published.generation
        self._table = published.table
        self._since, self._hashes = published.routes.since, published.routes.hashes
        self._consumer_since = published.routes.consumers
        log.info("continuing from routing table generation %d", published.generation)

    def _until_next_duty(self) -> float:
        now = asyncio.get_running_loop().time()
        deadlines = [self._next_query]
        if self._table is not None and (retry := self._publisher.next_retry(self._table)) is not None:
            deadlines.append(retry)
        if self._retry_soon:  # an API write failed: retry the pass, backing off while it keeps failing
            deadlines.append(now + self._retry_delay)
            self._retry_delay = min(self._retry_delay * 2, self._settings.retry_max)
        else:
            self._retry_delay = self._settings.retry_initial
        return max(0.0, min(deadlines) - now)

    async def reconcile(self) -> None:
        """One full pass: compile, publish, write statuses (traced as ``reconcile``, with ``compile
        routing-table`` and one ``push routing-table`` per proxy under it)."""
        with self._tracer.start_as_current_span("reconcile") as span:
            await self._reconcile()
            if self.step is not None:
                span.set_attribute("modelyard.table.generation", self.step.table.generation)

    async def _reconcile(self) -> None:
        self._retry_soon = False
        routes = inventory.flatten(self._indices.routes)
        credentials = inventory.flatten(self._indices.credentials)
        consumers = inventory.flatten(self._indices.consumers)
        secrets = inventory.flatten(self._indices.secrets)
        snapshot = inventory.build_inventory(routes, credentials, secrets, consumers)
        self.consumer_secrets = inventory.consumer_secrets(consumers, secrets, self._settings.trusts)
        endpoints = self._indices.endpoints()
        now = asyncio.get_running_loop().time()
        query = now >= self._next_query
        if query:
            self._next_query = now + self._settings.resync_interval
        for _ in range(2):  # a second round only when a proxy serves another table numbered at or past ours
            previous = self._table
            floor = max(self._published_generation, self._publisher.highest_other(previous))
            with self._tracer.start_as_current_span("compile routing-table") as span:
                step = next_table(
                    snapshot,
                    previous,
                    self._since,
                    floor,
                    self._hashes,
                    previous_consumers=self._consumer_since,
                    trusted_namespaces=self._settings.trusted_namespaces,
                )
                span.set_attribute("modelyard.table.generation", step.table.generation)
                span.set_attribute("modelyard.table.sha256", step.table.sha256)
                span.set_attribute("modelyard.table.routes", len(step.table.routes))
                span.set_attribute("modelyard.table.changed", step.table is not previous)
            if step.table is not previous:
                log.info(
                    "routing table generation %d: %d routes, %d consumers, sha256 %s",
                    step.table.generation,
                    len(step.table.routes),
                    len(step.table.consumers),
                    step.table.sha256[:12],
                )
            self.step, self._table, self._since, self._hashes = step, step.table, step.since, step.hashes
            self._consumer_since = step.consumer_since
            self._published_generation = max(self._published_generation, step.table.generation)
            await self._write_secret(step)
            await self._publisher.sync(step.table, endpoints, query=query)
            query = False
            if not self._publisher.outnumbered(step.table):
                break
        assert self.step is not None
        rollout = self._publisher.rollout(self.step.table)
        await self._write_statuses(routes, credentials, consumers, self.step, rollout)

    async def _write_secret(self, step: TableStep) -> None:
        try:
            await self._publisher.write_secret(step)
        except KubeError as exc:
            # Pushes go on regardless; only pods started before the next successful write start older.
            log.warning("cannot write the table Secret: %s", exc)
            self._retry_soon = True

    async def _write_statuses(
        self,
        routes: list[Observed],
        credentials: list[Observed],
        consumers: list[Observed],
        step: TableStep,
        rollout: status.Rollout,
    ) -> None:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        gate = asyncio.Semaphore(MAX_CONCURRENT_PATCHES)
        jobs = []
        for observed in routes:
            desired, conditions = status.route_status(observed, step.conditions.get(observed.ref, ()), step, rollout)
            jobs.append(self._write_status(observed, desired, conditions, now, gate))
        for observed in credentials:
            desired = status.credential_status(observed)
            jobs.append(self._write_status(observed, desired, step.conditions.get(observed.ref, ()), now, gate))
        for observed in consumers:
            desired, conditions = consumer_status.consumer_status(
                observed,
                step.conditions.get(observed.ref, ()),
                step,
                rollout,
                usage=self._usage_of(observed.ref),
                current=self._current(observed),
            )
            jobs.append(self._write_status(observed, desired, conditions, now, gate))
        await asyncio.gather(*jobs)
        live = {o.ref for o in (*routes, *credentials, *consumers)}
        self._written = {ref: written for ref, written in self._written.items() if ref in live}

    async def _write_status(
        self,
        observed: Observed,
        desired: dict[str, Any],
        conditions: tuple[Condition, ...],
        now: str,
        gate: asyncio.Semaphore,
    ) -> None:
        current = self._current(observed)
        current_conditions = current.get("conditions") or []
        desired["conditions"] = status.render_conditions(conditions, current_conditions, now)
        if not status.changed_fields(desired, current):
            return
        async with gate:
            try:
                await self._kube.patch_status(observed.ref, desired)
            except KubeError as exc:
                if exc.status != 404:  # a deleted object needs no status
                    log.warning("cannot update the status of %s: %s", observed.ref, exc)
                    self._retry_soon = True
                return
            self._written[observed.ref] = desired
            for type_, condition in status.transitions(conditions, current_conditions):
                await self._post_event(observed, type_, condition)

    def _current(self, observed: Observed) -> Mapping[str, Any]:
        # What this operator last wrote is fresher than the index, whose watch event may still be on its way.
        return self._written.get(observed.ref, observed.status)

    def _usage_of(self, ref: ObjectRef) -> tuple[ConsumerUsage, str] | None:
        report = self._usage.report if self._usage is not None else None
        usage = self._usage.of(f"{ref.namespace}/{ref.name}") if self._usage is not None else None
        return (usage, report.generated_at) if usage is not None and report is not None else None

    async def _post_event(self, observed: Observed, type_: str, condition: Condition) -> None:
        message = f"{condition.type}={condition.status}: {condition.message}"
        try:
            await self._kube.post_event(observed.ref, observed.uid, type_, condition.reason, message)
        except KubeError as exc:
            log.warning("cannot post an event about %s: %s", observed.ref, exc)

    def probe(self) -> dict[str, Any]:
        """What the liveness probe reports: the table and how many proxies serve it."""
        if self.step is None:
            return {"tableGeneration": None}
        rollout = self._publisher.rollout(self.step.table)
        return {
            "tableGeneration": self.step.table.generation,
            "tableHash": self.step.table.sha256,
            "programmedReplicas": rollout.replicas(self.step.table.generation),
        }
