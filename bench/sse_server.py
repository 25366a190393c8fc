"""A paced SSE upstream (nginx cannot pace): OpenAI chunks on any path, Anthropic events on ``/v1/messages``.

Each content delta's text is ``t<CLOCK_MONOTONIC ns>`` stamped just before the write, so a client on the
same machine measures every chunk's transit (arrival minus stamp) exactly, through a proxy or direct;
the difference is the proxy's per-chunk cost, free of the upstream's own pacing jitter. ``max_tokens``
in the request body sets how many content deltas a stream has, and whether they are paced (short and
long unpaced streams separate a proxy's per-chunk processing from its per-stream CPU). Raw asyncio
protocol on uvloop: no framework in the way.

    python -m bench.sse_server --port 8003 --chunks 16 --first-ms 2 --interval-ms 3
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import time
from typing import cast

import uvloop

OPENAI_ROLE = (
    b'{"id":"chatcmpl-sse","object":"chat.completion.chunk","created":1700000000,"model":"bench-stream",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}'
)
OPENAI_DELTA = (
    b'{"id":"chatcmpl-sse","object":"chat.completion.chunk","created":1700000000,"model":"bench-stream",'
    b'"choices":[{"index":0,"delta":{"content":"t%d"},"logprobs":null,"finish_reason":null}]}'
)
OPENAI_END = (
    b'{"id":"chatcmpl-sse","object":"chat.completion.chunk","created":1700000000,"model":"bench-stream",'
    b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}'
)
ANTHROPIC_OPEN = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_sse","type":"message",'
    b'"role":"assistant","model":"claude-bench","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":27,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type":"ping"}\n\n'
)
ANTHROPIC_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"t%d"}}\n\n'
)
ANTHROPIC_CLOSE = (
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":17}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)
#: ``max_tokens`` in the request sets the number of content deltas (both dialects forward it verbatim);
#: ``UNPACED + n`` asks for ``n`` deltas written back to back, which isolates per-chunk processing cost.
MAX_TOKENS = re.compile(rb'"max_tokens"\s*:\s*(\d+)')
UNPACED = 100_000
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
)


def chunked(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse(data: bytes) -> bytes:
    """One ``data:`` event."""
    return b"data: " + data + b"\n\n"


class Pacing:
    """How a stream is paced: content deltas, the delay to the first, and the interval between the rest."""

    def __init__(self, chunks: int, first_ms: float, interval_ms: float) -> None:
        self.chunks = chunks
        self.first = first_ms / 1000
        self.interval = interval_ms / 1000


class StreamProtocol(asyncio.Protocol):
    """One client connection: parses requests (Content-Length bodies only) and streams one answer each."""

    def __init__(self, pacing: Pacing) -> None:
        self.pacing = pacing
        self.buffer = b""
        self.busy = False
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Future[None] | None = None  # held so the running stream is not garbage-collected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's transports do not subclass asyncio's
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next_request()

    def _next_request(self) -> None:
        if self.busy:
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        path = lines[0].split(" ")[1]
        close = headers.get("connection", "").lower() == "close"
        asked = MAX_TOKENS.search(body)
        chunks = int(asked.group(1)) if asked else self.pacing.chunks
        paced = chunks < UNPACED
        self.busy = True
        self.task = asyncio.ensure_future(
            self._stream(path.startswith("/v1/messages"), close, chunks if paced else chunks - UNPACED, paced=paced)
        )

    async def _stream(self, anthropic: bool, close: bool, chunks: int, *, paced: bool) -> None:
        transport = self.transport
        assert transport is not None
        pacing = self.pacing
        write = transport.write
        write(HEAD + (b"Connection: close\r\n\r\n" if close else b"\r\n"))
        write(chunked(ANTHROPIC_OPEN if anthropic else sse(OPENAI_ROLE)))
        delta = ANTHROPIC_DELTA if anthropic else b"data: " + OPENAI_DELTA + b"\n\n"
        await asyncio.sleep(pacing.first)
        for index in range(chunks):
            if index and paced:
                await asyncio.sleep(pacing.interval)
            if transport.is_closing():
                return
            write(chunked(delta % time.monotonic_ns()))
        write(chunked(ANTHROPIC_CLOSE if anthropic else sse(OPENAI_END) + b"data: [DONE]\n\n") + b"0\r\n\r\n")
        if close:
            transport.close()
            return
        self.busy = False
        self._next_request()


async def serve(host: str, port: int, pacing: Pacing) -> None:
    """Serve forever (until the process is terminated)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: StreamProtocol(pacing), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=16, help="content deltas when the body has no max_tokens")
    parser.add_argument("--first-ms", type=float, default=2.0, help="delay before the first content delta")
    parser.add_argument("--interval-ms", type=float, default=3.0, help="delay between content deltas")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, Pacing(args.chunks, args.first_ms, args.interval_ms)))


if __name__ == "__main__":
    main()
