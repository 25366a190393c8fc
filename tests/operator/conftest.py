"""Fixtures for the operator tests: the emulated cluster, proxy processes, the operator process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.operator.cluster import Cluster, OperatorProcess, Process, ProxyProcess


def _show(processes: list[Process]) -> None:
    # Printed at teardown: pytest shows it only when the test failed.
    for process in processes:
        print(f"----- {process.name} -----\n{process.output()[-20000:]}")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """kmock's Kubernetes emulator on a loopback port, with the CRDs declared."""
    async with Cluster.running(tmp_path) as emulated:
        yield emulated


@pytest.fixture
async def proxies(cluster: Cluster, tmp_path: Path) -> AsyncIterator[list[ProxyProcess]]:
    """Two proxy processes in operator mode, each behind a ready EndpointSlice of the proxy Service."""
    started = [ProxyProcess(f"proxy-{letter}", tmp_path) for letter in "ab"]
    await asyncio.gather(*(proxy.start() for proxy in started))
    for proxy in started:
        await cluster.add_proxy_endpoint(proxy)
    yield started
    await asyncio.gather(*(proxy.stop() for proxy in started))
    _show(list(started))


@pytest.fixture
async def operator(cluster: Cluster, tmp_path: Path) -> AsyncIterator[OperatorProcess]:
    """The operator process, serving routes of the ``default`` namespace."""
    process = OperatorProcess(cluster, tmp_path)
    await process.start()
    yield process
    await process.stop()
    _show([process])
