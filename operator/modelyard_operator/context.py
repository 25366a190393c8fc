"""The operator-wide context kopf hands to every handler as ``memo``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

from opentelemetry import trace

import modelyard_tracing as telemetry
from modelyard_operator.debounce import Debouncer
from modelyard_operator.inventory import Key
from modelyard_operator.kube import KubeClient
from modelyard_operator.publisher import Publisher
from modelyard_operator.reconciler import Indices, Reconciler
from modelyard_operator.settings import OperatorSettings
from modelyard_operator.usage import UsageReader
from modelyard_routing.push import AdminToken


@dataclasses.dataclass(eq=False)
class OperatorContext:
    """Settings, the API client, the change trigger and the control loop, shared by every handler.

    kopf copies the memo for each object; ``__copy__`` returns this very object, so all share one.
    """

    settings: OperatorSettings
    kube: KubeClient
    trigger: Debouncer
    reconciler: Reconciler | None = None
    _task: asyncio.Task[None] | None = None
    _publisher: Publisher | None = None
    _usage: UsageReader | None = None
    _usage_task: asyncio.Task[None] | None = None
    #: Traces of compile and push passes, exported as the ``OTEL_*`` environment says (no-op without it).
    tracer_provider: trace.TracerProvider = dataclasses.field(default_factory=trace.NoOpTracerProvider)

    @classmethod
    def create(cls, settings: OperatorSettings) -> OperatorContext:
        """A context for ``settings``; nothing runs until :meth:`start`."""
        return cls(settings, KubeClient(settings.kubeconfig), Debouncer(settings.debounce, settings.max_debounce))

    def __copy__(self) -> OperatorContext:
        return self

    def start(self, indices: Indices) -> None:
        """Start the control loop over kopf's live indexes."""
        token = AdminToken.from_env(self.settings.admin_token_file, "MODELYARD_ADMIN_TOKEN")
        if isinstance(self.tracer_provider, trace.NoOpTracerProvider):
            self.tracer_provider = telemetry.tracer_provider_from_env("modelyard-operator")
        tracer = self.tracer_provider.get_tracer("modelyard_operator")
        self._publisher = Publisher(self.settings, self.kube, token, tracer)
        settings = self.settings
        self._usage = UsageReader(
            token,
            indices.endpoints,
            self.trigger.request,
            interval=settings.usage_interval,
            timeout=settings.push_timeout,
        )
        self.reconciler = Reconciler(
            settings, self.kube, self.trigger, indices, self._publisher, tracer=tracer, usage=self._usage
        )
        self._task = asyncio.create_task(self.reconciler.run(), name="modelyard reconciler")
        self._usage_task = asyncio.create_task(self._usage.run(), name="modelyard usage")

    async def stop(self) -> None:
        """Stop the control loop and close connections; the proxies keep serving what they have."""
        for task in (self._usage_task, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._usage is not None:
            await self._usage.close()
        if self._publisher is not None:
            await self._publisher.close()
        await self.kube.close()
        await asyncio.to_thread(telemetry.shutdown, self.tracer_provider)

    def consumer_reads(self, secret: Key) -> bool:
        """Whether a trusted consumer took keys from ``secret`` in the last reconcile pass."""
        return self.reconciler is not None and secret in self.reconciler.consumer_secrets

    def probe(self) -> dict[str, Any]:
        """What the probes report besides their verdict: the table and how many proxies serve it."""
        return self.reconciler.probe() if self.reconciler is not None else {}

    def stalled(self) -> str:
        """Why the control loop is of no more use (the liveness probe fails), or "" while it works.

        Before kopf starts it, the operator is still logging in and listing: alive, just not ready.
        """
        if self._task is not None and self._task.done():
            return "the control loop stopped"
        started = self.reconciler.pass_started if self.reconciler is not None else None
        if started is None:
            return ""
        running = asyncio.get_running_loop().time() - started
        limit = self.settings.stall_timeout
        return f"a reconcile pass has run for {running:.0f}s (limit {limit:.0f}s)" if running > limit else ""

    @property
    def ready(self) -> bool:
        """Whether the first reconcile finished: the cluster was listed, the table published, statuses written."""
        return self.reconciler is not None and self.reconciler.passes > 0
