"""Connections to a forward proxy, and HTTP CONNECT tunnels through it that the origin's TLS is started over."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Callable
from typing import TypeVar

from modelyard_proxy.upstream.errors import ProxyRefused, ProxyUnreachable
from modelyard_proxy.upstream.proxies import ForwardProxy

#: Longest proxy answer head read before the proxy is deemed broken.
MAX_HEAD_BYTES = 64 * 1024
ProtocolT = TypeVar("ProtocolT", bound=asyncio.BaseProtocol)
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: ([^\r\n]*))?")


class _Closed(ConnectionError):
    """The proxy closed the connection before its answer to CONNECT was complete."""


class _Handshake(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT; the TLS layer takes the transport over once it is a 2xx."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answer: asyncio.Future[bytes] = loop.create_future()
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            self.answer.set_result(bytes(self._buffer[:end]))
        elif len(self._buffer) > MAX_HEAD_BYTES:
            self.answer.set_result(bytes(self._buffer))  # no status line will parse out of it

    def eof_received(self) -> bool:
        self._fail(_Closed())
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or _Closed())

    def _fail(self, exc: BaseException) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


def authority(host: str, port: int) -> str:
    """``host:port`` as a request target or Host header (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def connect_to_proxy(
    protocol_factory: Callable[[], ProtocolT], proxy: ForwardProxy, context: ssl.SSLContext | None
) -> tuple[asyncio.Transport, ProtocolT]:
    """A connection to ``proxy`` (TLS with ``context`` for an https:// proxy); ``ProxyUnreachable`` if none."""
    loop = asyncio.get_running_loop()
    context = context if proxy.tls else None
    try:
        return await loop.create_connection(
            protocol_factory, proxy.host, proxy.port, ssl=context, server_hostname=proxy.host if context else None
        )
    except ssl.SSLCertVerificationError as exc:
        untrusted = f"could not be reached: its certificate is not trusted ({exc.verify_message})"
        raise ProxyUnreachable(proxy, untrusted) from exc
    except OSError as exc:
        raise ProxyUnreachable(proxy, f"could not be reached ({type(exc).__name__})") from exc


async def open_tunnel(proxy: ForwardProxy, context: ssl.SSLContext | None, host: str, port: int) -> asyncio.Transport:
    """A connection through ``proxy`` to ``host:port``, its CONNECT answered 2xx (else ``ProxyRefused``).

    Cancelling (the caller's connect timeout) closes it.
    """
    loop = asyncio.get_running_loop()
    transport, handshake = await connect_to_proxy(lambda: _Handshake(loop), proxy, context)
    target = authority(host, port)
    auth = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
    try:
        transport.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode())
        try:
            head = await handshake.answer
        except _Closed:
            raise ProxyUnreachable(proxy, f"closed the connection instead of answering CONNECT {target}") from None
        except OSError as exc:
            what = f"broke the connection off before answering CONNECT {target} ({type(exc).__name__})"
            raise ProxyUnreachable(proxy, what) from exc
        status, reason = _status(head)
        if status is None:
            raise ProxyRefused(proxy, target, 0, "an answer that is not HTTP/1.x")
        if not 200 <= status < 300:
            raise ProxyRefused(proxy, target, status, reason)
    except BaseException:
        transport.abort()
        raise
    return transport


def _status(head: bytes) -> tuple[int | None, str]:
    """The status and reason phrase (printable ASCII, at most 80 characters: it is the proxy's text)."""
    match = _STATUS_LINE.match(head)
    if match is None:
        return None, ""
    reason = (match.group(2) or b"").decode("ascii", "replace")
    return int(match.group(1)), "".join(ch for ch in reason if ch.isprintable())[:80]
