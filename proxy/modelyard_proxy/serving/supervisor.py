"""``modelyard serve --workers N`` with N > 1: a supervisor process over N workers sharing the public port.

A Python process serves from one core, so a pod runs one worker per CPU of its limit. The supervisor serves
no client traffic: it starts the workers (``workerpool``), owns the admin port (``fanout``) and, on SIGTERM
or SIGINT, closes the admin port, passes SIGTERM on and waits for the workers to finish their in-flight
requests. Each worker follows the manifest folder or the table file itself, so they converge without it; a
restarted worker is handed the last table pushed (and the siblings' generation) before it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.serving import server
from modelyard_proxy.serving.fanout import create_fanout_app, replay_table, served_wire
from modelyard_proxy.serving.workerpool import WorkerPool, WorkerStartError
from modelyard_proxy.table.standalone import watch_source
from modelyard_proxy.table.store import TableStore
from modelyard_proxy.table.tablefile import TableFile
from modelyard_routing.push import AdminToken

log = logging.getLogger(__name__)

#: Beyond the workers' own shutdown timeout, how long to wait for them to exit before killing them.
EXIT_MARGIN = 3.0


def run_supervisor(
    settings: ProxySettings,
    command: Sequence[str],
    *,
    token: AdminToken | None,
    table: Path | None,
    reload_interval: float,
) -> int:
    """Run ``settings.workers`` copies of ``command`` (``modelyard serve …`` for one worker) until a signal;
    the exit code. ``token`` guards the admin port (None: no admin port); with a ``table`` file (operator
    mode) the admin port takes pushes, checked against a store that follows the same file."""
    directory = Path(tempfile.mkdtemp(prefix="modelyard-workers-"))  # mode 0700: only this user reaches the sockets
    try:
        pool = WorkerPool(settings.workers, command, directory)
        source = TableFile(table, TableStore(settings.api_keys)) if table is not None else None
        if source is not None:
            source.reload()
            pool.table_to_hand = served_wire(source.store)
            pool.on_restart = replay_table(pool, source.store)
        admin: web.Application | None = None
        if token is not None and settings.admin_port is not None:
            admin = create_fanout_app(pool, token, source.store if source else None)
            if source is not None:
                admin.cleanup_ctx.append(watch_source(source, reload_interval))
        code = 0

        async def main() -> None:
            nonlocal code
            code = await _supervise(pool, admin, settings)

        server.run_event_loop(main())
        return code
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def _supervise(pool: WorkerPool, admin: web.Application | None, settings: ProxySettings) -> int:
    stop = server.stop_on_signals()
    try:
        if not await _unless_stopped(stop, pool.start(stop)):
            return 0
        log.info("%d workers serving on http://%s:%d", len(pool.workers), settings.host, settings.port)
        if admin is None or settings.admin_port is None:
            await stop.wait()
        else:
            await server.serve_until_stopped(
                admin,
                settings.host,
                settings.admin_port,
                access_log=False,
                shutdown_timeout=settings.shutdown_timeout,
                stop=stop,
            )
    except WorkerStartError as exc:
        log.error("%s", exc)  # the worker logged its own traceback
        return 1
    finally:
        await pool.stop(settings.shutdown_timeout + EXIT_MARGIN)
    return 0


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> bool:
    """Run ``work`` unless ``stop`` is set first (then cancel it); whether it completed."""
    task = asyncio.create_task(work)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False
