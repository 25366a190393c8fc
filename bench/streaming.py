"""The streaming client: one stream at a time over a blocking socket, timing every chunk on arrival.

wrk cannot see inside a response, so streams are read here. A blocking socket with no event loop keeps
the client's own cost to a ``recv`` and a regex per read, and it is the same for every target, so it
cancels out of the differences reported. The upstream stamps each content delta with its send time
(``bench.sse_server``), which gives each chunk's transit exactly.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Callable

from bench.sse_server import UNPACED
from bench.stats import percentile

#: Deltas the long unpaced streams have beyond the short ones.
UNPACED_EXTRA = 200

#: A content delta's text as ``bench.sse_server`` stamps it, in OpenAI's and Anthropic's framing alike.
MARK = re.compile(rb'"t(\d{6,})"')


@dataclasses.dataclass(frozen=True, slots=True)
class StreamTarget:
    """A streaming endpoint: where to POST, the body (``%d`` stands for ``max_tokens``, the delta count),
    the gateway key (empty for none), and the CPU clock of the proxy in between (None when direct)."""

    name: str
    port: int
    path: str
    template: bytes
    key: str = ""
    cpu: Callable[[], float] | None = None


@dataclasses.dataclass(slots=True)
class StreamStats:
    """Time to first content per stream and transit per later chunk (ns, paced streams), and the proxy's
    CPU for unpaced short and long streams (what separates per-chunk processing from per-stream work)."""

    ttft_ns: list[int] = dataclasses.field(default_factory=list)
    transit_ns: list[int] = dataclasses.field(default_factory=list)
    failures: int = 0
    long_cpu: float = 0.0
    short_cpu: float = 0.0
    #: Chunks the unpaced long streams had beyond the short ones, summed: what ``long_cpu - short_cpu`` paid for.
    extra_chunks: int = 0

    def ttft_ms(self, pct: float) -> float:
        """A percentile of time to first content token, in milliseconds."""
        return percentile(self.ttft_ns, pct) / 1e6

    def transit_us(self, pct: float) -> float:
        """A percentile of chunk transit (upstream write to client read), in microseconds."""
        return percentile(self.transit_ns, pct) / 1e3

    def cpu_per_chunk_us(self) -> float:
        """The proxy's CPU per relayed chunk, chunks back to back: long minus short streams over the difference."""
        if not self.extra_chunks:
            return float("nan")
        return (self.long_cpu - self.short_cpu) / self.extra_chunks * 1e6


def _request(target: StreamTarget, chunks: int, *, paced: bool) -> bytes:
    body = target.template % (chunks if paced else chunks + UNPACED)
    auth = f"Authorization: Bearer {target.key}\r\n" if target.key else ""
    head = (
        f"POST {target.path} HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\n{auth}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def one_stream(target: StreamTarget, chunks: int, stats: StreamStats, *, paced: bool = True) -> None:
    """Read one whole stream (the connection is opened before the clock starts); record its timings."""
    request = _request(target, chunks, paced=paced)
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        scanned = 0
        seen = 0
        start = time.monotonic_ns()
        sock.sendall(request)
        ttft = 0
        transits: list[int] = []
        while data := sock.recv(65536):
            now = time.monotonic_ns()
            buffer += data
            for match in MARK.finditer(buffer, scanned):
                if seen == 0:
                    ttft = now - start
                else:
                    transits.append(now - int(match.group(1)))
                seen += 1
                scanned = match.end()
    if seen != chunks or b" 200 " not in buffer[:16]:
        stats.failures += 1
        return
    stats.ttft_ns.append(ttft)
    stats.transit_ns.extend(transits)


def _block(target: StreamTarget, chunks: int, count: int, stats: StreamStats, *, paced: bool = True) -> float:
    """``count`` streams of ``chunks`` deltas; the proxy CPU they cost (0 when direct)."""
    before = target.cpu() if target.cpu else 0.0
    for _ in range(count):
        one_stream(target, chunks, stats, paced=paced)
    return (target.cpu() if target.cpu else 0.0) - before


def measure(targets: list[StreamTarget], *, chunks: int, streams: int, rounds: int) -> dict[str, StreamStats]:
    """Per target: ``streams`` paced streams of ``chunks`` deltas and twice as many of 2 (time to first token,
    chunk transit), taking turns stream by stream, since transit on a VM drifts by tens of microseconds
    within seconds; then, per round, unpaced short and long streams whose CPU difference is the per-chunk
    processing cost.
    """
    results = {target.name: StreamStats() for target in targets}
    for target in targets:  # warm-up: pooled upstream connections, first-call imports
        _block(target, chunks, 5, StreamStats())
    per_round = max(1, streams // rounds)
    cpu_streams, short, long = 10, 2, 2 + UNPACED_EXTRA
    for _ in range(rounds):
        for _ in range(per_round):  # one stream per target in turn: drift within a round hits all alike
            for target in targets:
                stats = results[target.name]
                one_stream(target, chunks, stats)
                one_stream(target, 2, stats)
                one_stream(target, 2, stats)
        for target in targets:
            stats = results[target.name]
            ignored = StreamStats()
            stats.short_cpu += _block(target, short, cpu_streams, ignored, paced=False)
            stats.long_cpu += _block(target, long, cpu_streams, ignored, paced=False)
            stats.extra_chunks += cpu_streams * (long - short)
            stats.failures += ignored.failures
    return results
