"""Request recording, so gateway tests can assert exactly what the upstream received.

Tests in-process read the raw ring through ``app[REQUEST_LOG]``; everyone else gets the
``/_simulator/requests`` view, where credentials are redacted.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

CONTROL_PREFIX = "/_simulator/"
REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})
REDACTED_QUERY = frozenset({"key"})
#: Bodies larger than this are recorded by size only: the log keeps up to ``record_limit`` requests, and a
#: parsed body costs several times its bytes.
MAX_RECORDED_BODY_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One received request. Header names are lower-case; ``body`` is parsed JSON, or None when the body is not
    JSON or is over ``MAX_RECORDED_BODY_BYTES`` (``body_bytes`` says how large it was)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    body_bytes: int
    deployment: str | None
    received_at: float

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        return self.headers.get(name.lower())

    def public(self) -> dict[str, Any]:
        """JSON-ready view with credential values replaced by ``<redacted>``."""
        return {
            "method": self.method,
            "path": self.path,
            "query": {k: "<redacted>" if k in REDACTED_QUERY else v for k, v in self.query.items()},
            "headers": {k: "<redacted>" if k in REDACTED_HEADERS else v for k, v in self.headers.items()},
            "body": self.body,
            "bodyBytes": self.body_bytes,
            "deployment": self.deployment,
            "receivedAt": self.received_at,
        }


class RequestLog:
    """A bounded ring of the most recent requests, oldest first."""

    def __init__(self, limit: int) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=limit)

    def append(self, item: RecordedRequest) -> None:
        self._items.append(item)

    def clear(self) -> None:
        self._items.clear()

    def last(self) -> RecordedRequest:
        """The most recent request; raises IndexError when nothing was received."""
        return self._items[-1]

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)


REQUEST_LOG = web.AppKey("modelyard_simulator.request_log", RequestLog)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def record_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every provider request (not control-plane calls) before it is handled."""
    if not request.path.startswith(CONTROL_PREFIX):
        raw = await request.read()
        body: Any = None
        if raw and len(raw) <= MAX_RECORDED_BODY_BYTES:
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(raw)
        request.app[REQUEST_LOG].append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                body_bytes=len(raw),
                deployment=request.match_info.get("deployment"),
                received_at=time.time(),
            )
        )
    return await handler(request)


async def list_requests(request: web.Request) -> web.Response:
    """``GET /_simulator/requests``: the log, oldest first, credentials redacted."""
    items = [item.public() for item in request.app[REQUEST_LOG]]
    return web.Response(body=orjson.dumps(items), content_type="application/json")


async def clear_requests(request: web.Request) -> web.Response:
    """``DELETE /_simulator/requests``: forget everything recorded so far."""
    request.app[REQUEST_LOG].clear()
    return web.Response(status=204)
