"""A real forward proxy for the egress tests: Debian's tinyproxy on a free loopback port, with its own config.

``make unit`` installs tinyproxy (``tools/ensure-tinyproxy``); where it cannot be found at all, the tests
that need it are skipped, saying so.
"""

from __future__ import annotations

import asyncio
import pathlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from tests.proxy.upstream.scripted import Handler, Peer
from tests.storeserver import free_port

READY_TIMEOUT_S = 10.0
#: The user and password the authenticating proxy wants (tinyproxy takes only letters, digits, ``-._``).
PROXY_USER = "gateway"
PROXY_PASSWORD = "pr0xy-pa55.w0rd"
#: The password as the proxy URL carries it: percent-encoded, so only a client that decodes it gets in.
PROXY_PASSWORD_IN_URL = "pr0xy%2Dpa55%2Ew0rd"
_REQUEST_LINE = re.compile(r"Request \(file descriptor \d+\): (\S+) (\S+) HTTP/")


class TinyProxy:
    """One tinyproxy process: ``connect_ports`` are the ports CONNECT may reach; ``auth`` asks for Basic auth."""

    def __init__(self, binary: str, workdir: pathlib.Path, *, connect_ports: Sequence[int], auth: bool = False) -> None:
        self.port = free_port()
        self.log_file = workdir / f"tinyproxy-{self.port}.log"
        self.auth = auth
        config = workdir / f"tinyproxy-{self.port}.conf"
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 30",
            f'LogFile "{self.log_file}"',
            "LogLevel Connect",
            "MaxClients 50",
            "Allow 127.0.0.1",
            "DisableViaHeader Yes",
            *(f"ConnectPort {port}" for port in connect_ports),
        ]
        if auth:
            lines.append(f"BasicAuth {PROXY_USER} {PROXY_PASSWORD}")
        config.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [binary, "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"tinyproxy did not start on port {self.port}: {self.log()}")
                time.sleep(0.01)

    @property
    def url(self) -> str:
        """The proxy's URL, with the (percent-encoded) user and password when it asks for them."""
        if self.auth:
            return f"http://{PROXY_USER}:{PROXY_PASSWORD_IN_URL}@127.0.0.1:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """``http://127.0.0.1:port``: how the gateway names the proxy in errors."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def requests(self) -> list[tuple[str, str]]:
        """Every request line the proxy received, as (method, target): ``CONNECT host:port`` for tunnels."""
        return [(match[1], match[2]) for match in _REQUEST_LINE.finditer(self.log())]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


#: ``tinyproxies(connect_ports=[...], auth=False)``: a started proxy, stopped after the test.
ProxyFactory = Callable[..., TinyProxy]


@pytest.fixture
def tinyproxies(tmp_path: pathlib.Path) -> Iterator[ProxyFactory]:
    """Start tinyproxy processes (skipped, with the reason, where tinyproxy is not installed at all)."""
    binary = shutil.which("tinyproxy") or shutil.which("tinyproxy", path="/usr/sbin:/usr/bin")
    if binary is None:
        pytest.skip("tinyproxy is not installed (tools/ensure-tinyproxy installs it; `make unit` runs that)")
    started: list[TinyProxy] = []

    def start(*, connect_ports: Sequence[int], auth: bool = False) -> TinyProxy:
        proxy = TinyProxy(binary, tmp_path, connect_ports=connect_ports, auth=auth)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def relaying_to(port: int) -> Handler:
    """A scripted server's handler passing bytes both ways to 127.0.0.1:``port``: with TLS, what an ``https://``
    forward proxy looks like to its clients when ``port`` is a plain proxy's."""

    async def relay(peer: Peer) -> None:
        backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(_pipe(peer.reader, backend_writer), _pipe(backend_reader, peer.writer))

    return relay


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.transport.abort()
