"""The application factory: routes, middlewares and the shared upstream client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web
from opentelemetry import trace

import modelyard_tracing
from modelyard_proxy.api import count_tokens, handlers, models
from modelyard_proxy.api.middlewares import gateway_middleware
from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.conversations import open_conversations
from modelyard_proxy.keys import AUDIT, CONVERSATIONS, COUNTERS, HEALTH, METRICS, SETTINGS, STORE, TRACER, UPSTREAM
from modelyard_proxy.observability.auditlog import AuditLog
from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.providers.ingress.openai_chat import CHAT
from modelyard_proxy.providers.registry import PROTOCOLS
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.table.store import TableStore
from modelyard_proxy.tenancy.counters import Counters, StoreCounters
from modelyard_proxy.tenancy.opening import open_counters
from modelyard_proxy.upstream import EgressSettings, UpstreamClient
from modelyard_tracing.lean import lean_tracer


def create_app(
    settings: ProxySettings,
    store: TableStore,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    metrics: Metrics | None = None,
    audit: AuditLog | None = None,
) -> web.Application:
    """The public app serving whatever table ``store`` holds, in every client protocol the registry lists.

    ``tracer_provider`` defaults to one built from the ``OTEL_*`` environment (owned, and shut down, by the
    app); a provider passed in stays the caller's.
    """
    egress = egress_settings(settings)  # an unusable proxy or CA bundle stops the start before anything is built
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[gateway_middleware],
    )
    app[SETTINGS] = settings
    app[STORE] = store
    app[HEALTH] = HealthRegistry()
    app[METRICS] = metrics or Metrics()
    app[AUDIT] = audit or AuditLog()
    app.cleanup_ctx.append(app[AUDIT].flushing())
    if tracer_provider is None:
        owned = modelyard_tracing.tracer_provider_from_env("modelyard-proxy")

        async def _shutdown(_: web.Application) -> None:
            modelyard_tracing.shutdown(owned)

        app.on_cleanup.append(_shutdown)
        tracer_provider = owned
    app[TRACER] = lean_tracer(tracer_provider, "modelyard_proxy")
    app.cleanup_ctx.append(_upstream_client(egress))
    app.on_cleanup.append(_stop_authorizers)
    app[COUNTERS] = counters_for(settings)
    app.cleanup_ctx.append(_counters)
    app[CONVERSATIONS] = open_conversations(settings)
    app.cleanup_ctx.append(_conversations)
    for protocol in PROTOCOLS.values():
        app.router.add_post(protocol.path, handlers.protocol_endpoint(protocol))
    app.router.add_post("/v1/messages/count_tokens", count_tokens.count_tokens)
    app.router.add_post("/v1/embeddings", handlers.embeddings)
    app.router.add_get("/v1/models", models.list_models)
    app.router.add_get("/v1/models/{model:.+}", models.retrieve_model)
    # Azure OpenAI's addressing, so that AzureOpenAI(azure_endpoint=<gateway>) works unchanged.
    azure = f"/openai/deployments/{{{handlers.DEPLOYMENT}}}"
    app.router.add_post(f"{azure}/chat/completions", handlers.protocol_endpoint(CHAT))
    app.router.add_post(f"{azure}/embeddings", handlers.embeddings)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    return app


def counters_for(settings: ProxySettings) -> Counters:
    """The store's counters when one is configured, else this process's own (exact for one process only)."""
    return open_counters(
        settings.store_url, settings.store_password, settings.store_timeout_ms / 1000, settings.store_prefix
    )


async def _counters(app: web.Application) -> AsyncIterator[None]:
    """Connect to the store (and load its scripts) before the first request; close it on shutdown."""
    counters = app[COUNTERS]
    if isinstance(counters, StoreCounters):
        await counters.warm_up()
    try:
        yield
    finally:
        await counters.close()


async def _conversations(app: web.Application) -> AsyncIterator[None]:
    """Close the conversation store's connections on shutdown."""
    try:
        yield
    finally:
        if (conversations := app[CONVERSATIONS]) is not None:
            await conversations.close()


async def _stop_authorizers(app: web.Application) -> None:
    """Cancel the credentials' background refreshes."""
    app[STORE].authorizers.close()


def egress_settings(settings: ProxySettings) -> EgressSettings:
    """The gateway's way out; an unusable proxy URL or CA bundle stops the start, naming it."""
    return EgressSettings.gateway(
        https_proxy=settings.https_proxy,
        http_proxy=settings.http_proxy,
        no_proxy=settings.no_proxy,
        ca_bundle=settings.ca_bundle,
    )


def _upstream_client(egress: EgressSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def pooled(app: web.Application) -> AsyncIterator[None]:
        """One pooled upstream client per process, its connections closed on shutdown."""
        client = UpstreamClient(limit=app[SETTINGS].pool_size, egress=egress)
        app[UPSTREAM] = client
        try:
            yield
        finally:
            await client.close()

    return pooled
