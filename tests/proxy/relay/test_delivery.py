"""Delivery past the commit point, over a real socket: the held frames first, then the rest or an in-band error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from unittest import mock

import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer, make_mocked_request

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import DONE_FRAME, SSEDecoder, SSEEvent, frame
from modelyard_proxy.observability.accounting import Usage
from modelyard_proxy.providers.base import StreamTranslator, UpstreamStreamError
from modelyard_proxy.providers.ingress.openai_chat import CHAT
from modelyard_proxy.relay.delivery import COST_HEADER, deliver
from modelyard_proxy.relay.outcomes import Prepared
from modelyard_proxy.relay.reporting import RunRecord
from modelyard_proxy.routing.deadlines import Deadlines
from modelyard_proxy.table.store import ResolvedTarget
from modelyard_proxy.upstream import UpstreamTruncated
from modelyard_routing import Policy
from modelyard_routing.table import ModelPrice
from tests.proxy.relay.routes import route

HELD = frame(b'{"n":0}')


class Echo(StreamTranslator):
    """Relays each upstream event as it came; the upstream's own ``[DONE]`` is its terminator."""

    def __init__(self) -> None:
        self.done = False

    def feed(self, event: SSEEvent) -> bytes:
        if event.data == b"[DONE]":
            self.done = True
            return b""
        return frame(event.data)

    def finish(self) -> bytes:
        if not self.done:
            raise UpstreamStreamError(502, "the upstream stream ended early", code="upstream_truncated")
        return DONE_FRAME


class Upstream:
    """An open upstream body: its reads in turn, then ``b""`` (its end), or the failure ``fail`` raises."""

    def __init__(self, *reads: bytes, fail: Exception | None = None) -> None:
        self.reads = list(reads)
        self.fail = fail
        self.closed = False

    async def readany(self) -> bytes:
        if self.reads:
            return self.reads.pop(0)
        if self.fail is not None:
            raise self.fail
        return b""

    def close(self) -> None:
        self.closed = True


def target(price: ModelPrice | None = None) -> ResolvedTarget:
    return route(Policy(), "a", price=price).targets.targets[0]


#: What the client read, its headers, the code delivery ended on (None: success), and the run's record.
Delivered = tuple[bytes, Mapping[str, str], str | None, RunRecord]
Serve = Callable[[Prepared], Awaitable[Delivered]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Deliver a prepared answer to a real HTTP client."""
    pending: list[Prepared] = []
    codes: list[str | None] = []
    record = RunRecord()

    async def handler(request: web.Request) -> web.StreamResponse:
        deadlines = Deadlines(1.0, 1.0, 1.0, None)
        response, code = await deliver(request, pending.pop(), deadlines, record, {"x-served": "a"}, CHAT)
        codes.append(code)
        return response

    app = web.Application()
    app.router.add_post("/", handler)
    server = TestServer(app)
    await server.start_server()

    async def run(prepared: Prepared) -> Delivered:
        pending.append(prepared)
        async with ClientSession() as session, session.post(server.make_url("/")) as response:
            assert response.headers["x-served"] == "a"
            body, headers = await response.read(), response.headers
        return body, headers, codes.pop(), record

    yield run
    await server.close()


def streaming(upstream: Upstream, translator: StreamTranslator) -> Prepared:
    return Prepared(target(), HELD, True, False, upstream, translator, SSEDecoder())  # type: ignore[arg-type]


async def test_a_stream_sends_its_held_frames_then_the_rest_and_closes_the_upstream(serve: Serve) -> None:
    upstream = Upstream(b'data: {"n":1}\n\n', b'data: {"n":2}\n\ndata: [DONE]\n\n')
    body, _, code, record = await serve(streaming(upstream, Echo()))
    assert body == HELD + frame(b'{"n":1}') + frame(b'{"n":2}') + DONE_FRAME
    assert code is None
    assert upstream.closed
    assert record.first_token_at is not None
    assert record.inter_token is not None


async def test_a_stream_cut_after_the_commit_point_ends_in_band_without_done(serve: Serve) -> None:
    upstream = Upstream(b'data: {"n":1}\n\n', fail=UpstreamTruncated())
    body, _, code, _ = await serve(streaming(upstream, Echo()))
    held, relayed, error = body.split(b"\n\n")[:3]
    assert [held, relayed] == [HELD.strip(), frame(b'{"n":1}').strip()]
    assert orjson.loads(error.removeprefix(b"data: "))["error"]["code"] == "upstream_truncated"
    assert DONE_FRAME not in body
    assert code == "upstream_truncated"
    assert upstream.closed


async def test_a_stream_that_ends_without_its_terminator_fails_in_band(serve: Serve) -> None:
    body, _, code, _ = await serve(streaming(Upstream(b'data: {"n":1}\n\n'), Echo()))
    assert body.startswith(HELD + frame(b'{"n":1}'))
    assert b'"code":"upstream_truncated"' in body
    assert DONE_FRAME not in body
    assert code == "upstream_truncated"


async def test_a_whole_answer_carries_its_cost_and_records_its_usage(serve: Serve) -> None:
    usage = Usage(input=1_000_000, output=500_000)
    prepared = Prepared(target(ModelPrice(input=2.0, output=8.0)), b'{"choices":[]}', usage=usage)
    body, headers, code, record = await serve(prepared)
    assert body == b'{"choices":[]}'
    assert headers["Content-Type"] == "application/json"
    assert float(headers[COST_HEADER]) == pytest.approx(6.0)
    assert code is None
    assert record.usage == usage
    assert record.cost == pytest.approx(6.0)


async def test_a_whole_answer_whose_client_left_is_a_disconnect_not_a_success() -> None:
    transport = mock.Mock()
    transport.is_closing.return_value = True
    request = make_mocked_request("POST", "/v1/chat/completions", transport=transport)
    record = RunRecord()
    with pytest.raises(GatewayError) as raised:
        await deliver(request, Prepared(target(), b"{}"), Deadlines(1.0, 1.0, 1.0, None), record, {}, CHAT)
    assert (raised.value.status, raised.value.code) == (499, "client_disconnected")
