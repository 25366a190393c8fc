"""Shared fixtures: the simulator and the gateway on real loopback sockets, and official SDK clients."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Iterator

import openai
import pytest
import pytest_asyncio
from aiohttp import test_utils
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import TracerProvider

from modelyard_proxy.api.app import create_app
from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.table.store import TableStore
from modelyard_routing import compile_inventory
from modelyard_simulator import REQUEST_LOG, RequestLog
from modelyard_simulator import create_app as create_simulator
from tests.harness import DEMO_KEY, GatewayFactory, example_inventory, start_server
from tests.storeserver import StoreServer


@pytest.fixture(autouse=True)
def _event_loop_for_sync_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give each sync test a loop that is closed afterwards.

    looptime's ``pytest_pyfunc_call`` asks the event-loop policy for a loop even in sync tests; without one
    set, the policy creates a loop nobody closes, and its ResourceWarning (an error here) surfaces in
    whichever later test the garbage collector happens to run in.
    """
    if pytest_asyncio.is_async_test(request.node):
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Finished spans, kept in memory."""
    spans = InMemorySpanExporter()
    yield spans
    spans.shutdown()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[SDKTracerProvider]:
    """A tracer provider exporting every span to ``exporter`` as it ends."""
    tracer_provider = SDKTracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield tracer_provider
    tracer_provider.shutdown()


@pytest.fixture
async def simulator() -> AsyncIterator[test_utils.TestServer]:
    """The provider simulator on a real socket."""
    server = await start_server(create_simulator())
    yield server
    await server.close()


@pytest.fixture
def upstream_log(simulator: test_utils.TestServer) -> RequestLog:
    """What the simulated providers received."""
    return simulator.app[REQUEST_LOG]


@pytest.fixture
async def gateway_factory(simulator: test_utils.TestServer) -> AsyncIterator[GatewayFactory]:
    """Start gateways serving the examples (optionally with extra manifests) against the simulator (or the
    simulator at ``upstream_url``)."""
    servers: list[test_utils.TestServer] = []

    async def start(
        *extra_docs: dict[str, object],
        settings: ProxySettings | None = None,
        tracer_provider: TracerProvider | None = None,
        upstream_url: str | None = None,
    ) -> test_utils.TestServer:
        inventory = example_inventory(upstream_url or str(simulator.make_url("")).rstrip("/"))
        for doc in extra_docs:
            inventory.add_document(doc, "test")
        store = TableStore()
        store.apply(compile_inventory(inventory, generation=1).table)
        app = create_app(settings or ProxySettings(host="127.0.0.1", port=0), store, tracer_provider=tracer_provider)
        server = await start_server(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> test_utils.TestServer:
    """A gateway serving the examples."""
    return await gateway_factory()


@pytest.fixture
async def client(gateway: test_utils.TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official OpenAI SDK pointed at the gateway, with retries off so failures show as they are."""
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def _store_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    """One real redis-server for the session (fails, not skips, where redis-server is missing)."""
    server = StoreServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store_server(_store_server_process: StoreServer) -> StoreServer:
    """The session's redis-server, running (a test may have stopped it) and empty."""
    _store_server_process.start()
    _store_server_process.flush()
    return _store_server_process


@pytest.fixture
def password_store_server(tmp_path: pathlib.Path) -> Iterator[StoreServer]:
    """A redis-server of its own that requires a password."""
    server = StoreServer(tmp_path, password="s3cret-Pa55word-9f2c")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tls_store_server(tmp_path: pathlib.Path) -> Iterator[StoreServer]:
    """A redis-server of its own that speaks only TLS (a throwaway CA) and requires a password."""
    server = StoreServer(tmp_path, password="tls-Pa55word-4be1", tls=True)
    server.start()
    yield server
    server.stop()
