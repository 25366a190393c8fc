"""Server-sent events: an incremental decoder for upstream streams and the one encoder for the client.

A TCP read is never an event boundary, so the decoder keeps partial lines across reads and accepts
``\\n``, ``\\r\\n`` and ``\\r`` line ends alike (Gemini may use CRLF).
"""

from __future__ import annotations

import dataclasses

DONE_FRAME = b"data: [DONE]\n\n"


@dataclasses.dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its ``event:`` name (empty when absent) and its joined ``data:`` lines."""

    event: str
    data: bytes


class SSEDecoder:
    """Feed bytes in any split; get back complete events. Comments (``: keep-alive``) are dropped."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event = ""

    @property
    def idle(self) -> bool:
        """Between events: no partial line or undispatched ``data:`` is held."""
        return not self._buffer and not self._data and not self._event

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode what ``chunk`` completes; an incomplete trailing line waits for the next call."""
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            held = buffer.endswith(b"\r")
            body = buffer[:-1] if held else buffer
            buffer = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if held else b"")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            self._take_line(line, events)
        return events

    def close(self) -> list[SSEEvent]:
        """At end of stream: dispatch an event whose lines all arrived but whose blank line did not."""
        events: list[SSEEvent] = []
        tail = self._buffer.rstrip(b"\r")
        self._buffer = b""
        if tail:
            return events  # a line cut mid-way: the event is incomplete and is dropped
        self._take_line(b"", events)
        return events

    def _take_line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(SSEEvent(self._event, b"\n".join(self._data)))
            self._data = []
            self._event = ""
            return
        if line[0] == 0x3A:  # ':' starts a comment
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")


def frame(payload: bytes) -> bytes:
    """One ``data:`` event for the client; payloads are single-line JSON."""
    return b"data: " + payload + b"\n\n"
