"""AWS event-stream frames (``application/vnd.amazon.eventstream``), as Bedrock's streaming APIs send them.

A frame is a prelude (total length, headers length, the prelude's CRC32), string headers (``:message-type``,
``:event-type`` or ``:exception-type``, ``:content-type``), a JSON payload and a CRC32 of everything before
it. Frames reuse the SSE pacing machinery (:mod:`~modelyard_simulator.streaming`): only :meth:`encode`
differs, so cuts, delays and the ``malformed`` fault (a payload that is not JSON, in a frame whose CRCs
are right) behave as in every other dialect.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

from modelyard_simulator.streaming import SseEvent

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7  # the header value type for UTF-8 strings


def encode_headers(headers: dict[str, str]) -> bytes:
    out = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    return out


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One frame: prelude and its CRC, headers, payload, and the CRC of all that."""
    raw_headers = encode_headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


@dataclasses.dataclass(frozen=True, slots=True)
class EventFrame(SseEvent):
    """An event (``event`` is its type, e.g. ``contentBlockDelta``) or an exception (``throttlingException``)."""

    exception: bool = False

    def encode(self, newline: bytes) -> bytes:  # noqa: ARG002
        kind = self.event or ""
        if self.exception:
            headers = {":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"}
        else:
            headers = {":message-type": "event", ":event-type": kind, ":content-type": "application/json"}
        return encode_frame(headers, self.data)
