"""``modelyard serve --workers 2``: a supervisor and two worker processes sharing the port, over real sockets.

Pushes must reach every worker before the admin port says 200, ``/metrics`` must add the workers up, and no
worker may outlive its supervisor.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.cli import main
from modelyard_routing import RoutingTable, compile_inventory
from tests.cli.test_cli import (
    accepts_connections,
    free_port,
    get_json,
    modelyard,
    process,
    running_simulator,
    slow_stream_request,
    wait_for,
)
from tests.harness import DEMO_KEY, copy_examples, example_inventory
from tests.observability.test_metrics import parse, value

pytestmark = pytest.mark.timeout(60)

ADMIN_TOKEN = "workers-test-admin-token"


def table(upstream: str, generation: int, *, drop: int = 0) -> RoutingTable:
    """The standalone examples against ``upstream``, less ``drop`` routes (another table, other models)."""
    inventory = example_inventory(upstream)
    for _ in range(drop):
        inventory.routes.pop()
    return compile_inventory(inventory, generation).table


def models(table: RoutingTable) -> set[str]:
    return {name for route in table.routes for name in (route.model, *route.aliases)}


class Gateway:
    """A running supervisor: its ports, its process and log, and the worker pids it reported."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, admin_port: int, log: Path) -> None:
        self.proc, self.log = proc, log
        self.url, self.admin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
        self.port = port

    def workers(self) -> dict[int, int]:
        """The latest pid of each worker slot, from the supervisor's log."""
        started = re.findall(r"worker (\d+) started \(pid (\d+)\)", self.log.read_text())
        return {int(index): int(pid) for index, pid in started}

    def admin_request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
        request = urllib.request.Request(self.admin + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def metrics(self) -> str:
        request = urllib.request.Request(self.admin + "/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text: str = response.read().decode()
            return text

    def served_models(self) -> set[str]:
        """``/v1/models`` over a fresh connection (so the kernel picks a worker anew)."""
        status, body = get_json(f"{self.url}/v1/models", DEMO_KEY)
        assert status == 200
        data = body["data"]
        assert isinstance(data, list)
        return {str(m["id"]) for m in data}

    def chat(self, model: str = "gpt-4o") -> int:
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]}).encode()
        request = urllib.request.Request(
            f"{self.url}/v1/chat/completions",
            data=body,
            headers={"Authorization": f"Bearer {DEMO_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The provider simulator, shared by the module's tests (it keeps no state between requests)."""
    with running_simulator(tmp_path_factory.mktemp("sim") / "simulator.log") as url:
        yield url


@contextlib.contextmanager
def two_workers(source: list[str], log: Path) -> Iterator[Gateway]:
    """``modelyard serve --workers 2 SOURCE --admin-port …``, up once every worker answers."""
    port, admin_port = free_port(), free_port()
    args = modelyard(
        *("serve", "--workers", "2", *source, "--host", "127.0.0.1"),
        *("--port", str(port), "--admin-port", str(admin_port), "--reload-interval", "0.2"),
    )
    with process(args, log, {"MODELYARD_ADMIN_TOKEN": ADMIN_TOKEN}) as proc:
        started = Gateway(proc, port, admin_port, log)
        wait_for(lambda: started.admin_request("GET", "/admin/v1/routing-table")[0] == 200)
        assert len(started.workers()) == 2
        yield started


@pytest.fixture
def gateway(upstream: str, tmp_path: Path) -> Iterator[Gateway]:
    """Two workers following the table file, as in operator mode."""
    table_file = tmp_path / "routing-table.json"
    table_file.write_bytes(table(upstream, 1).to_wire())
    with two_workers(["--table", str(table_file)], tmp_path / "gateway.log") as started:
        yield started


def test_a_push_reaches_every_worker_before_it_is_answered(gateway: Gateway, upstream: str) -> None:
    assert gateway.chat() == 200
    newer = table(upstream, 2, drop=1)
    assert models(newer) < models(table(upstream, 1))

    status, body = gateway.admin_request("PUT", "/admin/v1/routing-table", newer.to_wire())
    assert (status, body["generation"], body["sha256"]) == (200, 2, newer.sha256)
    # Fresh connections land on either worker: each of them serves the pushed table already.
    assert all(gateway.served_models() == models(newer) for _ in range(30))
    samples, _ = parse(gateway.metrics())
    assert value(samples, "modelyard_routing_table_generation", worker="0") == 2
    assert value(samples, "modelyard_routing_table_generation", worker="1") == 2
    assert gateway.admin_request("GET", "/admin/v1/routing-table")[1]["generation"] == 2

    status, body = gateway.admin_request("PUT", "/admin/v1/routing-table", table(upstream, 1).to_wire())
    assert (status, body["reason"], body["generation"]) == (409, "StaleGeneration", 2)
    status, body = gateway.admin_request("PUT", "/admin/v1/routing-table", b"{not json")
    assert (status, body["reason"]) == (422, "InvalidTable")
    assert all(gateway.served_models() == models(newer) for _ in range(10))


def test_metrics_add_up_every_worker(gateway: Gateway) -> None:
    served = 24
    assert all(gateway.chat() == 200 for _ in range(served))
    samples, types = parse(gateway.metrics())
    assert types["modelyard_requests_total"] == "counter"
    assert value(samples, "modelyard_requests_total", status="200") == served
    assert value(samples, "gen_ai_server_request_duration_seconds_count") == served
    assert value(samples, "gen_ai_server_request_duration_seconds_bucket", le="+Inf") == served
    # Each worker's breaker for the target shows that both workers took part of the traffic.
    breakers = {dict(labels)["worker"] for name, labels in samples if name == "modelyard_circuit_breaker_state"}
    assert breakers == {"0", "1"}
    assert value(samples, "modelyard_worker_up") == 2
    assert value(samples, "modelyard_worker_restarts_total") == 0


def test_a_killed_worker_is_restarted_and_given_the_table_it_missed(gateway: Gateway, upstream: str) -> None:
    assert all(gateway.chat() == 200 for _ in range(6))
    before, _ = parse(gateway.metrics())
    killed = gateway.workers()[0]
    os.kill(killed, signal.SIGKILL)

    newer = table(upstream, 2, drop=2)
    status, body = gateway.admin_request("PUT", "/admin/v1/routing-table", newer.to_wire())
    assert status == 502  # the operator must not count this pod as serving it yet, and will push again
    assert "reached 1 of 2 workers" in body["message"]

    wait_for(lambda: gateway.workers()[0] != killed)
    wait_for(lambda: gateway.admin_request("GET", "/admin/v1/routing-table")[1].get("generation") == 2)
    # The restarted worker read the older table file, and the supervisor gave it the pushed table.
    assert all(gateway.served_models() == models(newer) for _ in range(30))
    after, _ = parse(gateway.metrics())
    assert value(after, "modelyard_worker_restarts_total") == 1
    # The killed worker's last scraped counts stay in the sums: they never go back.
    assert value(before, "modelyard_requests_total") == value(after, "modelyard_requests_total") == 6
    assert f"worker 0 (pid {killed}) exited" in gateway.log.read_text()


def loads_of(log: Path, generation: int) -> int:
    """How many times a process logged loading ``generation`` of the routing table."""
    return log.read_text().count(f"routing table generation {generation} loaded")


def restart_worker(gateway: Gateway, index: int) -> None:
    """SIGKILL worker ``index`` and wait until its successor answers the admin port's table query."""
    killed = gateway.workers()[index]
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: gateway.workers()[index] != killed)
    wait_for(lambda: gateway.admin_request("GET", "/admin/v1/routing-table")[0] == 200)


def test_a_restarted_worker_never_serves_a_table_older_than_its_siblings(gateway: Gateway, upstream: str) -> None:
    newer = table(upstream, 2, drop=1)
    assert gateway.admin_request("PUT", "/admin/v1/routing-table", newer.to_wire())[0] == 200
    first_loads = loads_of(gateway.log, 1)

    restart_worker(gateway, 0)
    assert gateway.admin_request("GET", "/admin/v1/routing-table")[1]["generation"] == 2
    assert all(gateway.served_models() == models(newer) for _ in range(20))
    # It was handed the pushed table before it served: it never loaded the older mounted file's.
    assert loads_of(gateway.log, 1) == first_loads


@pytest.fixture
def standalone(upstream: str, tmp_path: Path) -> Iterator[Gateway]:
    """Two workers following a copy of the example manifests."""
    folder = copy_examples(tmp_path / "manifests", upstream)
    with two_workers(["--manifests", str(folder)], tmp_path / "gateway.log") as started:
        yield started


def test_a_worker_restarted_under_manifests_comes_back_at_its_siblings_generation(standalone: Gateway) -> None:
    routes = standalone.log.parent / "manifests" / "routes.yaml"
    for generation, name in ((2, "claude-renamed"), (3, "claude-again")):
        routes.write_text(re.sub(r"model: claude-\S+\n", f"model: {name}\n", routes.read_text(), count=1))
        wait_for(lambda g=generation: standalone.admin_request("GET", "/admin/v1/routing-table")[1]["generation"] == g)
    served = standalone.admin_request("GET", "/admin/v1/routing-table")[1]

    restart_worker(standalone, 1)
    assert standalone.admin_request("GET", "/admin/v1/routing-table")[1] == served
    samples, _ = parse(standalone.metrics())
    assert value(samples, "modelyard_routing_table_generation", worker="0") == 3
    assert value(samples, "modelyard_routing_table_generation", worker="1") == 3
    assert all(get_json(f"{standalone.url}/readyz")[1]["generation"] == 3 for _ in range(20))
    assert loads_of(standalone.log, 1) == 2  # the two first workers'; the restarted one started at 3


def test_workers_that_all_exit_are_restarted_though_the_last_removed_the_socket_folder(gateway: Gateway) -> None:
    first = gateway.workers()
    for pid in first.values():
        os.kill(pid, signal.SIGTERM)  # each stops cleanly and removes its socket; the last one, the folder
    wait_for(lambda: all(gateway.workers()[index] != pid for index, pid in first.items()), timeout=15)
    wait_for(lambda: gateway.admin_request("GET", "/admin/v1/routing-table")[0] == 200, timeout=15)
    assert all(gateway.chat() == 200 for _ in range(6))


def test_sigterm_drains_the_workers_and_leaves_no_orphan(gateway: Gateway) -> None:
    request = slow_stream_request(gateway.url)
    workers = gateway.workers().values()
    with urllib.request.urlopen(request, timeout=30) as response:
        first = response.readline()
        gateway.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: not accepts_connections(gateway.port))  # every worker closed its listener
        rest = response.read()
    gateway.proc.wait(timeout=20)
    assert first.startswith(b"data: ")
    assert rest.rstrip().endswith(b"data: [DONE]")
    assert gateway.proc.returncode == 0
    assert not any(alive(pid) for pid in workers)


def test_workers_exit_when_their_supervisor_is_killed(gateway: Gateway) -> None:
    workers = gateway.workers().values()
    (sockets,) = {Path(socket).parent for socket in worker_sockets(gateway.proc.pid)}
    assert sockets.is_dir()
    gateway.proc.kill()
    gateway.proc.wait(timeout=5)
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10)
    assert not accepts_connections(gateway.port)
    assert not sockets.exists()  # the last worker out removed the killed supervisor's socket folder


def worker_sockets(supervisor: int) -> list[str]:
    """The ``--worker-socket`` paths on the command lines of ``supervisor``'s children."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PPid:\t{supervisor}\n" in status and b"--worker-socket" in argv:
            found.append(argv[argv.index(b"--worker-socket") + 1].decode())
    return found


def test_serve_refuses_fewer_than_one_worker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--table", "t.json", "--workers", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
