"""HTTP/1.1 spoken by hand, for what no client library sends: half a header, garbage, slow bodies."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson


async def read_error(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """One response's status and its OpenAI error object (the body must be one, with a Content-Length)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head.strip().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    assert headers["content-type"].startswith("application/json"), head
    body = await reader.readexactly(int(headers["content-length"]))
    error: dict[str, Any] = orjson.loads(body)["error"]
    return int(status_line.split()[1]), error
