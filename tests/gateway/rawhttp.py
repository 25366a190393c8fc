"""HTTP/1.1 spoken by hand, for what no client library sends: half a header, garbage, slow bodies."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import orjson


async def read_error(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """One response's status and its OpenAI error object, read off ``reader``."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(_headers(head)["content-length"])
    return parse_error(head + await reader.readexactly(length))


def parse_error(response: bytes) -> tuple[int, dict[str, Any]]:
    """The status and the OpenAI error object of one whole response (a JSON body, with a Content-Length)."""
    head, _, body = response.partition(b"\r\n\r\n")
    headers = _headers(head)
    assert headers.get("content-type", "").startswith("application/json"), response[:300]
    error: dict[str, Any] = orjson.loads(body[: int(headers["content-length"])])["error"]
    return int(head.split(b" ", 2)[1]), error


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """What ``sock`` receives until the peer closes it, and how many seconds that took; fails the test when
    the peer keeps it open past ``timeout``."""
    started = time.monotonic()
    sock.settimeout(timeout)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").strip().split("\r\n")[1:]
    return {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
