"""How many worker processes a proxy runs by default: one per CPU its container may use.

A process serves from one core, so a pod needs as many workers as its CPU limit allows; more would only
contend for the same quota (and each costs its own memory).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
DEFAULT_PERIOD = 100_000


def cpu_limit(cpu_max: str | None, available: int) -> int:
    """ceil(quota / period) of a cgroup v2 ``cpu.max`` (``"<quota> <period>"`` in microseconds; ``max``,
    absent or unreadable: no quota), capped by the ``available`` CPUs of this process's affinity mask; at
    least 1."""
    limit = max(available, 1)
    fields = (cpu_max or "").split()
    if not fields or fields[0] == "max":
        return limit
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else DEFAULT_PERIOD
    except ValueError:
        return limit
    if quota <= 0 or period <= 0:
        return limit
    return max(1, min(limit, math.ceil(quota / period)))


def read_cpu_max(cgroup: Path = CGROUP) -> str | None:
    """This container's CPU quota as cgroup v2 writes it; on a cgroup v1 node, its CFS quota and period in
    the same form (a quota of -1 means none)."""
    try:
        return (cgroup / "cpu.max").read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        pass
    try:
        quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text(encoding="ascii").strip()
        period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return f"{quota} {period}"


def default_workers(cgroup: Path = CGROUP) -> int:
    """The CPU limit of this container (see :func:`cpu_limit`), read from the running system."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks on this platform (macOS)
        available = os.cpu_count() or 1
    return cpu_limit(read_cpu_max(cgroup), available)
