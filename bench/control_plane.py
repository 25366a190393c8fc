"""The control plane's two costs: compiling a large inventory, and pushing the table to a fleet of proxies.

Compilation is timed in-process on 2,000 generated routes. The push starts 10 real proxies (operator
mode, admin port open, no table yet), then times concurrent ``PUT``s of the sealed table to all of
them until every one has answered 200. On a 2-core box those 10 proxies share two cores, where a real
fleet has a pod each, so the time one proxy takes alone is reported too.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from bench import gateway
from bench.procs import Service, free_port, python_module, services
from bench.results import ControlPlane
from bench.stats import median
from modelyard_routing import RoutingTable
from modelyard_routing.push import ADMIN_TABLE_PATH

ROUTES = 2000
PROXIES = 10


async def _push(session: aiohttp.ClientSession, port: int, body: bytes) -> None:
    url = f"http://127.0.0.1:{port}{ADMIN_TABLE_PATH}"
    headers = {"Authorization": f"Bearer {gateway.ADMIN_TOKEN}", "Content-Type": "application/json"}
    async with session.put(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise SystemExit(f"push to {port} refused ({response.status}): {await response.text()}")


async def _timed_push(ports: list[int], body: bytes) -> float:
    """Seconds until every proxy in ``ports`` has accepted ``body``."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(_push(session, port, body) for port in ports))
        return time.perf_counter() - start


def measure(folder: Path, rounds: int = 3) -> ControlPlane:
    """Compile 2,000 routes ``rounds`` times, then push ``rounds`` new generations to 10 proxies."""
    inventory = gateway.inventory(ROUTES, "http://127.0.0.1:9", "http://127.0.0.1:9")
    compile_times = []
    table: RoutingTable | None = None
    for _ in range(rounds):
        start = time.perf_counter()
        table = gateway.compile_table(inventory)
        compile_times.append(time.perf_counter() - start)
    assert table is not None
    folder.mkdir(parents=True, exist_ok=True)
    token_file = folder / "admin-token"
    token_file.write_text(gateway.ADMIN_TOKEN)
    with services() as started:
        ports = []
        for index in range(PROXIES):
            port, admin = free_port(), free_port()
            args = ["--log-level", "WARNING", "serve", "--table", str(folder / "absent.json"), "--host", "127.0.0.1"]
            args += ["--port", str(port), "--admin-port", str(admin), "--admin-token-file", str(token_file)]
            args += ["--workers", "1"]  # one process per proxy, as the gateway benchmark runs it
            started.append(Service(f"push-proxy-{index}", python_module("modelyard", *args), folder))
            ports.append(admin)
        for service, port in zip(started, ports, strict=True):
            service.wait_port(port, timeout=120)
        generation = 1
        one, everyone = [], []
        for _ in range(rounds):
            generation += 1
            one.append(asyncio.run(_timed_push(ports[:1], table.sealed(generation).to_wire())))
            generation += 1
            everyone.append(asyncio.run(_timed_push(ports, table.sealed(generation).to_wire())))
    return ControlPlane(
        routes=len(table.routes),
        compile_s=median(compile_times),
        wire_bytes=len(table.to_wire()),
        proxies=PROXIES,
        push_all_s=median(everyone),
        push_one_s=median(one),
    )
