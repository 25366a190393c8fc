"""``make bench``: what Modelyard adds over the physical floor and over a minimal Python proxy, in one run.

Three systems answer the same requests side by side: nginx returning a fixed completion (direct, the
floor of this box), a minimal aiohttp passthrough (the floor for a Python proxy), and Modelyard with a
realistic table, called with a plain gateway key and, in the same process, with a consumer's key whose
limits and budgets are counted in a local Redis. The proxy under test is alone on CPU 0; wrk, nginx, the
paced SSE upstream, Redis and this script share CPU 1. Every phase runs in interleaved rounds and reports
medians, so drift on a shared machine hits all systems alike; only same-run differences and ratios mean
much.

    python -m bench.run [--quick] [--rounds 3] [--no-control-plane] [--results bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import control_plane, gateway, phases, report, signing, store, streaming, tokens, wrk
from bench.phases import Bench, Settings, ensure_bench_tools
from bench.procs import (
    LOAD_CPU,
    REPO,
    machine_busy_seconds,
    own_seconds,
    pin_self,
    services,
    wait_until_quiet,
)
from bench.results import FLOOR, MODELYARD, PASSTHROUGH, Case, Memory, Run, Stream
from bench.stats import median

MiB = 1024 * 1024


def _cases(
    latency: dict[str, list[wrk.WrkResult]], rates: dict[str, list[tuple[wrk.WrkResult, float]]]
) -> dict[str, Case]:
    """Each system's latency (median of rounds; added = minus the same round's direct run) and frontier."""
    cases = {}
    nan = float("nan")
    for name, rounds in latency.items():
        floor = latency[FLOOR[name]]
        best = rates.get(name, [])
        top = max(best, key=lambda pair: pair[0].rps)[0] if best else None
        cases[name] = Case(
            p50_ms=median([r.p50_us / 1000 for r in rounds]),
            p99_ms=median([r.p99_us / 1000 for r in rounds]),
            added_p50_ms=median([(r.p50_us - f.p50_us) / 1000 for r, f in zip(rounds, floor, strict=True)]),
            added_p99_ms=median([(r.p99_us - f.p99_us) / 1000 for r, f in zip(rounds, floor, strict=True)]),
            max_rps=median([r.rps for r, _ in best]),
            connections=top.connections if top else 0,
            p99_at_max_ms=top.p99_us / 1000 if top else nan,
            cpu_us_per_request=median([cpu / r.requests * 1e6 for r, cpu in best if r.requests]),
        )
    return cases


def _streams(found: dict[str, streaming.StreamStats]) -> dict[str, Stream]:
    """Each streaming system's percentiles, and the differences to its direct run."""
    out = {}
    for name, stats in found.items():
        floor = found[FLOOR[name]]
        out[name] = Stream(
            ttft_p50_ms=stats.ttft_ms(50),
            ttft_p99_ms=stats.ttft_ms(99),
            added_ttft_p50_ms=stats.ttft_ms(50) - floor.ttft_ms(50),
            added_ttft_p99_ms=stats.ttft_ms(99) - floor.ttft_ms(99),
            transit_p50_us=stats.transit_us(50),
            transit_p99_us=stats.transit_us(99),
            added_chunk_p50_us=stats.transit_us(50) - floor.transit_us(50),
            added_chunk_p99_us=stats.transit_us(99) - floor.transit_us(99),
            cpu_us_per_chunk=stats.cpu_per_chunk_us(),
            streams=len(stats.ttft_ns),
            failures=stats.failures,
        )
    return out


def _step(title: str) -> Callable[[], None]:
    """Print a phase title; the returned callable prints how long it took."""
    print(f"- {title} ...", end="", flush=True)
    started = time.monotonic()
    return lambda: print(f" {time.monotonic() - started:.0f}s", flush=True)


def measure(settings: Settings, busy_before: float) -> Run:
    """The whole benchmark; ``busy_before`` is how busy the machine was just before (for the report)."""
    started, busy, own = time.monotonic(), machine_busy_seconds(), own_seconds()
    run = Run(machine=report.machine_info(), settings={})
    run.machine["machine busy just before the run"] = f"{busy_before:.0%}"
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp, services() as running:
        bench = Bench(settings, Path(tmp), running)
        redis = ", Redis" if gateway.counts_in_store() else ""
        done = _step(f"starting nginx, the paced SSE upstream, two passthroughs{redis} and Modelyard (50 routes)")
        systems = bench.start()
        passthrough, gw = systems.passthrough, systems.gateway
        bench.check()
        counter_store = systems.counter_store
        scripts_before = store.script_stats(counter_store.url) if counter_store else (0, 0.0)
        time.sleep(1)
        proxies = {PASSTHROUGH: passthrough, MODELYARD: gw.service}
        served = {PASSTHROUGH: lambda: bench.passthrough_requests, MODELYARD: lambda: bench.gateway_requests}
        memory: dict[str, list[tuple[str, float, int]]] = {name: [] for name in proxies}

        def checkpoint(when: str) -> None:
            for name, service in proxies.items():
                memory[name].append((when, service.rss_bytes() / MiB, served[name]()))

        checkpoint("idle")
        run.settings["metrics endpoint"] = gw.metrics_endpoint() or "none found (admin port and public /metrics)"
        run.settings["consumer counters"] = (
            "redis-server on loopback, no persistence (`serve --store-url`)"
            if counter_store
            else "not measured: this build has no `serve --store-url`"
        )
        done()
        done = _step(f"latency at 1 connection, {settings.rounds} rounds x {len(bench.targets)} targets")
        latency = bench.latency()
        checkpoint("after the latency phase")
        done()
        done = _step(f"throughput at {'/'.join(map(str, settings.levels))} connections")
        rates = bench.throughput()
        done()
        done = _step(f"streaming, {3 * settings.streams} paced and {20 * settings.rounds} unpaced streams per target")
        run.streams = _streams(phases.streams(bench, systems))
        run.store = bench.store_use(counter_store, scripts_before) if counter_store else None
        checkpoint("after throughput and streams")
        done()
        done = _step(f"Modelyard up to {settings.steady_requests:,} requests for the memory check")
        bench.top_up()
        time.sleep(1)
        checkpoint("at the end")
        run.cases = _cases(latency, rates)
        run.memory = {name: Memory(tuple(points)) for name, points in memory.items()}
        done()
    if settings.control_plane:
        done = _step("control plane: compile 2,000 routes, push to 10 proxies")
        with tempfile.TemporaryDirectory(prefix="modelyard-bench-cp-") as tmp:
            run.control_plane = control_plane.measure(Path(tmp), rounds=settings.rounds)
        done()
    done = _step("SigV4 signing of a Bedrock request: botocore's signer and the gateway's")
    run.signing = signing.measure(rounds=settings.rounds)
    done()
    done = _step("Vertex AI access tokens: the authoriser's CPU per call with its token cached")
    run.tokens = tokens.measure(rounds=settings.rounds)
    done()
    run.seconds = time.monotonic() - started
    others = (machine_busy_seconds() - busy) - (own_seconds() - own)
    run.machine["other processes' CPU during the run"] = (
        f"{max(0.0, others):.0f} core-seconds ({max(0.0, others) / run.seconds:.0%} of a core on average)"
    )
    run.settings.update(
        {
            "rounds": str(settings.rounds),
            "latency": f"{settings.latency_seconds:g} s per target per round, 1 connection",
            "throughput": f"{'/'.join(map(str, settings.levels))} connections, {settings.level_seconds:g} s each",
            "streams": (
                f"per target: {settings.streams} of {settings.chunks} deltas and {2 * settings.streams} of 2, first delta"
                f" after {settings.first_ms:g} ms then every {settings.interval_ms:g} ms; CPU per chunk from"
                f" {10 * settings.rounds} unpaced streams of 2 and {10 * settings.rounds} of {2 + streaming.UNPACED_EXTRA}"
            ),
            "gateway workers": "--workers 1"
            if "--workers" in gateway.serve_help()
            else "one process (no --workers option in this build)",
            "telemetry env": " ".join(f"{k}={v}" for k, v in gateway.telemetry_env("<nginx>").items())
            + " (spans to a no-op exporter)",
        }
    )
    return run


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="short phases, for trying the benchmark out")
    parser.add_argument("--no-control-plane", action="store_true", help="skip the compile and push timings")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md", help="where to write the report")
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    parser.add_argument(
        "--wait-quiet", type=float, default=0, metavar="SECONDS", help="first wait up to this long for an idle machine"
    )
    args = parser.parse_args()
    ensure_bench_tools()
    pin_self(LOAD_CPU)
    quick = args.quick
    settings = Settings(
        rounds=1 if quick else args.rounds,
        latency_seconds=1 if quick else 3,
        levels=(2, 8) if quick else (2, 8, 32),
        level_seconds=1 if quick else 2,
        streams=10 if quick else 60,
        chunks=24,
        first_ms=2.0,
        interval_ms=3.0,
        steady_requests=20_000 if quick else 100_000,
        control_plane=not args.no_control_plane,
    )
    busy = wait_until_quiet(args.wait_quiet)
    if busy > 0.1:
        print(f"warning: the machine is {busy:.0%} busy before the run; other processes will blur the numbers")
    result = measure(settings, busy)
    text = report.render(result)
    print()
    print(text)
    if not args.no_write:
        report.write(args.results, text)
        print(f"written to {args.results}")


if __name__ == "__main__":
    main()
