"""One worker of a multi-worker proxy: the public app on the shared port, its admin app on a private socket.

The supervisor starts it as ``modelyard serve … --worker-socket PATH`` with stdin on a pipe. The first line
on the pipe is the token guarding the socket (kept off the command line, which ``ps`` shows), then comes the
handoff (where the sibling workers are, so a restarted worker does not start over); the end of the pipe
means the supervisor is gone, crashed or killed, and the worker then stops as on SIGTERM, so no orphan keeps
the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path

from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.serving import server
from modelyard_proxy.table.standalone import Handoff, Reloadable
from modelyard_proxy.table.store import TableStore
from modelyard_routing.push import AdminToken

log = logging.getLogger(__name__)

SUPERVISOR_PIPE = 0  # stdin


def read_line(fd: int) -> str:
    """The first line on ``fd``, read without a buffer that could swallow what follows it."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def read_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes from ``fd`` (fewer only if it ends first)."""
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def stop_when_closed(fd: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once the writing end of the pipe ``fd`` is closed, i.e. its writer has exited."""
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            closed = not os.read(fd, 4096)
        except OSError:
            closed = True
        if closed:
            loop.remove_reader(fd)
            if not stop.is_set():
                log.warning("the supervisor is gone; stopping")
                stop.set()

    loop.add_reader(fd, readable)


def run_worker(
    settings: ProxySettings,
    source_for: Callable[[TableStore], Reloadable],
    reload_interval: float,
    socket: Path,
    *,
    accept_pushes: bool,
) -> None:
    """Serve until SIGTERM, SIGINT or the supervisor's exit: the public app with SO_REUSEPORT on the shared
    port, the admin app (pushes, ``/metrics``) on ``socket`` behind the token the supervisor sent."""
    token = AdminToken(value=read_line(SUPERVISOR_PIPE))
    handoff = Handoff.decode(read_line(SUPERVISOR_PIPE), functools.partial(read_exactly, SUPERVISOR_PIPE))

    def resumed(store: TableStore) -> Reloadable:
        source = source_for(store)
        source.resume(handoff)
        return source

    app = server.build_public_app(settings, resumed, reload_interval)
    admin = server.build_admin_app(app, token, accept_pushes=accept_pushes)

    async def main() -> None:
        stop = server.stop_on_signals()
        stop_when_closed(SUPERVISOR_PIPE, stop)
        await server.serve_until_stopped(
            app,
            settings.host,
            settings.port,
            access_log=settings.access_log,
            unix=[(admin, str(socket))],
            reuse_port=True,
            shutdown_timeout=settings.shutdown_timeout,
            stop=stop,
        )

    try:
        server.run_event_loop(main())
    finally:
        remove_socket(socket)


def remove_socket(socket: Path) -> None:
    """Remove the worker's socket, and the supervisor's socket folder once no worker's is left in it: a
    supervisor that was killed outright leaves nothing behind."""
    socket.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another worker's socket is still there, or the folder is gone
        socket.parent.rmdir()
