"""The load generator: Debian's ``wrk`` (C, epoll) driving fixed POSTs, pinned to the load core.

A Python load generator saturates long before a proxy does and adds its own jitter to every sample, so
latency and throughput come from wrk; ``post.lua`` only sets up the request and prints the result.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import orjson

from bench.procs import LOAD_CPU, pinned, tool

SCRIPT = Path(__file__).with_name("post.lua")
MARKER = "WRK_JSON "


@dataclasses.dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run: requests, failures and latency percentiles (microseconds, as wrk records them)."""

    connections: int
    requests: int
    seconds: float
    errors: int
    p50_us: float
    p99_us: float
    mean_us: float

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where and what to POST: the URL, the body file, and the gateway key (empty for none)."""

    name: str
    url: str
    body: Path
    key: str = ""


def run(target: Target, connections: int, seconds: int) -> WrkResult:
    """One wrk run with one thread and ``connections`` keep-alive connections."""
    argv = [
        tool("wrk"),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        target.url,
        "--",
        str(target.body),
        target.key,
    ]
    done = subprocess.run(pinned(LOAD_CPU, argv), capture_output=True, text=True, check=False)
    line = next((line for line in done.stdout.splitlines() if line.startswith(MARKER)), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk against {target.name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = orjson.loads(line.removeprefix(MARKER))
    return WrkResult(
        connections=connections,
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        errors=sum(int(v) for v in data["errors"].values()),
        p50_us=float(data["p50_us"]),
        p99_us=float(data["p99_us"]),
        mean_us=float(data["mean_us"]),
    )
