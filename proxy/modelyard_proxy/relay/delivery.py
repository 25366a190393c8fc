"""Delivering an answer past its commit point: a whole body, or a stream relayed frame by frame.

After the commit point nothing is retried. A stream that fails ends with the client protocol's in-band error
event (OpenAI's ``data: {"error": …}`` with no ``[DONE]``, Anthropic's ``event: error``), so the client never
sees a clean-looking truncated answer; a client that leaves is a disconnect, never a success. Either way the
answer's usage and cost are recorded, and its attempt ends.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from modelyard_proxy.observability.accounting import Usage, cost_usd, usage_from
from modelyard_proxy.providers.base import StreamTranslator, UpstreamStreamError
from modelyard_proxy.providers.ingress.protocol import IngressProtocol
from modelyard_proxy.relay.conversation import Turn
from modelyard_proxy.relay.outcomes import (
    CLIENT_DISCONNECTED,
    UNREADABLE,
    ClientGone,
    Prepared,
    client_disconnected,
    fail_in_band,
    send,
    transport_error,
    unreadable,
)
from modelyard_proxy.relay.reporting import RunRecord
from modelyard_proxy.routing.deadlines import Deadlines
from modelyard_proxy.table.store import ResolvedTarget
from modelyard_proxy.upstream import TRANSPORT_ERRORS

STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: What a whole answer cost, in USD (streams report it in the audit log and metrics only: headers go first).
COST_HEADER = "x-modelyard-cost-usd"


async def deliver(  # noqa: PLR0917
    request: web.Request,
    prepared: Prepared,
    deadlines: Deadlines,
    record: RunRecord,
    headers: dict[str, str],
    protocol: IngressProtocol,
    turn: Turn | None = None,
) -> tuple[web.StreamResponse, str | None]:
    """Send ``prepared`` to the client with ``headers``; the response and the code it ended on (None: success).

    A ``turn``'s answer is kept before the client sees it end, so the client's next turn finds it.
    """
    if not prepared.stream:
        if turn is not None:
            await turn.keep_body(prepared.body)
        account(record, prepared.resolved, prepared.usage)
        if record.cost is not None:
            headers[COST_HEADER] = f"{record.cost:.8f}"
        gone = request.transport is None or request.transport.is_closing()
        _end_attempt(record, prepared, CLIENT_DISCONNECTED if gone else None)
        prepared.close()
        if gone:  # it left while the answer was on its way (and so was billed)
            raise client_disconnected()
        return web.Response(body=prepared.body, content_type="application/json", headers=headers), None
    client = web.StreamResponse(status=200, headers={**STREAM_HEADERS, **headers})
    code = None
    try:
        await client.prepare(request)
        record.first_token_at = time.monotonic()
        await _keep(turn, prepared.translator)
        await send(client, prepared.body)
        if not prepared.finished:
            code = await _relay_rest(client, prepared, deadlines, record, protocol, turn)
        await client.write_eof()
    except (ClientGone, ConnectionError):
        code = CLIENT_DISCONNECTED
        raise client_disconnected() from None
    except asyncio.CancelledError:
        code = CLIENT_DISCONNECTED
        raise
    finally:
        translator = prepared.translator
        account(record, prepared.resolved, usage_from(translator.usage) if translator is not None else None)
        _end_attempt(record, prepared, code)
        prepared.close()
    return client, code


def account(record: RunRecord, served: ResolvedTarget, usage: Usage | None) -> None:
    """The answer's usage and what it cost (None when the upstream reported no usage or has no price)."""
    record.usage = usage
    if usage is None:
        return
    record.cost = None if served.price is None else cost_usd(usage, served.price)


def _end_attempt(record: RunRecord, prepared: Prepared, code: str | None) -> None:
    if prepared.attempt is None:
        return
    attributes: dict[str, str | int] = {"gen_ai.response.model": prepared.resolved.target.model}
    if record.usage is not None:
        attributes["gen_ai.usage.input_tokens"] = record.usage.input
        attributes["gen_ai.usage.output_tokens"] = record.usage.output
    if code is not None:
        attributes["error.type"] = code
    prepared.attempt.finish(attributes, error=code is not None)


async def _keep(turn: Turn | None, translator: StreamTranslator | None) -> None:
    """Keep a stream's answer in its conversation once its closing frames are translated."""
    if turn is not None and translator is not None and translator.answer is not None:
        await turn.keep(translator.answer)


async def _relay_rest(  # noqa: PLR0917
    client: web.StreamResponse,
    prepared: Prepared,
    deadlines: Deadlines,
    record: RunRecord,
    protocol: IngressProtocol,
    turn: Turn | None,
) -> str | None:
    """Relay the stream after its commit point; a failure ends it in-band (its code is returned)."""
    upstream = prepared.upstream
    assert upstream is not None
    assert prepared.translator is not None
    assert prepared.decoder is not None
    translator, decoder = prepared.translator, prepared.decoder
    first = record.first_token_at
    frames, last = 0, first
    try:
        async with asyncio.timeout_at(deadlines.total_at):
            while chunk := await upstream.readany():
                out = translator.translate(decoder, chunk)
                if out:
                    await _keep(turn, translator)
                    await send(client, out)
                    frames += 1
                    last = time.monotonic()
            closing = translator.close(decoder)
            await _keep(turn, translator)
        if frames and last is not None and first is not None:
            # Per stream, not per chunk: the mean gap between writes after the first content frame.
            record.inter_token = (last - first) / frames
    except TRANSPORT_ERRORS as exc:
        return await fail_in_band(client, transport_error(prepared.resolved, exc), protocol)
    except UpstreamStreamError as exc:
        return await fail_in_band(client, exc, protocol)
    except UNREADABLE as exc:
        return await fail_in_band(client, unreadable(prepared.resolved, exc), protocol)
    await send(client, closing)
    return None
