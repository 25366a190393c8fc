"""The default worker count: the cgroup CPU quota, rounded up, capped by the CPUs the process may use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard_proxy.base.cpus import cpu_limit, default_workers, read_cpu_max
from modelyard_proxy.base.settings import ProxySettings


@pytest.mark.parametrize(
    ("cpu_max", "available", "expected"),
    [
        ("max 100000\n", 8, 8),  # no quota: every CPU of the affinity mask
        ("200000 100000\n", 8, 2),
        ("150000 100000\n", 8, 2),  # 1.5 CPUs round up: the half core is still worth a worker
        ("50000 100000\n", 8, 1),  # under one CPU is still one worker
        ("1000 100000\n", 8, 1),
        ("800000 100000\n", 4, 4),  # a quota above the CPUs it may run on is capped by them
        ("400000 50000\n", 16, 8),  # another period
        ("300000\n", 8, 3),  # no period: the kernel's default of 100 ms
        (None, 6, 6),  # no cgroup v2 file
        ("", 6, 6),
        ("garbage here\n", 6, 6),
        ("-1 100000\n", 6, 6),
        ("max 100000\n", 0, 1),  # at least one, whatever the platform says
    ],
)
def test_cpu_limit(cpu_max: str | None, available: int, expected: int) -> None:
    assert cpu_limit(cpu_max, available) == expected


def test_default_workers_reads_the_cgroup_quota(tmp_path: Path) -> None:
    available = len(os.sched_getaffinity(0))
    assert default_workers(tmp_path) == available  # no cgroup files at all
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # cgroup v1 without a quota
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert read_cpu_max(tmp_path) == "-1 100000"
    assert default_workers(tmp_path) == available
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")  # cgroup v1, half a CPU
    assert default_workers(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("100000 100000\n")  # cgroup v2 wins where it exists
    assert default_workers(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert default_workers(tmp_path) == available


def test_settings_take_the_worker_count_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_WORKERS", "3")
    assert ProxySettings().workers == 3
    monkeypatch.setenv("MODELYARD_WORKERS", "0")  # 0 means the default, as unset does
    assert ProxySettings().workers == default_workers()
