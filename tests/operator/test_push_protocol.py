"""The push protocol: what a proxy's admin port accepts, what it refuses, and what it never reveals.

Plus the operator's side of it: backoff on failures, renumbering past a proxy that serves a newer table,
and a refusal surfacing as Programmed=False with reason Refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import test_utils, web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from modelyard_operator import tables
from modelyard_operator.discovery import ProxyEndpoint
from modelyard_operator.kube import KubeClient
from modelyard_operator.publisher import Publisher
from modelyard_operator.settings import OperatorSettings
from modelyard_operator.status import programmed
from modelyard_proxy.api.admin import create_admin_app
from modelyard_proxy.table.store import TableStore
from modelyard_routing import RoutingTable, compile_inventory
from modelyard_routing.push import ADMIN_TABLE_PATH, AdminToken
from tests.harness import example_inventory, start_server

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPSTREAM = "http://127.0.0.1:9"


def table(generation: int, *, drop_route: bool = False) -> RoutingTable:
    """The standalone examples compiled at ``generation`` (optionally with one route less: other content)."""
    inventory = example_inventory(UPSTREAM)
    if drop_route:
        inventory.routes.pop()
    return compile_inventory(inventory, generation).table


def wire(t: RoutingTable, **changes: Any) -> bytes:
    raw = orjson.loads(t.to_wire())
    raw.update(changes)
    return orjson.dumps(raw)


@pytest.fixture
def store() -> TableStore:
    return TableStore()


@pytest.fixture
async def admin(store: TableStore) -> AsyncIterator[test_utils.TestClient[web.Request, web.Application]]:
    async with test_utils.TestClient(test_utils.TestServer(create_admin_app(store, AdminToken(value=TOKEN)))) as c:
        yield c


Client = test_utils.TestClient[web.Request, web.Application]


async def put(client: Client, body: bytes) -> tuple[int, dict[str, Any]]:
    async with client.put(ADMIN_TABLE_PATH, data=body, headers=AUTH) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}],
    ids=["none", "wrong", "basic-scheme", "no-scheme"],
)
@pytest.mark.parametrize(("method", "path"), [("GET", ADMIN_TABLE_PATH), ("PUT", ADMIN_TABLE_PATH), ("GET", "/nope")])
async def test_every_request_without_the_token_is_401(
    admin: Client, headers: dict[str, str], method: str, path: str
) -> None:
    async with admin.request(method, path, headers=headers, data=table(1).to_wire()) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_unset_token_refuses_everyone(store: TableStore) -> None:
    app = create_admin_app(store, AdminToken(Path("/nonexistent/token")))
    async with (
        test_utils.TestClient(test_utils.TestServer(app)) as client,
        client.get(ADMIN_TABLE_PATH, headers={"Authorization": "Bearer "}) as resp,
    ):
        assert resp.status == 401


async def test_a_push_loads_and_answers_with_the_hash_and_get_reveals_no_secret(
    admin: Client, store: TableStore
) -> None:
    pushed = table(1)
    status, body = await put(admin, pushed.to_wire())
    assert (status, body["generation"], body["sha256"]) == (200, 1, pushed.sha256)
    assert store.current is not None
    assert store.current.table == pushed
    async with admin.get(ADMIN_TABLE_PATH, headers=AUTH) as resp:
        text = await resp.text()
    assert orjson.loads(text) == {"generation": 1, "sha256": pushed.sha256, "schema_version": 1}
    assert "sk-sim" not in text


async def test_the_same_table_again_is_idempotent(admin: Client, store: TableStore) -> None:
    await put(admin, table(3).to_wire())
    served = store.current
    status, body = await put(admin, table(3).to_wire())
    assert (status, body["generation"]) == (200, 3)
    assert store.current is served


@pytest.mark.parametrize(
    ("offered", "reason"),
    [
        (lambda: table(4), "StaleGeneration"),
        (lambda: table(5, drop_route=True), "GenerationConflict"),
        (lambda: wire(table(6), schema_version=99), "UnsupportedSchemaVersion"),
    ],
    ids=["older-generation", "same-generation-other-content", "unknown-schema"],
)
async def test_conflicting_tables_are_409_and_the_served_one_stays(
    admin: Client, store: TableStore, offered: Callable[[], RoutingTable | bytes], reason: str
) -> None:
    await put(admin, table(5).to_wire())
    candidate = offered()
    status, body = await put(admin, candidate if isinstance(candidate, bytes) else candidate.to_wire())
    assert status == 409
    assert body["reason"] == reason
    assert (body["generation"], body["sha256"]) == (5, table(5).sha256)
    assert store.generation == 5


def _contradiction() -> bytes:
    broken = table(7)
    broken = broken.model_copy(update={"credentials": broken.credentials[1:]}).sealed(7)
    return broken.to_wire()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        wire(table(7), sha256="0" * 64),
        wire(table(7), routes="nope"),
        _contradiction(),
    ],
    ids=["not-json", "not-an-object", "hash-mismatch", "schema-violation", "route-without-its-credential"],
)
async def test_invalid_tables_are_422_and_the_served_one_stays(admin: Client, store: TableStore, body: bytes) -> None:
    await put(admin, table(5).to_wire())
    status, answer = await put(admin, body)
    assert status == 422
    assert answer["reason"] == "InvalidTable"
    assert store.generation == 5
    assert "sk-sim" not in answer["message"]


async def test_a_newer_table_replaces_the_served_one(admin: Client, store: TableStore) -> None:
    await put(admin, table(5).to_wire())
    status, body = await put(admin, table(6, drop_route=True).to_wire())
    assert (status, body["generation"]) == (200, 6)
    assert store.generation == 6


def test_the_token_is_reread_when_its_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    token = AdminToken(path)
    assert token.value() == "first"
    path.write_text("second-and-longer\n")
    assert token.value() == "second-and-longer"
    path.unlink()
    assert token.value() == ""


# --- the operator's side ----------------------------------------------------------------------------------


def _settings() -> OperatorSettings:
    return OperatorSettings(retry_initial=0.5, retry_max=2.0, push_timeout=2.0)


@pytest.fixture
async def publisher() -> AsyncIterator[Publisher]:
    published = Publisher(_settings(), KubeClient(), AdminToken(value=TOKEN))
    yield published
    await published.close()


async def _proxy(store: TableStore) -> tuple[test_utils.TestServer, ProxyEndpoint]:
    server = await start_server(create_admin_app(store, AdminToken(value=TOKEN)))
    return server, ProxyEndpoint(f"proxy-{server.port}", str(server.make_url("")).rstrip("/"))


async def test_a_push_reaches_every_proxy_and_the_rollout_says_so(publisher: Publisher) -> None:
    stores = [TableStore(), TableStore()]
    proxies = [await _proxy(store) for store in stores]
    try:
        current = table(1)
        await publisher.sync(current, [endpoint for _, endpoint in proxies], query=True)
        assert [store.generation for store in stores] == [1, 1]
        rollout = publisher.rollout(current)
        assert rollout.serving(1) == list(rollout.ready)
        assert publisher.next_retry(current) is None
    finally:
        for server, _ in proxies:
            await server.close()


@pytest.mark.looptime
async def test_failed_pushes_back_off_doubling_up_to_the_limit(publisher: Publisher) -> None:
    unreachable = ProxyEndpoint("gone", "http://127.0.0.1:9")
    current = table(1)
    delays = []
    for _ in range(5):
        retry_at = publisher.next_retry(current) or 0.0
        now = asyncio.get_running_loop().time()
        if retry_at > now:
            await asyncio.sleep(retry_at - now)
        start = asyncio.get_running_loop().time()
        await publisher.sync(current, [unreachable], query=False)
        delays.append(round((publisher.next_retry(current) or 0.0) - start, 1))
    assert delays == [0.5, 1.0, 2.0, 2.0, 2.0]
    rollout = publisher.rollout(current)
    assert rollout.problems["gone"].startswith("unreachable: ClientConnectorError")
    assert rollout.unreachable == {"gone"}
    assert not rollout.refused


async def test_a_proxy_that_stops_answering_no_longer_counts_at_the_next_query(publisher: Publisher) -> None:
    store = TableStore()
    server, endpoint = await _proxy(store)
    current = table(1)
    await publisher.sync(current, [endpoint], query=True)
    assert publisher.rollout(current).serving(1) == [endpoint.name]
    port = server.port
    await server.close()

    await publisher.sync(current, [endpoint], query=True)
    rollout = publisher.rollout(current)
    assert rollout.serving(1) == []
    assert rollout.replicas(1) == "0/1"
    assert rollout.unreachable == {endpoint.name}
    condition = programmed(1, accepted=True, since=1, retained=False, rollout=rollout)
    assert (condition.status, condition.reason) == ("False", "Unreachable")
    assert f"{endpoint.name}: unreachable: ClientConnectorError" in condition.message

    # The same pod answers again (same address), still serving the table: it counts, and nothing is amiss.
    app = create_admin_app(store, AdminToken(value=TOKEN))
    back = test_utils.TestServer(app, host="127.0.0.1", port=port)
    await back.start_server()
    try:
        await publisher.sync(current, [endpoint], query=True)
    finally:
        await back.close()
    rollout = publisher.rollout(current)
    assert (rollout.serving(1), rollout.unreachable, rollout.problems) == ([endpoint.name], frozenset(), {})


async def test_a_proxy_serving_a_newer_generation_makes_the_operator_number_past_it(publisher: Publisher) -> None:
    store = TableStore()
    store.apply(table(5, drop_route=True))  # what a previous operator (with a lost Secret) published
    server, endpoint = await _proxy(store)
    try:
        restarted = tables.next_table(example_inventory(UPSTREAM), None, {}, 0)
        assert restarted.table.generation == 1
        await publisher.sync(restarted.table, [endpoint], query=False)
        assert publisher.outnumbered(restarted.table)
        assert publisher.rollout(restarted.table).refused == frozenset()

        renumbered = tables.next_table(
            example_inventory(UPSTREAM), restarted.table, restarted.since, publisher.highest_other(restarted.table)
        )
        assert renumbered.table.generation == 6
        assert renumbered.table.sha256 == restarted.table.sha256
        await publisher.sync(renumbered.table, [endpoint], query=False)
        assert store.generation == 6
        assert not publisher.outnumbered(renumbered.table)
    finally:
        await server.close()


async def test_a_refusal_shows_as_programmed_false_refused(publisher: Publisher) -> None:
    store = TableStore()
    server, endpoint = await _proxy(store)
    try:
        current = tables.next_table(example_inventory(UPSTREAM), None, {}, 0).table
        incompatible = current.model_copy(update={"schema_version": 99})
        await publisher.sync(incompatible, [endpoint], query=False)
        rollout = publisher.rollout(incompatible)
        assert rollout.refused == {endpoint.name}
        condition = programmed(1, accepted=True, since=1, retained=False, rollout=rollout)
        assert (condition.status, condition.reason) == ("False", "Refused")
        assert "UnsupportedSchemaVersion" in condition.message
        assert store.current is None
    finally:
        await server.close()


async def test_pushes_are_traced_per_proxy_with_their_outcome() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = Publisher(_settings(), KubeClient(), AdminToken(value=TOKEN), provider.get_tracer("test"))
    server, endpoint = await _proxy(TableStore())
    try:
        await traced.sync(table(1), [endpoint, ProxyEndpoint("gone", "http://127.0.0.1:9")], query=False)
    finally:
        await server.close()
        await traced.close()
        provider.shutdown()
    spans = {span.attributes["modelyard.proxy"]: span for span in exporter.get_finished_spans() if span.attributes}
    assert spans.keys() == {endpoint.name, "gone"}
    ok, failed = spans[endpoint.name], spans["gone"]
    assert ok.name == failed.name == "push routing-table"
    assert ok.attributes is not None
    assert ok.attributes["modelyard.table.generation"] == 1
    assert "error.type" not in ok.attributes
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "failed"
    assert failed.status.status_code is StatusCode.ERROR
