"""An HTTP/1.1 response parser that does no I/O: bytes in, a head and body pieces out.

Upstream answers are small and arrive whole in one read far more often than not, so the common case (a head
and a ``Content-Length`` body in one piece) is a ``find``, a ``split`` and a slice. Chunked bodies, bodies
that end with the connection, gzip/deflate codings and interim ``1xx`` answers are handled under any split
of the bytes. Anything else is a :class:`ProtocolError`: the connection is not reused after it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import ClassVar

from modelyard_proxy.upstream.errors import ProtocolError, UpstreamTruncated

#: A head larger than this is refused (providers send a few hundred bytes to a few KiB).
MAX_HEAD = 64 * 1024
#: A chunk-size line (hex digits and extensions) longer than this is refused.
MAX_CHUNK_LINE = 4096
_NO_BODY = frozenset((204, 304))
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}

#: Parser states, in the order of ``ResponseParser._STEPS``.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class ResponseHead:
    """Status and headers of a response; header names lowercased, repeated ones joined with ``", "``."""

    __slots__ = ("headers", "keep_alive", "reason", "status")

    def __init__(self, status: int, reason: str, headers: dict[str, str], keep_alive: bool) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.keep_alive = keep_alive


def parse_head(block: bytes) -> ResponseHead:
    """The status line and header fields before the blank line (which ``block`` excludes)."""
    lines = block.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in {b"HTTP/1.1", b"HTTP/1.0"} or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:64]!r}")
    headers: dict[str, str] = {}
    name = ""
    for line in lines[1:]:
        if line[:1] in {b" ", b"\t"} and name:  # obsolete line folding: a continuation of the previous field
            headers[name] += " " + line.strip().decode("latin-1")
            continue
        raw_name, colon, value = line.partition(b":")
        if not colon or not raw_name or raw_name != raw_name.strip():
            raise ProtocolError(f"malformed header line: {line[:64]!r}")
        name = raw_name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == b"HTTP/1.1" else "keep-alive" in connection
    return ResponseHead(int(code), reason.decode("latin-1"), headers, keep_alive)


class ResponseParser:
    """Feed it what the socket delivers; it collects the head, the decoded body pieces and whether it is done.

    The consumer takes ``pieces`` (and resets the list) as it relays them. ``reusable`` says whether the
    connection can carry another request once the response is complete.
    """

    __slots__ = ("_buffer", "_decoder", "_left", "_state", "complete", "head", "pieces", "reusable", "with_body")

    def __init__(self, *, with_body: bool = True) -> None:
        self.with_body = with_body  # False for HEAD requests: the head's framing headers describe no body
        self.head: ResponseHead | None = None
        self.pieces: list[bytes] = []
        self.complete = False
        self.reusable = False
        self._state = _HEAD
        self._buffer = b""
        self._left = 0
        self._decoder: zlib._Decompress | None = None

    def feed(self, data: bytes) -> None:
        """Take the next bytes from the connection."""
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        while data:
            data = self._STEPS[self._state](self, data)

    def _until(self, data: bytes, terminator: bytes, limit: int, what: str) -> int:
        """Where ``terminator`` starts in ``data``, or -1 with ``data`` kept for the next read."""
        end = data.find(terminator)
        if end < 0:
            if len(data) > limit:
                raise ProtocolError(f"{what} too long")
            self._buffer = data
        elif end > limit:  # refused however the bytes were split, not only when they came in pieces
            raise ProtocolError(f"{what} too long")
        return end

    def _in_head(self, data: bytes) -> bytes:
        end = self._until(data, b"\r\n\r\n", MAX_HEAD, "response head")
        if end < 0:
            return b""
        self._start(parse_head(data[:end]))
        return data[end + 4 :]

    def _in_length(self, data: bytes) -> bytes:
        if len(data) < self._left:
            self._left -= len(data)
            self._emit(data)
            return b""
        self._emit(data[: self._left])
        self._finish()
        return data[self._left :]

    def _in_chunk_data(self, data: bytes) -> bytes:
        if len(data) <= self._left:
            self._left -= len(data)
            self._emit(data)
            if not self._left:
                self._state = _CHUNK_END
            return b""
        self._emit(data[: self._left])
        self._state = _CHUNK_END
        return data[self._left :]

    def _in_chunk_end(self, data: bytes) -> bytes:
        if len(data) < len(b"\r\n"):
            self._buffer = data
            return b""
        if data[:2] != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")
        self._state = _CHUNK_SIZE
        return data[2:]

    def _in_line(self, data: bytes) -> bytes:
        """A chunk-size line, or a trailer line (the empty one ends the response)."""
        end = self._until(data, b"\r\n", MAX_CHUNK_LINE, "chunk size or trailer line")
        if end < 0:
            return b""
        line = data[:end]
        if self._state == _CHUNK_SIZE:
            self._chunk_size(line)
        elif not line:
            self._finish()
        return data[end + 2 :]

    def _until_close(self, data: bytes) -> bytes:
        self._emit(data)
        return b""

    def _after_end(self, data: bytes) -> bytes:  # noqa: ARG002
        """Bytes after a complete response, which nobody asked for: the connection is not reused."""
        self.reusable = False
        return b""

    def feed_eof(self) -> None:
        """The server closed the connection: the end of a body framed by it, else a truncated response."""
        if self._state == _UNTIL_CLOSE:
            self._finish()
        elif self._state != _DONE:
            raise UpstreamTruncated("the upstream closed the connection before the response ended")

    def _chunk_size(self, line: bytes) -> None:
        size_text = line.partition(b";")[0].strip()
        if not size_text or size_text.strip(_HEX_DIGITS):  # int() would also take a sign, "0x" and "_"
            raise ProtocolError(f"malformed chunk size: {line[:32]!r}")
        size = int(size_text, 16)
        if size == 0:
            self._state = _TRAILERS
        else:
            self._left = size
            self._state = _CHUNK_DATA

    def _start(self, head: ResponseHead) -> None:
        if 100 <= head.status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            return
        self.head = head
        headers = head.headers
        coding = headers.get("content-encoding", "identity").strip().lower()
        if coding not in {"identity", ""}:
            wbits = _CODINGS.get(coding)
            if wbits is None:
                raise ProtocolError(f"unsupported content encoding {coding!r}")
            self._decoder = zlib.decompressobj(wbits)
        self.reusable = head.keep_alive
        if not self.with_body or head.status in _NO_BODY:
            self._finish()
            return
        transfer = headers.get("transfer-encoding")
        if transfer is not None:
            if transfer.rpartition(",")[2].strip().lower() != "chunked":
                self._state = _UNTIL_CLOSE
                self.reusable = False
                return
            self._state = _CHUNK_SIZE
            if "content-length" in headers:  # both framings: chunked wins, and the connection is suspect
                self.reusable = False
            return
        length = headers.get("content-length")
        if length is None:
            self._state = _UNTIL_CLOSE
            self.reusable = False
            return
        values = {value.strip() for value in length.split(",")}
        if len(values) != 1 or not (value := values.pop()).isdigit() or not value.isascii():  # not "²"
            raise ProtocolError(f"invalid Content-Length {length[:32]!r}")
        self._left = int(value)
        self._state = _LENGTH
        if not self._left:
            self._finish()

    def _emit(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                raise ProtocolError(f"undecodable compressed body: {exc}") from None
        if data:
            self.pieces.append(data)

    def _finish(self) -> None:
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self.pieces.append(rest)
        self._state = _DONE
        self.complete = True

    _STEPS: ClassVar[tuple[Callable[[ResponseParser, bytes], bytes], ...]] = (
        _in_head,
        _in_length,
        _in_line,
        _in_chunk_data,
        _in_chunk_end,
        _in_line,
        _until_close,
        _after_end,
    )
