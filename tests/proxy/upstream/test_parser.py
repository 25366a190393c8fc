"""The sans-IO response parser: framing, codings, keep-alive and refusals, the same under any split of the bytes."""

from __future__ import annotations

import gzip
import itertools
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard_proxy.upstream.errors import ProtocolError, UpstreamTruncated
from modelyard_proxy.upstream.parser import MAX_CHUNK_LINE, MAX_HEAD, ResponseParser


def parse(*feeds: bytes, with_body: bool = True, eof: bool = False) -> tuple[ResponseParser, bytes]:
    """The parser after ``feeds`` (and the close, with ``eof``), and the body it decoded."""
    parser = ResponseParser(with_body=with_body)
    for data in feeds:
        parser.feed(data)
    if eof:
        parser.feed_eof()
    return parser, b"".join(parser.pieces)


def feed_in_pieces(parser: ResponseParser, data: bytes, size: int) -> None:
    for start in range(0, len(data), size):
        parser.feed(data[start : start + size])


def chunked(*chunks: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n" + trailer + b"\r\n"


def test_content_length_body() -> None:
    """A ``Content-Length`` body is read to its length; the head carries status, reason and headers."""
    parser, body = parse(b"HTTP/1.1 201 Created Here\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
    assert parser.head is not None
    assert (parser.head.status, parser.head.reason) == (201, "Created Here")
    assert parser.head.headers == {"content-type": "text/plain", "content-length": "5"}
    assert body == b"hello"
    assert parser.complete
    assert parser.reusable


def test_content_length_body_is_not_complete_before_its_last_byte() -> None:
    """The response stays open until the last byte of the declared length arrives."""
    parser, body = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell")
    assert (parser.complete, body) == (False, b"hell")
    parser.feed(b"o")
    assert parser.complete


def test_zero_content_length_completes_with_the_head() -> None:
    """``Content-Length: 0`` ends the response at the blank line; an empty status reason is allowed."""
    parser, body = parse(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
    assert parser.head is not None
    assert parser.head.reason == ""
    assert (parser.complete, parser.reusable, body) == (True, True, b"")


def test_chunked_body_with_extensions_and_trailers() -> None:
    """Chunk extensions are ignored, hex sizes in either case are read, trailers are skipped to the blank line."""
    parser, body = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b'1 ; x ; y="z"\r\n \r\n'
        b"a\r\n0123456789\r\n"
        b"B\r\nabcdefghijk\r\n"
        b"0;last\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n"
    )
    assert body == b"hello 0123456789abcdefghijk"
    assert parser.complete
    assert parser.reusable


def test_chunked_body_is_not_complete_before_the_trailer_section_ends() -> None:
    """The zero-size chunk alone does not end the response: the empty line after the trailers does."""
    parser, _ = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n")
    assert not parser.complete
    parser.feed(b"\r\n")
    assert parser.complete


def test_body_until_close() -> None:
    """Without ``Content-Length`` or chunking the body runs to the close; the connection cannot be reused."""
    parser, body = parse(b"HTTP/1.1 200 OK\r\n\r\nfirst ", b"second")
    assert (parser.complete, body) == (False, b"first second")
    parser.feed_eof()
    assert parser.complete
    assert not parser.reusable


def test_transfer_coding_other_than_chunked_last_runs_until_close() -> None:
    """A transfer coding list not ending in ``chunked`` is framed by the close (RFC 9112 section 6.3)."""
    parser, body = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n2\r\nok", eof=True)
    assert (parser.complete, parser.reusable, body) == (True, False, b"2\r\nok")


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    """204 and 304 have no body whatever their framing headers say, and the connection stays usable."""
    parser, body = parse(f"HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n".encode())
    assert (parser.complete, parser.reusable, body) == (True, True, b"")


@pytest.mark.parametrize("framing", ["Content-Length: 10", "Transfer-Encoding: chunked", "X-None: 1"])
def test_answer_to_head_has_no_body(framing: str) -> None:
    """With ``with_body=False`` (a HEAD request) the head's framing headers describe no body."""
    parser, body = parse(f"HTTP/1.1 200 OK\r\n{framing}\r\n\r\n".encode(), with_body=False)
    assert (parser.complete, body) == (True, b"")
    assert parser.reusable


def test_interim_responses_are_skipped() -> None:
    """100 Continue and 103 Early Hints are passed over; the head is the final response's."""
    parser, body = parse(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    assert parser.head is not None
    assert parser.head.status == 200
    assert parser.head.headers == {"content-length": "2"}
    assert (parser.complete, body) == (True, b"ok")


def test_header_names_repeats_and_folding() -> None:
    """Names are lowercased, repeated fields joined with ", ", obsolete folded lines joined with a space."""
    parser, _ = parse(
        b"HTTP/1.1 200 OK\r\n"
        b"Set-Cookie: a=1\r\n"
        b"SET-COOKIE:b=2  \r\n"
        b"X-Long: one\r\n"
        b"   two\r\n"
        b"\tthree\r\n"
        b"X-Empty:\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert parser.head is not None
    assert parser.head.headers == {
        "set-cookie": "a=1, b=2",
        "x-long": "one two three",
        "x-empty": "",
        "content-length": "0",
    }


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("1.1", None, True),
        ("1.1", "keep-alive", True),
        ("1.1", "close", False),
        ("1.1", "Close", False),
        ("1.1", "upgrade, close", False),
        ("1.0", None, False),
        ("1.0", "close", False),
        ("1.0", "keep-alive", True),
        ("1.0", "Keep-Alive", True),
    ],
)
def test_keep_alive_rules(version: str, connection: str | None, keep_alive: bool) -> None:
    """HTTP/1.1 keeps the connection unless told ``close``; HTTP/1.0 only when told ``keep-alive``."""
    field = f"Connection: {connection}\r\n" if connection else ""
    parser, _ = parse(f"HTTP/{version} 200 OK\r\n{field}Content-Length: 2\r\n\r\nok".encode())
    assert parser.head is not None
    assert parser.head.keep_alive is keep_alive
    assert parser.complete
    assert parser.reusable is keep_alive


def test_both_framings_chunked_wins_and_the_connection_is_not_reused() -> None:
    """``Transfer-Encoding: chunked`` overrides ``Content-Length``; such a response retires its connection."""
    parser, body = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"hello")
    )
    assert (parser.complete, parser.reusable, body) == (True, False, b"hello")


def test_equal_repeated_content_lengths_are_one() -> None:
    """Repeated identical ``Content-Length`` values (joined as "5, 5") are accepted as one."""
    parser, body = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
    assert (parser.complete, body) == (True, b"hello")


PLAIN = b"The quick brown fox jumps over the lazy dog. " * 40


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        ("gzip", gzip.compress(PLAIN)),
        ("x-gzip", gzip.compress(PLAIN)),
        ("GZip", gzip.compress(PLAIN)),
        ("deflate", zlib.compress(PLAIN)),
        ("identity", PLAIN),
    ],
)
@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_content_codings_are_decoded(coding: str, encoded: bytes, framing: str) -> None:
    """gzip and deflate bodies come out decoded whatever the framing; identity passes through."""
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\n".encode()
    if framing == "length":
        raw = head + b"Content-Length: %d\r\n\r\n" % len(encoded) + encoded
    elif framing == "chunked":
        raw = head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(encoded[:7], encoded[7:100], encoded[100:])
    else:
        raw = head + b"\r\n" + encoded
    parser, body = parse(raw, eof=framing == "close")
    assert parser.complete
    assert body == PLAIN


def test_compressed_answer_without_body_decodes_to_nothing() -> None:
    """A gzip-coded 304 has no body to decode and completes cleanly."""
    parser, body = parse(b"HTTP/1.1 304 Not Modified\r\nContent-Encoding: gzip\r\n\r\n")
    assert (parser.complete, body) == (True, b"")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n", id="unsupported-coding"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope", id="bad-gzip"),
        pytest.param(b"HTTP/2 200 OK\r\n\r\n", id="status-version"),
        pytest.param(b"HTTP/1.1 20 OK\r\n\r\n", id="status-short-code"),
        pytest.param(b"HTTP/1.1 2000 OK\r\n\r\n", id="status-long-code"),
        pytest.param(b"HTTP/1.1 abc OK\r\n\r\n", id="status-letters"),
        pytest.param(b"ICY 200 OK\r\n\r\n", id="status-protocol"),
        pytest.param(b"garbage\r\n\r\n", id="status-garbage"),
        pytest.param(b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", id="header-no-colon"),
        pytest.param(b"HTTP/1.1 200 OK\r\n: no-name\r\n\r\n", id="header-no-name"),
        pytest.param(b"HTTP/1.1 200 OK\r\nName : x\r\n\r\n", id="header-space-before-colon"),
        pytest.param(b"HTTP/1.1 200 OK\r\n folded: first\r\n\r\n", id="header-fold-without-field"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", id="length-letters"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", id="length-negative"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", id="length-plus"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", id="length-empty"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n", id="length-underscore"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n", id="length-superscript-digit"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", id="length-conflict"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n", id="length-list-conflict"),
    ],
)
def test_malformed_heads_are_protocol_errors(raw: bytes) -> None:
    """A status line, header line, ``Content-Length`` or coding the parser cannot trust is refused."""
    with pytest.raises(ProtocolError):
        parse(raw)


@pytest.mark.parametrize(
    "size_line",
    [b"zz", b"", b"-1", b"+5", b"0x5", b"1_0", b"5 5", b"\xd9\xa5", b";ext-only"],
)
def test_malformed_chunk_sizes_are_protocol_errors(size_line: bytes) -> None:
    """A chunk size is hex digits only (RFC 9112 ``1*HEXDIG``): no sign, prefix, separator or emptiness."""
    with pytest.raises(ProtocolError):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\nhello\r\n0\r\n\r\n")


def test_chunk_data_must_end_with_crlf() -> None:
    """Chunk data running past its declared size (no CRLF after it) is refused, even when the CR came alone."""
    with pytest.raises(ProtocolError):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n")
    with pytest.raises(ProtocolError):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r", b"X0\r\n\r\n")


OVERSIZED_HEAD = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("piece", [len(OVERSIZED_HEAD), 4096, 1000])
def test_oversized_head_is_refused_however_it_arrives(piece: int) -> None:
    """A head past ``MAX_HEAD`` is refused, whether it arrives whole or in pieces."""
    with pytest.raises(ProtocolError, match="too long"):
        feed_in_pieces(ResponseParser(), OVERSIZED_HEAD, piece)


@pytest.mark.parametrize("piece", [1 << 16, 512])
def test_oversized_chunk_line_is_refused_however_it_arrives(piece: int) -> None:
    """A chunk-size line (extensions included) past ``MAX_CHUNK_LINE`` is refused, whole or in pieces."""
    line = b"5;" + b"e" * MAX_CHUNK_LINE + b"\r\nhello\r\n0\r\n\r\n"
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(ProtocolError, match="too long"):
        feed_in_pieces(parser, line, piece)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", id="mid-head"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", id="mid-length-body"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", id="mid-chunk"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", id="before-last-chunk"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", id="mid-trailers"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n", id="after-interim"),
    ],
)
def test_close_before_the_end_is_truncation(raw: bytes) -> None:
    """The connection closing before a length- or chunk-framed response ended is ``UpstreamTruncated``."""
    parser, _ = parse(raw)
    with pytest.raises(UpstreamTruncated):
        parser.feed_eof()
    assert not parser.complete


def test_close_after_the_end_changes_nothing() -> None:
    """``feed_eof`` after a complete response neither raises nor alters it."""
    parser, body = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", eof=True)
    assert (parser.complete, parser.reusable, body) == (True, True, b"ok")


@pytest.mark.parametrize("together", [True, False])
@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ],
)
def test_bytes_after_a_complete_response_make_it_not_reusable(raw: bytes, together: bool) -> None:
    """Bytes nobody asked for after the end mean the connection's framing cannot be trusted again."""
    extra = b"HTTP/1.1 200 OK\r\n"
    parser, body = parse(raw + extra) if together else parse(raw, extra)
    assert parser.complete
    assert not parser.reusable
    assert b"HTTP" not in body


# -- any split of the bytes gives the same response ----------------------------------------------------------

GZIPPED = gzip.compress(bytes(range(256)) * 8 + PLAIN)
SPLIT_CASES = {
    "length": (
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 11\r\n\r\nhello world",
        b"hello world",
        False,
    ),
    "chunked": (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Fold: a\r\n b\r\n\r\n"
        + b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
        b"hello world",
        False,
    ),
    "gzip-chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(GZIPPED[:10], GZIPPED[10:200], GZIPPED[200:]),
        bytes(range(256)) * 8 + PLAIN,
        False,
    ),
    "until-close": (b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nall of it", b"all of it", True),
}
WHOLE = {name: parse(raw, eof=eof) for name, (raw, _, eof) in SPLIT_CASES.items()}


@pytest.mark.parametrize("name", list(SPLIT_CASES))
@given(cuts=st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=16))
def test_any_split_gives_the_same_head_and_body(name: str, cuts: list[int]) -> None:
    """Fed in any pieces, a response parses to the same head, body and reusability as fed whole."""
    raw, expected_body, eof = SPLIT_CASES[name]
    bounds = [0, *sorted(cut % (len(raw) + 1) for cut in cuts), len(raw)]
    parser, body = parse(*(raw[a:b] for a, b in itertools.pairwise(bounds)), eof=eof)
    whole, _ = WHOLE[name]
    assert parser.head is not None
    assert whole.head is not None
    assert (parser.head.status, parser.head.reason, parser.head.headers, parser.head.keep_alive) == (
        whole.head.status,
        whole.head.reason,
        whole.head.headers,
        whole.head.keep_alive,
    )
    assert body == expected_body
    assert (parser.complete, parser.reusable) == (True, whole.reusable)


@pytest.mark.parametrize("name", list(SPLIT_CASES))
def test_split_cases_parse_as_intended(name: str) -> None:
    """The cases the split test compares against are themselves right (one byte at a time, too)."""
    raw, expected_body, eof = SPLIT_CASES[name]
    whole, body = WHOLE[name]
    assert whole.head is not None
    assert whole.head.status == 200
    assert body == expected_body
    assert whole.reusable is (not eof)
    parser, bytewise = parse(*(raw[i : i + 1] for i in range(len(raw))), eof=eof)
    assert (parser.complete, bytewise) == (True, expected_body)
