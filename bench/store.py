"""The counter store consumers' limits and budgets are kept in: a local ``redis-server``, as a pod's sidecar or
a same-zone Redis would be, pinned to the load core beside nginx and wrk.

Persistence is off (no snapshots, no append-only file): the benchmark measures the round trips a request
pays, not the disk.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import redis

from bench.procs import LOAD_CPU, Service, free_port, pinned, tool

PACKAGE = "redis-server"
#: What the gateway logs when a store call overran its timeout and it counts in the process for a while.
OUTAGE_LOG = "counter store unreachable"


@dataclasses.dataclass(frozen=True, slots=True)
class Store:
    """A running store and the URL the gateway reaches it at."""

    service: Service
    url: str


def start(folder: Path, running: list[Service]) -> Store:
    """Start ``redis-server`` on a free loopback port; the service joins ``running``."""
    port = free_port()
    argv = [tool(PACKAGE), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(folder), "--protected-mode", "yes"]
    service = Service("counter-store", pinned(LOAD_CPU, argv), folder)
    running.append(service)
    service.wait_port(port)
    return Store(service, f"redis://127.0.0.1:{port}/0")


def script_stats(url: str) -> tuple[int, float]:
    """Lua script calls the store has run since it started, and its time in them (microseconds)."""
    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    scripts = [value for name, value in stats.items() if name in ("cmdstat_eval", "cmdstat_evalsha")]
    return sum(int(value["calls"]) for value in scripts), sum(float(value["usec"]) for value in scripts)
