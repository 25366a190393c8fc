"""The report: the machine and versions, the side-by-side table, and each target with its verdict.

Rendered as Markdown, which reads fine in a terminal and is what ``bench/RESULTS.md`` holds.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import shutil
import subprocess
import sysconfig
from pathlib import Path

from bench import store
from bench.procs import REPO, pinning_available, tool
from bench.results import (
    CONSUMER_ADDED_P50_MS,
    CONSUMER_THROUGHPUT_SHARE,
    DIRECT,
    DIRECT_ANTHROPIC,
    FLAT_MB,
    MESSAGES_PASSTHROUGH,
    MESSAGES_TO_OPENAI,
    MODELYARD,
    MODELYARD_ANTHROPIC,
    MODELYARD_CONSUMER,
    P99_BOUND_MS,
    PASSTHROUGH,
    RESPONSES_PASSTHROUGH,
    RESPONSES_TO_ANTHROPIC,
    TRANSLATION_CPU_SHARE,
    Case,
    Run,
    StoreUse,
)

COLUMNS = (
    (DIRECT, "direct (nginx)"),
    (PASSTHROUGH, "minimal aiohttp passthrough"),
    (MODELYARD, "Modelyard"),
    (MODELYARD_CONSUMER, "Modelyard, consumer with limits and budgets"),
    (DIRECT_ANTHROPIC, "direct Anthropic (nginx)"),
    (MODELYARD_ANTHROPIC, "Modelyard → Anthropic"),
    (MESSAGES_PASSTHROUGH, "Messages → Anthropic (pass-through)"),
    (MESSAGES_TO_OPENAI, "Messages → OpenAI"),
    (RESPONSES_PASSTHROUGH, "Responses → OpenAI (pass-through)"),
    (RESPONSES_TO_ANTHROPIC, "Responses → Anthropic"),
)


def _command(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else "?"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "?"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    """What the numbers depend on: cores, CPU, kernel, interpreter build, library and tool versions."""
    config = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    build = "PGO/LTO" if "--enable-optimizations" in config else "no PGO/LTO"
    if "--enable-shared" in config:
        build += ", shared libpython"
    commit = _command(["git", "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", ":!bench"], capture_output=True, text=True, check=False, cwd=REPO
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" (with uncommitted changes outside bench/)" if dirty.stdout.strip() else ""),
        "cores": f"{os.cpu_count()} ({'proxy pinned to CPU 0; wrk, upstreams and client on CPU 1' if pinning_available() else 'NOT pinned: fewer than 2 cores or no taskset'})",
        "CPU": _cpu_model(),
        "kernel": platform.release(),
        "Python": f"{platform.python_version()} ({build})",
        "aiohttp": _version("aiohttp"),
        "uvloop": _version("uvloop"),
        "orjson": _version("orjson"),
        "pydantic": _version("pydantic"),
        "wrk": _command([tool("wrk"), "-v"]).split(" [")[0],
        "nginx": _command([tool("nginx"), "-v"]).partition(": ")[2],
        "redis-server": _redis_version(),
    }


def _redis_version() -> str:
    """``7.0.15`` from ``Redis server v=7.0.15 sha=...``; the store is optional, so its absence is not an error."""
    if shutil.which(store.PACKAGE) is None:
        return "not installed"
    words = _command([store.PACKAGE, "--version"]).split()
    return next((word.removeprefix("v=") for word in words if word.startswith("v=")), "?")


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f} ms" if abs(value) < 10 else f"{value:.1f} ms"


def _us(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f} µs"


def _ratio(value: float, floor: float) -> str:
    if math.isnan(value) or math.isnan(floor) or floor <= 0:
        return ""
    return f" ({value / floor:.2f}x)"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _side_by_side(run: Run) -> list[str]:
    columns = [(name, title) for name, title in COLUMNS if name in run.cases or name in run.streams]
    names = [name for name, _ in columns]
    rows = ["| | " + " | ".join(title for _, title in columns) + " |", "|---|" + "---:|" * len(columns)]

    def row(label: str, cells: dict[str, str]) -> None:
        rows.append(f"| {label} | " + " | ".join(cells.get(name, "") for name in names) + " |")

    cases = run.cases
    pt = cases.get(PASSTHROUGH)
    if cases:
        row("p50 at 1 connection", {n: _ms(c.p50_ms) for n, c in cases.items()})
        row("p99 at 1 connection", {n: _ms(c.p99_ms) for n, c in cases.items()})
        added = {
            n: _ms(c.added_p50_ms) + (_ratio(c.added_p50_ms, pt.added_p50_ms) if pt and n != DIRECT_ANTHROPIC else "")
            for n, c in cases.items()
            if n not in (DIRECT, DIRECT_ANTHROPIC)
        }
        row("**added p50** at 1 connection (x passthrough)", added)
        row(
            "**added p99** at 1 connection",
            {n: _ms(c.added_p99_ms) for n, c in cases.items() if n not in (DIRECT, DIRECT_ANTHROPIC)},
        )
        row(
            f"**max requests/s** with p99 < {P99_BOUND_MS:g} ms (x passthrough)",
            {
                n: ("- (as direct)" if math.isnan(c.max_rps) else f"{c.max_rps:,.0f}")
                + (_ratio(c.max_rps, pt.max_rps) if pt and n not in (DIRECT, DIRECT_ANTHROPIC) else "")
                for n, c in cases.items()
            },
        )
        row(
            "… at connections (its p99)",
            {n: f"{c.connections} ({_ms(c.p99_at_max_ms)})" for n, c in cases.items() if c.connections},
        )
        row("CPU per request at that rate (nginx for direct)", {n: _us(c.cpu_us_per_request) for n, c in cases.items()})
    use = run.store
    if use:
        row(
            "counter store: script calls per request (2: every one admitted and settled there)",
            {MODELYARD_CONSUMER: f"{use.calls_per_request:.2f}"},
        )
        row(
            "counter store: its own time per script call (per request)",
            {
                MODELYARD_CONSUMER: f"{_us(use.us_per_call)} ({_us(use.script_us / use.requests if use.requests else float('nan'))})"
            },
        )
        row(
            "counter store: times the gateway gave up on it (store call timed out)",
            {MODELYARD_CONSUMER: str(use.outages)},
        )
    streams = run.streams
    if streams:
        row(
            "stream: time to first token p50 / p99",
            {n: f"{_ms(s.ttft_p50_ms)} / {_ms(s.ttft_p99_ms)}" for n, s in streams.items()},
        )
        row(
            "stream: **added TTFT** p50 / p99",
            {
                n: f"{_ms(s.added_ttft_p50_ms)} / {_ms(s.added_ttft_p99_ms)}"
                for n, s in streams.items()
                if n not in (DIRECT, DIRECT_ANTHROPIC)
            },
        )
        row(
            "stream: chunk transit p50 / p99",
            {n: f"{_us(s.transit_p50_us)} / {_us(s.transit_p99_us)}" for n, s in streams.items()},
        )
        row(
            "stream: **added per chunk** p50 / p99",
            {
                n: f"{_us(s.added_chunk_p50_us)} / {_us(s.added_chunk_p99_us)}"
                for n, s in streams.items()
                if n not in (DIRECT, DIRECT_ANTHROPIC)
            },
        )
        row(
            "stream: proxy CPU per chunk (chunks back to back)",
            {n: _us(s.cpu_us_per_chunk) for n, s in streams.items() if n not in (DIRECT, DIRECT_ANTHROPIC)},
        )
        row("stream: streams measured (failed)", {n: f"{s.streams} ({s.failures})" for n, s in streams.items()})
    memory = run.memory
    if memory:
        first = next(iter(memory.values()))
        for index, (when, _, _) in enumerate(first.checkpoints):
            label = "resident memory idle" if index == 0 else f"… {when} (requests served)"
            cells = {n: f"{m.checkpoints[index][1]:.1f} MB" for n, m in memory.items()}
            if index:
                cells = {n: f"{cells[n]} ({m.checkpoints[index][2]:,})" for n, m in memory.items()}
            row(label, cells)
    return rows


def _targets(run: Run) -> list[str]:
    rows = ["| target | measured | verdict |", "|---|---|---|"]
    cases, streams = run.cases, run.streams
    my, pt, claude = cases.get(MODELYARD), cases.get(PASSTHROUGH), cases.get(MODELYARD_ANTHROPIC)
    if my and pt:
        limit = 1.5 * pt.added_p50_ms
        rows.append(
            f"| added p50 at 1 connection ≤ 1.5x the passthrough's ({_ms(limit)}) | {_ms(my.added_p50_ms)}{_ratio(my.added_p50_ms, pt.added_p50_ms)} | {_verdict(my.added_p50_ms <= limit)} |"
        )
        rows.append(f"| added p99 at 1 connection ≤ 2 ms | {_ms(my.added_p99_ms)} | {_verdict(my.added_p99_ms <= 2)} |")
        share = my.max_rps / pt.max_rps if pt.max_rps else float("nan")
        rows.append(
            f"| throughput ≥ 60% of the passthrough's ({pt.max_rps:,.0f}/s) | {my.max_rps:,.0f}/s = {share:.0%} | {_verdict(share >= 0.6)} |"
        )
    consumer = cases.get(MODELYARD_CONSUMER)
    if my and consumer:
        rows += _consumer_targets(my, consumer, run.store)
    my_s = streams.get(MODELYARD)
    if my_s:
        rows.append(
            f"| streaming: added TTFT p99 ≤ 2 ms | {_ms(my_s.added_ttft_p99_ms)} | {_verdict(my_s.added_ttft_p99_ms <= 2)} |"
        )
        pt_s = streams.get(PASSTHROUGH)
        floor = pt_s.added_chunk_p50_us if pt_s else float("nan")
        own = my_s.added_chunk_p50_us - floor
        rows.append(
            "| streaming: per-chunk overhead ≤ 50 µs: Modelyard's own, beyond what the passthrough floor adds"
            f" | {_us(own)} ({_us(my_s.added_chunk_p50_us)} over direct, of which the passthrough floor"
            f" {_us(floor)}); CPU {_us(my_s.cpu_us_per_chunk)} per chunk | {_verdict(own <= 50)} |"
        )
    if my and claude:
        ratio = claude.cpu_us_per_request / my.cpu_us_per_request
        rows.append(
            "| Anthropic translation ≤ 1.5x passthrough CPU per request (Modelyard's Anthropic route vs its"
            f" OpenAI passthrough route) | {_us(claude.cpu_us_per_request)} vs {_us(my.cpu_us_per_request)}"
            f" = {ratio:.2f}x | {_verdict(ratio <= 1.5)} |"
        )
    if my:
        rows += _protocol_targets(my, cases)
    mem = run.memory.get(MODELYARD)
    if mem:
        steady = mem.final_mb <= 100 and mem.growth_mb <= FLAT_MB
        rows.append(
            f"| memory ≤ 100 MB resident, no growth over 100k requests | {mem.final_mb:.0f} MB after {mem.final_requests:,}; {mem.growth_mb:+.1f} MB from {mem.growth_from:,} on (flat: within {FLAT_MB:g} MB) | {_verdict(steady)} |"
        )
    cp = run.control_plane
    if cp:
        rows.append(f"| compile {cp.routes:,} routes < 1 s | {cp.compile_s:.2f} s | {_verdict(cp.compile_s < 1)} |")
        rows.append(
            f"| push them ({cp.wire_bytes / 1e6:.1f} MB) to {cp.proxies} proxies < 2 s | {cp.push_all_s:.2f} s (one proxy alone: {cp.push_one_s:.2f} s) | {_verdict(cp.push_all_s < 2)} |"
        )
    if (signing := run.signing) is not None:
        rows.append(
            f"| Bedrock SigV4 signing ≤ {signing.budget_us:g} µs CPU per request | {_us(signing.gateway_us)}"
            f" (botocore's SigV4Auth: {_us(signing.botocore_us)}, {signing.ratio:.2f}x) | {_verdict(signing.met)} |"
        )
    if (tokens := run.tokens) is not None:
        rows.append(
            f"| Vertex AI token handling ≤ {tokens.budget_us:g} µs CPU per request (token cached) |"
            f" {tokens.cached_us:.2f} µs | {_verdict(tokens.met)} |"
        )
    return rows


def _protocol_targets(my: Case, cases: dict[str, Case]) -> list[str]:
    """Messages and Responses: each pass-through against Chat's, each translation against its pass-through."""
    rows = []
    for name, label in ((MESSAGES_PASSTHROUGH, "Messages"), (RESPONSES_PASSTHROUGH, "Responses")):
        if (case := cases.get(name)) is not None:
            ratio = case.cpu_us_per_request / my.cpu_us_per_request
            rows.append(
                f"| {label} pass-through CPU per request ≤ Chat Completions pass-through's"
                f" | {_us(case.cpu_us_per_request)} vs {_us(my.cpu_us_per_request)} = {ratio:.2f}x"
                f" | {_verdict(ratio <= 1)} |"
            )
    for name, native, label in (
        (MESSAGES_TO_OPENAI, MESSAGES_PASSTHROUGH, "Messages → OpenAI"),
        (RESPONSES_TO_ANTHROPIC, RESPONSES_PASSTHROUGH, "Responses → Anthropic"),
    ):
        translated, passed = cases.get(name), cases.get(native)
        if translated is None or passed is None:
            continue
        ratio = translated.cpu_us_per_request / passed.cpu_us_per_request
        chat = translated.cpu_us_per_request / my.cpu_us_per_request
        rows.append(
            f"| {label} translation ≤ {TRANSLATION_CPU_SHARE:g}x pass-through CPU per request (vs the same protocol's"
            f" pass-through; vs Chat's: {chat:.2f}x) | {_us(translated.cpu_us_per_request)} vs"
            f" {_us(passed.cpu_us_per_request)} = {ratio:.2f}x | {_verdict(ratio <= TRANSLATION_CPU_SHARE)} |"
        )
    return rows


def _consumer_targets(my: Case, consumer: Case, use: StoreUse | None) -> list[str]:
    """What a consumer's limits and budgets cost over a plain key on the same route of the same process."""
    added = consumer.added_p50_ms - my.added_p50_ms
    share = consumer.max_rps / my.max_rps if my.max_rps else float("nan")
    caveat = ""
    if use and use.outages:
        caveat = (
            f"; the store timed out {use.outages} time(s) and {1 - use.calls_per_request / 2:.0%} of the requests"
            " were counted in the process instead"
        )
    return [
        f"| limits and budgets: added p50 at 1 connection ≤ Modelyard's + {CONSUMER_ADDED_P50_MS:g} ms"
        f" ({_ms(my.added_p50_ms + CONSUMER_ADDED_P50_MS)}) | {_ms(consumer.added_p50_ms)} = {added:+.2f} ms"
        f" | {_verdict(added <= CONSUMER_ADDED_P50_MS)} |",
        f"| limits and budgets: throughput ≥ {CONSUMER_THROUGHPUT_SHARE:.0%} of Modelyard's ({my.max_rps:,.0f}/s)"
        f" | {consumer.max_rps:,.0f}/s = {share:.0%}; CPU {_us(consumer.cpu_us_per_request)} per request vs"
        f" {_us(my.cpu_us_per_request)}{caveat} | {_verdict(share >= CONSUMER_THROUGHPUT_SHARE)} |",
    ]


def render(run: Run) -> str:
    """The whole report as Markdown."""
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run`); method in [`bench/run.py`](run.py), hot spots and what to",
        "change in [`PROFILE.md`](PROFILE.md). Added = the system minus the direct run of the same round (median of",
        "rounds); ratios are to the minimal aiohttp passthrough measured in the same run.",
        "",
        "## Targets (one worker)",
        "",
        *_targets(run),
        "",
        "## Side by side",
        "",
        *_side_by_side(run),
        "",
        "Modelyard: operator mode (`serve --table` with the admin port), 50 routes each with a fallback target,",
        "retries, deadlines, a circuit breaker and context windows; 21 gateway keys; metrics on; tracing on with",
        "every span sampled, batched and handed to a no-op exporter (`bench/traced_gateway.py`; `python -m",
        "bench.ablate` measures real OTLP export on top); INFO logging with the audit line on and the access log",
        "off (the shipped defaults), written to a file. The OpenAI route's upstream model is its public name, so",
        "bodies pass through untouched; the Anthropic route translates both ways. The consumer column is the same",
        "process and route called with a ModelConsumer's key (every model; limits and day and month budgets too",
        "high ever to refuse), so each request is admitted with one Lua script on the counter store (a local",
        "redis-server on the load core) that reserves its worst-case tokens and cost, and settled after with a",
        "second; its targets compare it with the plain-key Modelyard column of the same run.",
        "",
        "Chunk transit is the upstream's write to the client's read of one SSE chunk (the targets take turns stream",
        "by stream). On this VM it drifts by tens of microseconds between runs, the direct floor included",
        "(cross-core wake-ups); the proxy CPU per chunk, with chunks arriving back to back, is the steadier",
        "measure of a proxy's own per-chunk work.",
        "",
        "## Machine and settings",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in run.machine.items()),
        *(f"| {key} | {value} |" for key, value in run.settings.items()),
        f"| wall time | {run.seconds:.0f} s |",
        "",
    ]
    return "\n".join(lines)


#: Everything after this line in RESULTS.md is written by hand and kept when the tables are regenerated.
NOTES_MARKER = "<!-- notes below are kept across runs -->"


def write(path: Path, text: str) -> None:
    """Write the report to ``path``, keeping the hand-written notes after ``NOTES_MARKER`` if it has any."""
    notes = ""
    if path.exists():
        _, marker, kept = path.read_text().partition(NOTES_MARKER)
        notes = marker + kept if marker else ""
    path.write_text(text + ("\n" + notes if notes else ""))
