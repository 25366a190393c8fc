"""The SSE decoder yields the same events however the byte stream is split."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from modelyard_proxy.base.sse import SSEDecoder, SSEEvent

STREAM = (
    b": keep-alive\n\n"
    b'event: message_start\ndata: {"a":1}\n\n'
    b"data: line one\ndata: line two\n\n"
    b"event: ping\r\ndata: {}\r\n\r\n"
    b"data:no-space\rdata: cr-only\r\r"
    b"id: 7\nretry: 10\ndata: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent("message_start", b'{"a":1}'),
    SSEEvent("", b"line one\nline two"),
    SSEEvent("ping", b"{}"),
    SSEEvent("", b"no-space\ncr-only"),
    SSEEvent("", b"[DONE]"),
]


def decode(parts: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for part in parts for event in decoder.feed(part)]
    return events + decoder.close()


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    parts = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode(parts) == EXPECTED


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise(noise: bytes) -> None:
    decode([noise, noise])


def test_event_without_trailing_blank_line_is_dispatched_at_close() -> None:
    assert decode([b'data: {"x":1}\n']) == [SSEEvent("", b'{"x":1}')]


def test_line_cut_mid_way_is_dropped_at_close() -> None:
    assert decode([b'data: {"x":1}\n\ndata: {"trunc']) == [SSEEvent("", b'{"x":1}')]
