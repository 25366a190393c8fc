"""The counter store consumers' limits and budgets are kept in: a local ``redis-server``, as a pod's sidecar or
a same-zone Redis would be, pinned to the load core beside nginx and wrk.

Persistence is off (no snapshots, no append-only file): the benchmark measures the round trips a request
pays, not the disk.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.procs import LOAD_CPU, Service, free_port, pinned, tool

PACKAGE = "redis-server"


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
