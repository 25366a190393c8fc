"""Clients that hold connections, break HTTP or send huge bodies, against a real ``modelyard serve`` process.

Over raw sockets where no client library would misbehave like that; small settings keep every test quick.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.cli.test_cli import free_port, get_json, modelyard, process, running_simulator, wait_for
from tests.gateway.rawhttp import parse_error, read_until_closed
from tests.harness import DEMO_KEY, copy_examples

pytestmark = pytest.mark.timeout(90)

ADMIN_TOKEN = "hostile-clients-admin-token"
HALF_A_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: applica"


@dataclass(frozen=True)
class Gateway:
    pid: int
    port: int
    admin_port: int
    log: Path

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def metric(self, name: str) -> float:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0

    def memory(self, field: str) -> int:
        """``VmRSS`` or ``VmHWM`` (the peak) of the gateway process, in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
        raise AssertionError(field)

    def chat(self, body: bytes) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/chat/completions",
            data=body,
            headers={"Authorization": f"Bearer {DEMO_KEY}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


GatewayStarter = Callable[..., Gateway]


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_simulator(tmp_path_factory.mktemp("sim") / "simulator.log") as url:
        yield url


@pytest.fixture
def start_gateway(simulator: str, tmp_path: Path) -> Iterator[GatewayStarter]:
    """Start ``modelyard serve --workers 1`` on the examples with ``MODELYARD_*`` settings from keywords."""
    folder = copy_examples(tmp_path / "manifests", simulator)
    with contextlib.ExitStack() as running:

        def start(*, limits: str = "", **settings: object) -> Gateway:
            """``limits``: ``prlimit`` options the process starts under."""
            port, admin_port = free_port(), free_port()
            env = {f"MODELYARD_{name.upper()}": str(value) for name, value in settings.items()}
            args = ["prlimit", limits, "--"] if limits else []
            args += modelyard(
                *("serve", "--manifests", str(folder), "--host", "127.0.0.1", "--port", str(port)),
                *("--admin-port", str(admin_port), "--workers", "1"),
            )
            log = tmp_path / f"gateway-{port}.log"
            proc = running.enter_context(process(args, log, {**env, "MODELYARD_ADMIN_TOKEN": ADMIN_TOKEN}))
            wait_for(lambda: get_json(f"http://127.0.0.1:{port}/readyz")[0] == 200)
            return Gateway(proc.pid, port, admin_port, log)

        yield start


def test_half_a_request_head_is_answered_408_and_closed_after_the_header_timeout(
    start_gateway: GatewayStarter,
) -> None:
    gateway = start_gateway(header_timeout=1)
    with gateway.connect() as loris:
        loris.sendall(HALF_A_HEAD)
        answer, waited = read_until_closed(loris, timeout=10)
    status, error = parse_error(answer)
    assert (status, error["code"]) == (408, "request_timeout")
    assert 0.8 < waited < 5
    with gateway.connect() as silent:  # a connection that never sends a byte is closed as well, without a word
        assert read_until_closed(silent, timeout=10)[0] == b""
    with gateway.connect() as prompt:  # a whole head in time is served, however long its body then takes
        prompt.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        time.sleep(1.5)
        assert prompt.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_time(start_gateway: GatewayStarter) -> None:
    gateway = start_gateway(keepalive_timeout=1.5, header_timeout=30)
    with gateway.connect() as idle:
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        answer, waited = read_until_closed(idle, timeout=10)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert 1.2 < waited < 6


def test_connections_past_the_cap_are_refused_and_counted_while_the_admin_port_answers(
    start_gateway: GatewayStarter,
) -> None:
    gateway = start_gateway(max_connections=20, header_timeout=30)
    with contextlib.ExitStack() as held:
        for _ in range(20):
            held.enter_context(gateway.connect()).sendall(HALF_A_HEAD)
        wait_for(lambda: connections_of(gateway.port) >= 20)
        for _ in range(3):
            with gateway.connect() as extra:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
                answer, _ = read_until_closed(extra, timeout=10)
            status, error = parse_error(answer)
            assert (status, error["code"], error["type"]) == (503, "too_many_connections", "server_error")
            assert b"\r\nRetry-After: 1\r\n" in answer
        assert gateway.metric("modelyard_connections_refused_total") == 3
    wait_for(lambda: get_json(f"http://127.0.0.1:{gateway.port}/healthz")[0] == 200)


def connections_of(port: int) -> int:
    """Established TCP connections to the local ``port``, as the kernel counts them (server side)."""
    local = f":{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:] + Path("/proc/net/tcp6").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(local) and row.split()[3] == "01")


@pytest.mark.parametrize(
    ("request_bytes", "code", "fault"),
    [
        (
            b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            "malformed_http",
            "longer than 8190 bytes",
        ),
        (
            b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n",
            "malformed_http",
            "Too many headers",
        ),
        (b"GARBAGE\x01\x02 / NOT-HTTP\r\n\r\n", "malformed_http", ""),
        (b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nBad Header Line\r\n\r\n", "malformed_http", ""),
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Encoding: br\r\n"
            b"Content-Length: 2\r\n\r\n{}",
            "invalid_body_encoding",
            "br",
        ),
    ],
    ids=["oversized-header", "too-many-headers", "garbage", "invalid-header", "unknown-encoding"],
)
def test_malformed_http_is_400_in_the_error_shape(
    start_gateway: GatewayStarter, request_bytes: bytes, code: str, fault: str
) -> None:
    gateway = start_gateway()
    with gateway.connect() as sock:
        sock.sendall(request_bytes)
        answer, _ = read_until_closed(sock, timeout=10)
    status, error = parse_error(answer)
    assert (status, error["code"], error["type"]) == (400, code, "invalid_request_error")
    assert fault in error["message"]
    assert b"aaaaaaaa" not in answer  # nothing of an oversized line is echoed


def test_a_flood_of_malformed_http_logs_one_line_without_a_traceback(start_gateway: GatewayStarter) -> None:
    gateway = start_gateway()
    for _ in range(50):
        with gateway.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nBad Header Line\r\n\r\n")
            read_until_closed(sock, timeout=10)
    assert get_json(f"http://127.0.0.1:{gateway.port}/healthz")[0] == 200
    log = gateway.log.read_text()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "malformed or broken HTTP from 127.0.0.1" in line]
    assert len(lines) == 1, log


def test_a_body_of_many_small_messages_is_refused_before_it_costs_memory(start_gateway: GatewayStarter) -> None:
    gateway = start_gateway()
    assert gateway.chat(orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))[0] == 200
    before = gateway.memory("VmRSS")
    many = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}] * 450_000})
    assert 12 * 2**20 < len(many) < 16 * 2**20  # under the byte limit: only the value count refuses it
    status, payload = gateway.chat(many)
    error = payload["error"]
    assert isinstance(error, dict)
    assert (status, error["code"]) == (413, "request_too_large")
    # Parsed, 450,000 messages take ~400 MiB; the body itself ~14 MiB, held twice while it is read.
    assert gateway.memory("VmHWM") - before < 100
    assert gateway.memory("VmRSS") - before < 60


def open_files_limit(pid: int) -> int:
    """The soft ``Max open files`` of ``pid``."""
    line = next(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines() if "open files" in line)
    return int(line.split()[3])


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux's prlimit")
def test_the_open_files_limit_is_raised_to_hold_the_connection_cap(start_gateway: GatewayStarter) -> None:
    roomy = start_gateway(limits="--nofile=512:8192", max_connections=2000, pool_size=100)
    assert open_files_limit(roomy.pid) == 2000 + 100 + 256
    assert "open-files limit" not in roomy.log.read_text()
    tight = start_gateway(limits="--nofile=512:1024", max_connections=2000, pool_size=100)
    assert open_files_limit(tight.pid) == 1024
    assert "the open-files limit (1024) is below the 2356 that MODELYARD_MAX_CONNECTIONS=2000" in tight.log.read_text()
