"""Runs the proxy: one event loop (uvloop when installed), graceful shutdown on SIGTERM.

Two ways to get a table: standalone mode compiles a manifest folder; operator mode follows the table file
mounted from the operator's Secret and takes pushes on the admin port. Both serve the same public app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from aiohttp import web

from modelyard_proxy.api.admin import create_admin_app
from modelyard_proxy.api.app import create_app
from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.keys import COUNTERS, HEALTH, METRICS, SETTINGS, STORE
from modelyard_proxy.observability.metrics import Metrics
from modelyard_proxy.serving import gctuning
from modelyard_proxy.serving.connections import OTHER_FILES, ConnectionPolicy, GuardedRunner, raise_open_files_limit
from modelyard_proxy.table.standalone import Reloadable, watch_source
from modelyard_proxy.table.store import TableStore
from modelyard_routing.push import AdminToken

log = logging.getLogger(__name__)


def build_public_app(
    settings: ProxySettings, source_for: Callable[[TableStore], Reloadable], reload_interval: float
) -> web.Application:
    """The public app serving what ``source_for(store)`` loads (a manifest folder or the operator's table file).

    The source is read once before serving and polled for changes for the app's lifetime.
    """
    store = TableStore(settings.api_keys)
    source = source_for(store)
    source.reload()
    app = create_app(settings, store)
    app.cleanup_ctx.append(watch_source(source, reload_interval))
    return app


def build_admin_app(public: web.Application, token: AdminToken, *, accept_pushes: bool = True) -> web.Application:
    """The admin app loading pushed tables into the store ``public`` serves, and exporting its metrics."""
    return create_admin_app(
        public[STORE],
        token,
        metrics=public[METRICS],
        health=public[HEALTH],
        accept_pushes=accept_pushes,
        counters=public[COUNTERS],
    )


def stop_on_signals() -> asyncio.Event:
    """An event SIGINT or SIGTERM sets, on the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    *,
    access_log: bool = True,
    also: Sequence[tuple[web.Application, int]] = (),
    unix: Sequence[tuple[web.Application, str]] = (),
    reuse_port: bool = False,
    shutdown_timeout: float = 60.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` (and each ``(app, port)`` in ``also`` and ``(app, socket path)`` in ``unix``, without
    access log) until SIGINT or SIGTERM, or until ``stop`` is set when given.

    ``reuse_port`` lets several processes listen on ``port`` at once (SO_REUSEPORT), the kernel spreading
    connections over them. A client disconnect cancels its handler, and so its upstream call. On a signal
    the listeners close at once (so readiness probes fail and no new request arrives) and in-flight
    requests and streams get up to ``shutdown_timeout`` seconds to finish.
    """
    if stop is None:
        stop = stop_on_signals()
    runners: list[web.AppRunner] = []

    async def setup(served: web.Application, logged: bool) -> web.AppRunner:
        options: dict[str, Any] = {
            "handler_cancellation": True,
            "access_log": logging.getLogger("aiohttp.access") if logged else None,
            "shutdown_timeout": shutdown_timeout,
        }
        settings = served.get(SETTINGS)
        if settings is None:  # an admin app: reached by the operator and the supervisor only
            runner = web.AppRunner(served, **options)
        else:
            runner = GuardedRunner(
                served,
                connection_policy(settings, served[METRICS]),
                keepalive_timeout=settings.keepalive_timeout,
                **options,
            )
        runners.append(runner)
        await runner.setup()
        return runner

    try:
        for served, served_port, logged in [(app, port, access_log), *((a, p, False) for a, p in also)]:
            runner = await setup(served, logged)
            reuse = reuse_port and served is app
            await web.TCPSite(runner, host, served_port, reuse_address=True, reuse_port=reuse or None).start()
            log.info("serving on http://%s:%d", host, served_port)
        for served, path in unix:
            await web.UnixSite(await setup(served, False), path).start()
        gctuning.settle()
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def connection_policy(settings: ProxySettings, metrics: Metrics) -> ConnectionPolicy:
    """The public port's limits on client connections, from the settings; the open-files limit is raised to
    hold them (with the upstream pool), or a warning says that it cannot be."""
    if settings.max_connections:
        needed = settings.max_connections + settings.pool_size + OTHER_FILES
        if (limit := raise_open_files_limit(needed)) < needed:
            log.warning(
                "the open-files limit (%d) is below the %d that MODELYARD_MAX_CONNECTIONS=%d and "
                "MODELYARD_POOL_SIZE=%d need: raise the limit or lower them, or connections will fail unrefused",
                limit,
                needed,
                settings.max_connections,
                settings.pool_size,
            )
    return ConnectionPolicy(
        max_connections=settings.max_connections,
        header_timeout=settings.header_timeout,
        refused=metrics.connections_refused,
    )


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed, else on asyncio's default loop."""
    try:
        import uvloop  # noqa: PLC0415 - optional accelerator
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
