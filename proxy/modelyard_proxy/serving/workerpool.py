"""The worker processes of a multi-worker proxy, as the supervisor sees them: start, watch, restart, stop.

Each worker is ``modelyard serve`` run again with ``--worker-socket``: a fresh interpreter and event loop
(nothing inherited from the supervisor's) that binds the public port with SO_REUSEPORT, so the kernel
spreads connections over the workers, and serves its admin app on a unix socket in a private directory.
A worker that exits unexpectedly is restarted after a backoff that doubles while it keeps failing, and is
handed (on its stdin, before it serves) the generation its siblings serve and the table it should start from.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiohttp
from pydantic import ValidationError

from modelyard_proxy.table.standalone import Handoff
from modelyard_routing.push import ADMIN_TABLE_PATH, TableState

log = logging.getLogger(__name__)

#: First and largest pause before restarting a worker that exited (doubling in between).
RESTART_BACKOFF = (0.5, 30.0)
#: A worker that ran this long before exiting is restarted after the first pause again.
STABLE_AFTER = 60.0
READY_POLL = 0.05
#: Seconds a sibling has to tell a restarting worker's handoff what it serves.
SIBLING_TIMEOUT = 2.0


class WorkerStartError(RuntimeError):
    """A worker exited before it ever served: a setup problem restarts would only repeat."""


@dataclasses.dataclass(eq=False)
class Worker:
    """One worker slot: its admin socket, and the process currently filling it."""

    index: int
    socket: Path
    process: asyncio.subprocess.Process | None = None
    #: How many processes this slot has had; a new one starts its counters from zero.
    incarnation: int = 0
    started_at: float = 0.0


class WorkerPool:
    """``count`` workers running ``command`` (plus ``--worker-socket``), with admin sockets in ``directory``.

    ``table_to_hand`` gives the table a restarted worker starts from (operator mode: the last one pushed), and
    ``on_restart`` runs once it answers on its socket (the supervisor replays a push it may have missed).
    """

    def __init__(self, count: int, command: Sequence[str], directory: Path) -> None:
        self.workers = [Worker(index, directory / f"worker-{index}.sock") for index in range(count)]
        self.restarts = 0
        self.table_to_hand: Callable[[], bytes | None] = lambda: None
        self.on_restart: Callable[[Worker], Awaitable[None]] | None = None
        self._command = tuple(command)
        self._token = secrets.token_urlsafe(32)
        self._sessions: dict[int, aiohttp.ClientSession] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    async def start(self, stop: asyncio.Event) -> None:
        """Start every worker and wait until each answers on its socket; WorkerStartError if one exits first.

        Workers that exit once ``stop`` is set are not restarted: a Ctrl-C reaches the workers as soon as the
        supervisor, before it has stopped them itself.
        """
        self._stop = stop
        for worker in self.workers:
            connector = aiohttp.UnixConnector(path=str(worker.socket), force_close=True)
            self._sessions[worker.index] = aiohttp.ClientSession(connector=connector)
        await asyncio.gather(*(self._spawn(worker, Handoff()) for worker in self.workers))
        waits = [asyncio.create_task(self._wait_ready(worker)) for worker in self.workers]
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_EXCEPTION)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()
        self._watchers = [asyncio.create_task(self._watch(worker)) for worker in self.workers]

    async def request(
        self, worker: Worker, method: str, path: str, body: bytes | None = None, *, within: float
    ) -> tuple[int, bytes]:
        """One request to ``worker``'s admin app, answered ``within`` seconds: status and body. Raises
        aiohttp.ClientError or TimeoutError."""
        async with self._sessions[worker.index].request(
            method,
            "http://worker" + path,
            data=body,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=aiohttp.ClientTimeout(total=within),
        ) as resp:
            return resp.status, await resp.read()

    async def stop(self, grace: float) -> None:
        """SIGTERM every worker, give them ``grace`` seconds to finish in-flight requests, kill what is left."""
        self._stop.set()
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        processes = [w.process for w in self.workers if w.process is not None]
        log.info("stopping %d workers (up to %.0f s for their in-flight requests)", len(processes), grace)
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        if processes:
            await asyncio.wait([asyncio.create_task(p.wait()) for p in processes], timeout=grace)
        for process in processes:
            if process.returncode is None:
                log.warning("worker pid %d still busy after %.0f s; killing it", process.pid, grace)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await process.wait()
            if process.stdin is not None:
                process.stdin.close()
        for session in self._sessions.values():
            await session.close()

    async def _siblings_state(self, worker: Worker) -> TableState | None:
        """The table state of the most advanced other worker that answers, if any does."""
        states = []
        for sibling in self.workers:
            if sibling is worker:
                continue
            try:
                status, body = await self.request(sibling, "GET", ADMIN_TABLE_PATH, within=SIBLING_TIMEOUT)
                if status == 200:
                    states.append(TableState.model_validate_json(body))
            except (aiohttp.ClientError, TimeoutError, ValidationError) as exc:
                log.info("worker %d's table state is unknown (%r); not counted in the handoff", sibling.index, exc)
        served = [state for state in states if state.generation is not None]
        return max(served, key=lambda state: state.generation or 0, default=None)

    async def _spawn(self, worker: Worker, handoff: Handoff) -> None:
        # The last worker to exit removes the socket folder (so a killed supervisor leaves nothing behind):
        # make it again for the new one, and clear a dead predecessor's socket.
        worker.socket.parent.mkdir(mode=0o700, exist_ok=True)
        worker.socket.unlink(missing_ok=True)
        process = await asyncio.create_subprocess_exec(
            *self._command, "--worker-socket", str(worker.socket), stdin=asyncio.subprocess.PIPE
        )
        worker.process, worker.incarnation = process, worker.incarnation + 1
        worker.started_at = asyncio.get_running_loop().time()
        log.info("worker %d started (pid %d)", worker.index, process.pid)
        assert process.stdin is not None
        # The token and the handoff travel on the pipe, whose other end the worker watches to exit along with
        # the supervisor.
        process.stdin.write(self._token.encode() + b"\n" + handoff.encode())
        with contextlib.suppress(ConnectionError):  # it exited already: _wait_ready says so
            await process.stdin.drain()

    async def _wait_ready(self, worker: Worker) -> None:
        process = worker.process
        assert process is not None
        while True:
            if process.returncode is not None:
                msg = f"worker {worker.index} exited with code {process.returncode} before it was ready"
                raise WorkerStartError(msg)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await self.request(worker, "GET", ADMIN_TABLE_PATH, within=1.0)
                return
            await asyncio.sleep(READY_POLL)

    async def _watch(self, worker: Worker) -> None:
        """Restart ``worker`` whenever its process exits, until the pool stops."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            assert worker.process is not None
            code = await worker.process.wait()
            if worker.process.stdin is not None:
                worker.process.stdin.close()
            if self._stop.is_set():
                return
            failures = 1 if loop.time() - worker.started_at >= STABLE_AFTER else failures + 1
            delay = min(RESTART_BACKOFF[1], RESTART_BACKOFF[0] * 2 ** (failures - 1))
            log.warning(
                "worker %d (pid %d) exited with code %s; restarting it in %.1f s",
                worker.index,
                worker.process.pid,
                code,
                delay,
            )
            await asyncio.sleep(delay)
            if self._stop.is_set():
                return
            self.restarts += 1
            await self._spawn(worker, Handoff(await self._siblings_state(worker), self.table_to_hand()))
            try:
                await self._wait_ready(worker)
            except WorkerStartError as exc:
                log.warning("%s", exc)
                continue
            if self.on_restart is not None:
                try:
                    await self.on_restart(worker)
                except Exception:
                    log.exception("worker %d restarted, but bringing it up to date failed", worker.index)
