"""Writing bodies and SSE streams with the scripted pacing and failures.

Dialects only build the list of events; this module owns timing (TTFT, inter-token
interval), corruption (``malformed``), abrupt cuts and mid-stream errors, so every
provider fails the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from aiohttp import web

from modelyard_simulator.behaviour import Behaviour


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One SSE event. ``content`` events carry tokens: they are paced, counted and cut."""

    data: bytes
    event: str | None = None
    content: bool = False

    def encode(self, newline: bytes) -> bytes:
        head = b"event: " + self.event.encode() + newline if self.event else b""
        return head + b"data: " + self.data + newline + newline


FailureEvent = Callable[[int], SseEvent]
"""Builds the in-band error for a failure that takes the place of the stream's event at this index."""


def same_everywhere(event: SseEvent) -> FailureEvent:
    """A failure event that does not depend on where the stream fails."""
    return lambda _position: event


#: Valid JSON that is no provider's answer: what a health endpoint or a misrouted proxy answers with 200.
SHAPELESS_BODY = b'{"status":"ok"}'


def corrupt(data: bytes) -> bytes:
    """A proper prefix of a JSON object is never valid JSON."""
    return data[: max(len(data) // 2, 1)]


async def sleep_ms(milliseconds: int) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000)


def cut_connection(request: web.Request) -> None:
    """Close the socket after flushing what was written, without the chunked terminator.

    Clients then see a truncated payload error rather than a clean end of stream. aiohttp's
    final ``write_eof`` hits the closing transport and is swallowed as a disconnect.
    """
    transport = request.transport
    if transport is not None:
        transport.close()


async def send_body(
    request: web.Request,
    behaviour: Behaviour,
    body: bytes,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.StreamResponse:
    """Send a complete body; ``malformed`` corrupts it, ``shapeless`` swaps a success for foreign JSON,
    ``cut_after_chunks`` truncates it mid-way."""
    if behaviour.shapeless and status < 300:
        body = SHAPELESS_BODY
    if behaviour.malformed:
        body = corrupt(body)
    if behaviour.cut_after_chunks is None:
        return web.Response(body=body, status=status, headers=headers, content_type=content_type)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = content_type
    response.content_length = len(body)
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):  # the client may already be gone
        await response.write(body[: len(body) // 2])
        cut_connection(request)
    return response


async def send_stream(
    request: web.Request,
    behaviour: Behaviour,
    events: Sequence[SseEvent],
    *,
    headers: Mapping[str, str],
    failure_event: FailureEvent,
    newline: bytes = b"\n",
    content_type: str = "text/event-stream",
) -> web.StreamResponse:
    """Stream ``events`` as SSE (or frames of another kind of ``content_type``) with the scripted pacing and failure.

    A failure (``cut_after_chunks`` or ``mid_stream_error``) fires before the (N+1)-th
    content event, or right after the last one if the answer is shorter, so it always
    happens before the dialect's terminator. A mid-stream error is sent as the
    ``failure_event`` built for that position (dialects that number their events need it)
    and the stream then ends cleanly; a cut closes the socket.
    """
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = content_type
    response.headers["Cache-Control"] = "no-cache"
    await response.prepare(request)

    writer = _EventWriter(request, response, behaviour, failure_event, newline)
    with contextlib.suppress(ConnectionError):  # the client went away; nothing left to simulate
        await writer.run(events)
    return response


@dataclass(frozen=True, slots=True)
class _EventWriter:
    request: web.Request
    response: web.StreamResponse
    behaviour: Behaviour
    failure_event: FailureEvent
    newline: bytes

    async def run(self, events: Sequence[SseEvent]) -> None:
        if self.behaviour.drop_last_events:
            events = events[: max(len(events) - self.behaviour.drop_last_events, 0)]
        stop_at = self._failure_position(events)
        sent_content = 0
        corrupted = False
        for position, event in enumerate(events):
            if position == stop_at:
                await self._fail(position)
                return
            outgoing = event
            if event.content:
                await sleep_ms(self.behaviour.ttft_ms if sent_content == 0 else self.behaviour.token_interval_ms)
                sent_content += 1
                if self.behaviour.malformed and not corrupted:
                    outgoing, corrupted = replace(event, data=corrupt(event.data)), True
            await self.response.write(outgoing.encode(self.newline))
        if stop_at == len(events):
            await self._fail(stop_at)
        else:
            await self.response.write_eof()

    def _failure_position(self, events: Sequence[SseEvent]) -> int | None:
        """Index of the event the failure replaces, or None when the stream completes."""
        behaviour = self.behaviour
        if behaviour.cut_after_chunks is None and not behaviour.mid_stream_error:
            return None
        after = behaviour.cut_after_chunks if behaviour.cut_after_chunks is not None else 1
        content = [i for i, event in enumerate(events) if event.content]
        if after < len(content):
            return content[after]
        return content[-1] + 1 if content else len(events)

    async def _fail(self, position: int) -> None:
        if self.behaviour.mid_stream_error:
            await self.response.write(self.failure_event(position).encode(self.newline))
            await self.response.write_eof()
        else:
            cut_connection(self.request)
