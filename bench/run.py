"""Added latency and throughput of the gateway, measured side by side against the upstream it fronts.

Starts ``modelyard simulate`` and ``modelyard serve`` as separate processes on loopback, then, in one run,
times the same requests sent straight to the simulator and through the gateway, and prints both with
their ratio (these machines are noisy: only same-run ratios mean much).

    python bench/run.py [--requests 500] [--concurrency 32] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-modelyard-demo"
#: Sent on every request: the gateway key, and what the Anthropic endpoint requires when called directly.
HEADERS = {"Authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}
BODY = b'{"model": "%s", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def started(*args: str) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "--log-level", "WARNING", *args], cwd=REPO)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.05)
    raise SystemExit(f"{url} never came up")


async def latencies(session: aiohttp.ClientSession, url: str, body: bytes, count: int) -> list[float]:
    """Sequential requests on one connection: per-request wall time in milliseconds."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        async with session.post(url, data=body, headers=HEADERS) as response:
            await response.read()
            assert response.status == 200, response.status
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def throughput(url: str, body: bytes, concurrency: int, seconds: float) -> float:
    """Requests per second with ``concurrency`` clients for ``seconds``."""
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.post(url, data=body, headers=HEADERS) as response:
                    await response.read()
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - start)


async def measure(args: argparse.Namespace, sim: str, gateway: str) -> None:
    cases = [
        ("openai passthrough", f"{sim}/v1/chat/completions", BODY % b"gpt-4o-2024-08-06", "gpt-4o"),
        ("anthropic translated", f"{sim}/v1/messages", BODY % b"claude-sonnet-4-5", "claude-sonnet"),
    ]
    print(
        f"{'case':<22}{'direct p50':>12}{'gateway p50':>13}{'added':>10}{'direct rps':>12}{'gateway rps':>13}{'ratio':>8}"
    )
    for name, direct_url, direct_body, public in cases:
        gateway_body = BODY % public.encode()
        async with aiohttp.ClientSession() as session:
            await latencies(session, direct_url, direct_body, 20)  # warm-up
            await latencies(session, f"{gateway}/v1/chat/completions", gateway_body, 20)
            direct = statistics.median(await latencies(session, direct_url, direct_body, args.requests))
            through = statistics.median(
                await latencies(session, f"{gateway}/v1/chat/completions", gateway_body, args.requests)
            )
        direct_rps = await throughput(direct_url, direct_body, args.concurrency, args.seconds)
        gateway_rps = await throughput(f"{gateway}/v1/chat/completions", gateway_body, args.concurrency, args.seconds)
        print(
            f"{name:<22}{direct:>10.2f}ms{through:>11.2f}ms{through - direct:>8.2f}ms"
            f"{direct_rps:>12.0f}{gateway_rps:>13.0f}{gateway_rps / direct_rps:>8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    sim_port, gw_port = free_port(), free_port()
    sim, gateway = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}"
    with tempfile.TemporaryDirectory() as folder:
        for path in (REPO / "examples" / "standalone").glob("*.yaml"):
            (Path(folder) / path.name).write_text(path.read_text().replace("http://127.0.0.1:9100", sim))
        with (
            started("simulate", "--port", str(sim_port)),
            started("serve", "--manifests", folder, "--host", "127.0.0.1", "--port", str(gw_port)),
        ):
            asyncio.run(wait_ready(f"{sim}/v1/models"))
            asyncio.run(wait_ready(f"{gateway}/readyz"))
            asyncio.run(measure(args, sim, gateway))


if __name__ == "__main__":
    main()
