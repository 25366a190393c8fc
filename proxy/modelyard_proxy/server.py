"""Runs the proxy: one event loop (uvloop when installed), graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from modelyard_proxy.app import create_app
from modelyard_proxy.settings import ProxySettings
from modelyard_proxy.standalone import ManifestFolder, watch_folder
from modelyard_proxy.store import TableStore

log = logging.getLogger(__name__)


def build_standalone_app(settings: ProxySettings, manifests: Path, reload_interval: float) -> web.Application:
    """The public app serving a manifest folder, recompiled whenever it changes."""
    store = TableStore(settings.api_keys)
    folder = ManifestFolder(manifests, store)
    folder.reload()
    app = create_app(settings, store)
    app.cleanup_ctx.append(watch_folder(folder, reload_interval))
    return app


async def serve_until_stopped(app: web.Application, host: str, port: int, *, access_log: bool = True) -> None:
    """Serve ``app`` until SIGINT or SIGTERM; a client disconnect cancels its handler (and upstream call)."""
    runner = web.AppRunner(
        app, handler_cancellation=True, access_log=logging.getLogger("aiohttp.access") if access_log else None
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    log.info("serving on http://%s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed, else on asyncio's default loop."""
    try:
        import uvloop  # noqa: PLC0415 - optional accelerator
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
