"""The admin app: where the operator pushes routing tables and Prometheus scrapes ``/metrics``, on its own
port and behind a bearer token.

It is a separate app on a separate port so the public port never exposes table loading or metrics (which
name every route, target and the table hash) and a NetworkPolicy can admit only the operator and
Prometheus. Every request, ``/metrics`` included, needs the token: Prometheus sends it with
``authorization: {credentials: …}`` (the chart's ServiceMonitor does). In standalone mode the app serves
``/metrics`` and the table state but refuses pushes (405): the manifest folder is the only source there.
"""

from __future__ import annotations

import hmac
import logging

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from modelyard_proxy.keys import COUNTERS, HEALTH, METRICS, STORE
from modelyard_proxy.observability.metrics import CONTENT_TYPE, Metrics
from modelyard_proxy.observability.tenancy_gauges import tenancy_lines
from modelyard_proxy.routing.health import HealthRegistry
from modelyard_proxy.table.store import StaleTableError, TableStore
from modelyard_proxy.tenancy.counters import Counters
from modelyard_routing import IncompatibleTableError, InvalidTableError, RoutingTable
from modelyard_routing.conditions import describe_validation_error
from modelyard_routing.push import ADMIN_TABLE_PATH, REFUSAL_STATUS, AdminToken, PushRefused, Refusal, TableState
from modelyard_routing.table import SCHEMA_VERSION
from modelyard_routing.usage import ADMIN_USAGE_PATH, MAX_USAGE_DAYS

log = logging.getLogger(__name__)

TOKEN = web.AppKey("admin_token", AdminToken)
#: Tables carry every route and credential; far above aiohttp's 1 MiB default, and only the operator sends.
MAX_TABLE_BYTES = 64 * 1024 * 1024


METRICS_PATH = "/metrics"


def create_admin_app(
    store: TableStore,
    token: AdminToken,
    *,
    metrics: Metrics | None = None,
    health: HealthRegistry | None = None,
    accept_pushes: bool = True,
    counters: Counters | None = None,
) -> web.Application:
    """The admin app serving (and, unless ``accept_pushes`` is off, loading into) the public app's ``store``,
    and its ``metrics`` and breaker states."""
    app = guarded_app(token)
    app[STORE] = store
    app[METRICS] = metrics or Metrics()
    app[HEALTH] = health or HealthRegistry()
    app.router.add_get(ADMIN_TABLE_PATH, get_table)
    if accept_pushes:
        app.router.add_put(ADMIN_TABLE_PATH, put_table)
    app.router.add_get(METRICS_PATH, get_metrics)
    if counters is not None:
        app[COUNTERS] = counters
        app.router.add_get(ADMIN_USAGE_PATH, get_usage)
    return app


def guarded_app(token: AdminToken) -> web.Application:
    """An empty admin app behind ``token``, taking bodies as large as a table; the caller adds the routes."""
    app = web.Application(client_max_size=MAX_TABLE_BYTES, middlewares=[_require_token])
    app[TOKEN] = token
    return app


def usage_days(request: web.Request) -> int:
    """``?days=`` (default 7), bounded by what the store keeps; 400 for anything else."""
    raw = request.query.get("days", "7")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_USAGE_DAYS:
        raise web.HTTPBadRequest(text=f"days must be a whole number from 1 to {MAX_USAGE_DAYS}")
    return int(raw)


async def get_usage(request: web.Request) -> web.Response:
    """Spend and tokens of every consumer in the served table, by period and by model and day."""
    compiled = request.app[STORE].current
    consumers = compiled.table.consumers if compiled is not None else ()
    report = await request.app[COUNTERS].usage(consumers, usage_days(request))
    return web.Response(body=report.model_dump_json(), content_type="application/json")


async def get_metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition of the proxy's counters, histograms, breakers and table, and of the
    consumers' budgets and the counter store."""
    store = request.app[STORE]
    text = request.app[METRICS].render(request.app[HEALTH], store)
    if (counters := request.app.get(COUNTERS)) is not None:
        consumers = store.current.table.consumers if store.current is not None else ()
        if lines := await tenancy_lines(counters, consumers):
            text += "\n".join(lines) + "\n"
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


@web.middleware
async def _require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 unless ``Authorization: Bearer <token>`` matches; an unset token refuses everyone."""
    expected = request.app[TOKEN].value()
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), expected.encode()):
        return web.json_response(
            {"message": "a valid admin bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="modelyard-admin"'},
        )
    return await handler(request)


def _state(store: TableStore) -> TableState:
    table = store.current.table if store.current else None
    return TableState(
        generation=table.generation if table else None,
        sha256=table.sha256 if table else None,
        schema_version=SCHEMA_VERSION,
    )


async def get_table(request: web.Request) -> web.Response:
    """What this proxy serves: generation and hash only, never the table (it holds provider keys)."""
    return web.json_response(_state(request.app[STORE]).model_dump())


async def put_table(request: web.Request) -> web.Response:
    """Load a pushed table if it is newer and valid; otherwise refuse and keep the served one."""
    return load_pushed(request.app[STORE], await request.read())


def load_pushed(store: TableStore, body: bytes) -> web.Response:
    """Load the pushed table ``body`` into ``store`` if it is newer and valid: the answer the pusher gets,
    200 with what is now served or a refusal (409, 422) naming why the served table stays."""
    try:
        raw = orjson.loads(body)
        if not isinstance(raw, dict):
            return _refuse(store, Refusal.INVALID_TABLE, "the body is not a JSON object")
        table = RoutingTable.from_wire(raw)
    except IncompatibleTableError as exc:
        return _refuse(store, Refusal.UNSUPPORTED_SCHEMA, str(exc))
    except orjson.JSONDecodeError as exc:
        return _refuse(store, Refusal.INVALID_TABLE, f"the body is not JSON: {exc}")
    except ValidationError as exc:
        return _refuse(store, Refusal.INVALID_TABLE, describe_validation_error(exc, prefix="table"))
    except InvalidTableError as exc:
        return _refuse(store, Refusal.INVALID_TABLE, str(exc))
    try:
        store.apply_newer(table)
    except StaleTableError as exc:
        reason = Refusal.GENERATION_CONFLICT if exc.conflict else Refusal.STALE_GENERATION
        return _refuse(store, reason, str(exc))
    except InvalidTableError as exc:
        return _refuse(store, Refusal.INVALID_TABLE, str(exc))
    return web.json_response(_state(store).model_dump())


def _refuse(store: TableStore, reason: Refusal, message: str) -> web.Response:
    state = _state(store)
    log.warning("pushed routing table refused (%s), keeping generation %s: %s", reason, state.generation, message)
    body = PushRefused(reason=reason, message=message, generation=state.generation, sha256=state.sha256)
    return web.json_response(body.model_dump(mode="json"), status=REFUSAL_STATUS[reason])
