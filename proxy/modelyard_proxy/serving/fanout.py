"""The supervisor's admin app: one admin port answering for every worker of the pod.

The operator takes a push's answer as "this pod serves the table", so a push is checked against the
supervisor's own store first (the same refusals a single process gives), then the same bytes go to every
worker, and the answer is 200 only once each of them loaded it. The table state is the least advanced
worker's, so a worker that missed a push shows as lagging and is pushed again. ``/metrics`` scrapes each
worker and merges the expositions (see ``exposition``), plus the workers' own health.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from modelyard_proxy.api.admin import METRICS_PATH, guarded_app, load_pushed, usage_days
from modelyard_proxy.keys import STORE
from modelyard_proxy.observability.exposition import ExpositionMerger, Scrape
from modelyard_proxy.observability.metrics import CONTENT_TYPE
from modelyard_proxy.serving.workerpool import Worker, WorkerPool
from modelyard_proxy.table.store import TableStore
from modelyard_routing.push import ADMIN_TABLE_PATH, REFUSAL_STATUS, AdminToken, TableState
from modelyard_routing.usage import ADMIN_USAGE_PATH, UsageReport, merge_reports

log = logging.getLogger(__name__)

POOL = web.AppKey("pool", WorkerPool)
MERGER = web.AppKey("merger", ExpositionMerger)
REFUSALS = frozenset(REFUSAL_STATUS.values())
#: Seconds a worker has to answer a query or a scrape, and a push.
QUERY_TIMEOUT, PUSH_TIMEOUT = 5.0, 30.0

Answer = tuple[int, bytes]


def create_fanout_app(pool: WorkerPool, token: AdminToken, store: TableStore | None) -> web.Application:
    """The admin app of a supervisor over ``pool``; it takes pushes (validated by ``store``) unless ``store``
    is None (standalone mode, where the manifest folder is the only source of tables)."""
    app = guarded_app(token)
    app[POOL] = pool
    app[MERGER] = ExpositionMerger()
    app.router.add_get(ADMIN_TABLE_PATH, get_table)
    if store is not None:
        app[STORE] = store
        app.router.add_put(ADMIN_TABLE_PATH, put_table)
    app.router.add_get(METRICS_PATH, get_metrics)
    app.router.add_get(ADMIN_USAGE_PATH, get_usage)
    return app


def served_wire(store: TableStore) -> Callable[[], bytes | None]:
    """``store``'s table as sent to a worker (None before any): what a restarted worker is handed as it starts."""

    def wire() -> bytes | None:
        return store.current.table.to_wire() if store.current is not None else None

    return wire


def replay_table(pool: WorkerPool, store: TableStore) -> Callable[[Worker], Awaitable[None]]:
    """A restart hook pushing ``store``'s table to a restarted worker once it answers: a push that arrived while
    it started reached the supervisor but not the worker."""
    table = served_wire(store)

    async def replay(worker: Worker) -> None:
        wire = table()
        if wire is None:
            return
        status, _ = await pool.request(worker, "PUT", ADMIN_TABLE_PATH, wire, within=PUSH_TIMEOUT)
        log.info("worker %d offered generation %d again: HTTP %d", worker.index, store.generation, status)

    return replay


async def _ask(pool: WorkerPool, worker: Worker, method: str, path: str, body: bytes | None) -> Answer | str:
    """The worker's answer, or what went wrong reaching it."""
    try:
        # A scrape or a query must not outlast its caller's timeout; a push may take a large table's compile.
        return await pool.request(worker, method, path, body, within=QUERY_TIMEOUT if body is None else PUSH_TIMEOUT)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"worker {worker.index} did not answer: {exc!r}"


async def _ask_all(request: web.Request, method: str, path: str, body: bytes | None = None) -> list[Answer | str]:
    pool = request.app[POOL]
    return list(await asyncio.gather(*(_ask(pool, w, method, path, body) for w in pool.workers)))


def _unavailable(message: str) -> web.Response:
    return web.json_response({"message": message}, status=502)


async def get_table(request: web.Request) -> web.Response:
    """What every worker serves: the least advanced worker's generation and hash (502 if one does not answer)."""
    states: list[TableState] = []
    for index, answer in enumerate(await _ask_all(request, "GET", ADMIN_TABLE_PATH)):
        if isinstance(answer, str):
            return _unavailable(answer)
        status, body = answer
        try:
            if status != 200:
                raise ValueError(f"HTTP {status}")
            states.append(TableState.model_validate_json(body))
        except (ValueError, ValidationError) as exc:
            return _unavailable(f"worker {index} answered {exc}")
    least = min(states, key=lambda s: -1 if s.generation is None else s.generation)
    return web.json_response(least.model_dump())


async def put_table(request: web.Request) -> web.Response:
    """Refuse what the supervisor's store refuses; else forward to every worker and answer for all of them.

    A worker's refusal (it serves something newer, say) is passed on as it is; a worker that cannot be
    reached makes a 502, which the operator retries.
    """
    body = await request.read()
    checked = load_pushed(request.app[STORE], body)
    if checked.status != 200:
        return checked
    answers = await _ask_all(request, "PUT", ADMIN_TABLE_PATH, body)
    refusals = [a for a in answers if not isinstance(a, str) and a[0] in REFUSALS]
    if refusals:
        status, refusal = max(refusals, key=lambda a: a[0])
        return web.Response(body=refusal, status=status, content_type="application/json")
    problems = [
        a if isinstance(a, str) else f"worker {i} answered HTTP {a[0]}: {a[1][:200]!r}"
        for i, a in enumerate(answers)
        if isinstance(a, str) or a[0] != 200
    ]
    if problems:
        message = f"the table reached {len(answers) - len(problems)} of {len(answers)} workers: {'; '.join(problems)}"
        log.warning("pushed routing table not loaded everywhere: %s", message)
        return _unavailable(message)
    return checked


async def get_usage(request: web.Request) -> web.Response:
    """Every worker's usage report as one: the shared store's, or the sum of the workers' own counts."""
    path = f"{ADMIN_USAGE_PATH}?days={usage_days(request)}"
    reports = []
    for answer in await _ask_all(request, "GET", path):
        if isinstance(answer, str) or answer[0] != 200:
            return _unavailable(answer if isinstance(answer, str) else f"a worker answered HTTP {answer[0]}")
        reports.append(UsageReport.model_validate_json(answer[1]))
    return web.Response(body=merge_reports(reports).model_dump_json(), content_type="application/json")


async def get_metrics(request: web.Request) -> web.Response:
    """The workers' merged exposition, plus whether each answered and how often workers were restarted."""
    pool = request.app[POOL]
    incarnations = [w.incarnation for w in pool.workers]
    answers = await _ask_all(request, "GET", METRICS_PATH)
    scrapes = [
        Scrape(w.index, incarnation, a[1].decode() if not isinstance(a, str) and a[0] == 200 else None)
        for w, incarnation, a in zip(pool.workers, incarnations, answers, strict=True)
    ]
    for answer in answers:
        if isinstance(answer, str):
            log.warning("metrics scrape: %s", answer)
    lines = [
        request.app[MERGER].merge(scrapes).rstrip("\n"),
        "# HELP modelyard_worker_up 1 when the worker answered this scrape.",
        "# TYPE modelyard_worker_up gauge",
        *(f'modelyard_worker_up{{worker="{s.worker}"}} {int(s.text is not None)}' for s in scrapes),
        "# HELP modelyard_worker_restarts_total Worker processes restarted after exiting unexpectedly.",
        "# TYPE modelyard_worker_restarts_total counter",
        f"modelyard_worker_restarts_total {pool.restarts}",
    ]
    return web.Response(body=("\n".join(lines) + "\n").encode(), headers={"Content-Type": CONTENT_TYPE})
