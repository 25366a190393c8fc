"""What each optional per-request feature of Modelyard costs: the benchmarked gateway, then features switched
off one at a time (cumulatively), next to the minimal passthrough. Configuration only, no code changes, so
each step's difference is evidence for what to optimise (``bench/PROFILE.md``). Each configuration is
warmed up first (connection pools, lazily built state, the breaker's window).

    python -m bench.ablate [--warmup 15] [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from bench import gateway, wrk
from bench.phases import MESSAGES, json_body
from bench.procs import LOAD_CPU, PROXY_CPU, Service, ensure_tools, free_port, pin_self, pinned, python_module, services
from bench.stats import median
from bench.upstreams import start_nginx


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One gateway configuration."""

    title: str
    tracing: bool
    log_level: str
    access_log: bool
    export: bool = False


STEPS = (
    Step("+ spans exported over OTLP/HTTP and the access log (MODELYARD_ACCESS_LOG=1)", True, "INFO", True, True),
    Step("as benchmarked: spans built and batched (no-op exporter), INFO audit line", True, "INFO", False),
    Step("- tracing (no endpoint: the API's no-op tracer provider)", False, "INFO", False),
    Step("- audit line (WARNING)", False, "WARNING", False),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """What one configuration measured (medians of rounds)."""

    title: str
    p50_ms: float
    p99_ms: float
    rps: float
    cpu_us: float


def _measure(title: str, target: wrk.Target, service: Service, args: argparse.Namespace) -> Row:
    wrk.run(target, 4, args.warmup)
    c1, c4 = [], []
    for _ in range(args.rounds):
        before = service.cpu_seconds()
        loaded = wrk.run(target, 4, args.seconds)
        c4.append((loaded.rps, (service.cpu_seconds() - before) / loaded.requests * 1e6))
        c1.append(wrk.run(target, 1, args.seconds))
    return Row(
        title,
        p50_ms=median([r.p50_us / 1000 for r in c1]),
        p99_ms=median([r.p99_us / 1000 for r in c1]),
        rps=median([rps for rps, _ in c4]),
        cpu_us=median([cpu for _, cpu in c4]),
    )


def ablate(args: argparse.Namespace) -> list[Row]:
    """Every step, then the passthrough floor."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="modelyard-ablate-") as tmp, services() as running:
        folder = Path(tmp)
        nginx_port = free_port()
        start_nginx(folder / "nginx", nginx_port, running)
        upstream = f"http://127.0.0.1:{nginx_port}"
        body = folder / "chat.json"
        body.write_bytes(json_body(model=gateway.CHAT_MODEL, messages=MESSAGES, max_tokens=64))
        for index, step in enumerate(STEPS):
            table = gateway.compile_table(gateway.inventory(50, upstream, upstream))
            gw = gateway.start(
                table,
                folder,
                (free_port(), free_port()),
                upstream if step.tracing else None,
                running,
                log_level=step.log_level,
                env={"MODELYARD_ACCESS_LOG": "1" if step.access_log else "0"},
                name=f"modelyard-{index}",
                export=step.export,
            )
            target = wrk.Target(step.title, f"{gw.url}/v1/chat/completions", body, gateway.BENCH_KEY)
            rows.append(_measure(step.title, target, gw.service, args))
            gw.service.stop()
            print(_line(rows[-1]), flush=True)
        port = free_port()
        argv = python_module("bench.passthrough", "--port", str(port), "--upstream", upstream)
        passthrough = Service("passthrough", pinned(PROXY_CPU, argv), folder)
        running.append(passthrough)
        passthrough.wait_port(port)
        target = wrk.Target("passthrough", f"http://127.0.0.1:{port}/v1/chat/completions", body)
        rows.append(_measure("minimal aiohttp passthrough (the floor)", target, passthrough, args))
        print(_line(rows[-1]), flush=True)
    return rows


def _line(row: Row) -> str:
    return f"| {row.title} | {row.p50_ms:.2f} ms | {row.p99_ms:.2f} ms | {row.rps:,.0f} | {row.cpu_us:,.0f} µs |"


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=15, help="seconds of load before measuring each step")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ensure_tools("wrk", "nginx")
    pin_self(LOAD_CPU)
    print(
        "| configuration (cumulative) | p50 at 1 connection | p99 at 1 connection | requests/s at 4 | CPU per request |"
    )
    print("|---|---:|---:|---:|---:|")
    ablate(args)


if __name__ == "__main__":
    main()
