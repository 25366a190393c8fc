"""Where Modelyard's time goes under load: py-spy samples of the gateway while wrk drives one route.

Starts the same systems as ``bench.run`` (nginx, the paced SSE upstream, Modelyard with the realistic
table, tracing to a discarding collector), then for each case records the gateway with py-spy (pinned
off the proxy's core; only samples holding the GIL, i.e. Python CPU, so idle threads such as the span
exporter's waiting one do not count) while wrk keeps it saturated. Each case writes its
folded stacks (``bench/profiles/<case>.folded``; open them in speedscope.app or flamegraph.pl) and a
summary (``<case>.txt``): time by innermost Python function (C calls charged to their Python caller),
inclusive time by function, and self time by module. ``bench/PROFILE.md`` interprets them.

    python -m bench.profile [--seconds 8] [--rate 200] [--native] [--case openai --case anthropic ...]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import orjson

from bench import gateway, wrk
from bench.phases import MESSAGES, Bench, Settings, ensure_bench_tools
from bench.procs import LOAD_CPU, REPO, pin_self, pinned, services
from bench.results import (
    MESSAGES_PASSTHROUGH,
    MESSAGES_TO_OPENAI,
    MODELYARD,
    MODELYARD_ANTHROPIC,
    MODELYARD_CONSUMER,
    PASSTHROUGH,
    RESPONSES_PASSTHROUGH,
    RESPONSES_TO_ANTHROPIC,
)

OUT = REPO / "bench" / "profiles"
#: Frames every sample has (interpreter start-up and the event loop itself): not informative.
BORING = ("<frozen runpy>", "modelyard/__main__.py", "modelyard/cli.py", "uvloop/__init__.py", "asyncio/runners.py")
#: What each case loads: a wrk target name from ``bench.run`` or a streaming body, and connections.
CASES = {
    "passthrough": (PASSTHROUGH, 8),
    "openai": (MODELYARD, 8),
    "consumer": (MODELYARD_CONSUMER, 8),
    "anthropic": (MODELYARD_ANTHROPIC, 8),
    "messages": (MESSAGES_PASSTHROUGH, 8),
    "messages-openai": (MESSAGES_TO_OPENAI, 8),
    "responses": (RESPONSES_PASSTHROUGH, 8),
    "responses-anthropic": (RESPONSES_TO_ANTHROPIC, 8),
    "stream-openai": (gateway.STREAM_MODEL, 32),
    "stream-anthropic": (gateway.STREAM_ANTHROPIC_MODEL, 32),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame as py-spy prints it: ``function (file:line)``, the file shortened to its package."""

    function: str
    file: str

    @property
    def python(self) -> bool:
        """A Python frame (as opposed to C from an extension, libc or the interpreter)."""
        return self.file.endswith(".py") or self.file.startswith("<frozen")

    @property
    def module(self) -> str:
        """``package.module`` for Python frames (``aiohttp.web_protocol``); the library for native ones."""
        return self.file.removesuffix(".py").replace("/", ".").removesuffix(".__init__")

    def __str__(self) -> str:
        return f"{self.function} ({self.file})"


def short_path(path: str) -> str:
    """``.../site-packages/aiohttp/client.py`` -> ``aiohttp/client.py``; the repo's own files from their package."""
    for marker in ("/site-packages/", "/lib/python3.", "/proxy/", "/cli/", f"{REPO}/"):
        if marker in path:
            tail = path.rpartition(marker)[2]
            return tail.partition("/")[2] if marker == "/lib/python3." else tail
    return path


def parse_frame(text: str) -> Frame:
    """``func (/path/to/file.py:123)`` -> Frame(func, package/file.py)."""
    function, _, where = text.rpartition(" (")
    where = where.rstrip(")")
    return Frame(function or text, short_path(where.rpartition(":")[0] or where))


def read_folded(path: Path) -> list[tuple[list[Frame], int]]:
    """py-spy's raw output: one ``frame;frame;... count`` line per distinct stack."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append(([parse_frame(part) for part in stack.split(";")], int(count)))
    return stacks


AIOHTTP_CLIENT = ("aiohttp/client.py", "aiohttp/client_reqrep.py", "aiohttp/client_proto.py", "aiohttp/connector.py")


#: Code a sample is charged to; the standard library helpers they call (os.path, dataclasses, uuid, abc ...)
#: are charged to the nearest of these above them on the stack.
KNOWN = (
    "opentelemetry/",
    "logging/",
    "aiohttp/",
    "redis/",
    "modelyard_proxy/",
    "modelyard_routing/",
    "asyncio/",
    "bench/",
)
#: A consumer's limits and budgets: the worst-case estimate, admission and settlement, and the counters.
TENANCY = ("modelyard_proxy/tenancy/", "modelyard_proxy/relay/quota.py", "modelyard_proxy/relay/estimate.py")


def category(frames: list[Frame]) -> str:
    """The cost centre a sample belongs to: what to optimise, not which helper happened to be on top."""
    if any(f.function == "BatchProcessor.worker" for f in frames):
        return "tracing: exporter thread (encode + POST spans)"
    owner = next((f for f in reversed(frames) if f.python and f.file.startswith(KNOWN)), None)
    where = owner.file if owner else ""
    if where.startswith("opentelemetry/"):
        return "tracing: spans on the request path"
    if where.startswith("logging/") or where == "aiohttp/web_log.py":
        return "logging: access log + audit line"
    if where == "modelyard_proxy/routing/health.py":
        return "circuit breaker bookkeeping (routing/health.py)"
    if where in (
        "modelyard_proxy/observability/metrics.py",
        "modelyard_proxy/observability/accounting.py",
        "modelyard_routing/prices.py",
    ):
        return "metrics and cost accounting"
    if where.startswith("redis/"):
        return "counter store client (redis-py: commands, RESP parsing, its connection)"
    if where.startswith(TENANCY):
        return "limits and budgets (tenancy/, relay/quota.py, relay/estimate.py)"
    if where.startswith("modelyard_proxy/upstream/"):
        return "upstream client (modelyard_proxy/upstream)"
    if where.startswith(("modelyard_proxy/", "modelyard_routing/", "bench/")):
        return "request logic (middlewares, handlers, relay, adapters)"
    if where.startswith("aiohttp/"):
        if any(f.file in AIOHTTP_CLIENT for f in frames):
            return "aiohttp client (the upstream call)"
        return "aiohttp server (parse, respond, write)"
    if where.startswith("asyncio/"):
        return "asyncio (tasks, timeouts)"
    return "event loop and other"


def summarise(stacks: Iterable[tuple[list[Frame], int]], top: int = 30) -> str:
    """The four views of one profile as text."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    modules: collections.Counter[str] = collections.Counter()
    centres: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in stacks:
        total += count
        python = [f for f in frames if f.python and not f.file.startswith(BORING)]
        innermost = python[-1] if python else (frames[-1] if frames else Frame("?", "?"))
        own[str(innermost)] += count
        modules[innermost.module] += count
        centres[category(frames)] += count
        for name in {str(f) for f in python}:
            inclusive[name] += count
    if not total:
        return "no samples\n"

    def table(title: str, counter: collections.Counter[str], rows: int = top) -> list[str]:
        return [f"{title}", *(f"{100 * n / total:6.1f}%  {name}" for name, n in counter.most_common(rows)), ""]

    lines = [
        f"{total} samples (holding the GIL)",
        "",
        *table("time by cost centre (innermost Python frame)", centres, 20),
        *table("time by innermost Python function (its C calls included)", own),
        *table("time by module (innermost Python frame)", modules),
        *table("inclusive time by Python function", inclusive, 45),
    ]
    return "\n".join(lines)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is needed: .venv/bin/pip install py-spy")
    return found


def _stream_target(bench: Bench, model: str, url: str) -> wrk.Target:
    path = bench.folder / f"{model}.json"
    body = {"model": model, "stream": True, "max_tokens": 24, "messages": MESSAGES}
    path.write_bytes(orjson.dumps(body))
    return wrk.Target(model, url, path, gateway.BENCH_KEY)


def profile(
    cases: list[str],
    seconds: int,
    rate: int,
    *,
    native: bool = False,
    variant: str = "",
    connections: int | None = None,
) -> None:
    """Record and summarise each case; ``variant`` is "", "no-tracing" or "lean" (see ``--help``);
    ``connections`` overrides each case's own."""
    OUT.mkdir(exist_ok=True)
    settings = Settings(
        rounds=1,
        latency_seconds=1,
        levels=(8,),
        level_seconds=1,
        streams=1,
        chunks=24,
        first_ms=2.0,
        interval_ms=3.0,
        steady_requests=0,
        control_plane=False,
    )
    with tempfile.TemporaryDirectory(prefix="modelyard-profile-") as tmp, services() as running:
        bench = Bench(settings, Path(tmp), running, tracing=not variant)
        if variant == "lean":
            bench.log_level, bench.access_log = "WARNING", False
        systems = bench.start()
        bench.check()
        url = f"{systems.gateway.url}/v1/chat/completions"
        for case in cases:
            name, case_connections = CASES[case]
            load = connections or case_connections
            target = bench.targets.get(name) or _stream_target(bench, name, url)
            pid = (systems.passthrough if name == PASSTHROUGH else systems.gateway.service).pid
            wrk.run(target, load, 2)  # warm-up
            stem = f"{case}-{variant}" if variant else case
            folded = OUT / f"{stem}.folded"
            argv = [
                _py_spy(),
                "record",
                "-p",
                str(pid),
                "-r",
                str(rate),
                "-d",
                str(seconds),
                "-f",
                "raw",
                "-F",
                "--gil",
                "--full-filenames",
            ]
            if native:
                argv.append("--native")
            spy = subprocess.Popen(
                pinned(LOAD_CPU, [*argv, "-o", str(folded)]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            store_cpu = systems.counter_store.service.cpu_seconds if systems.counter_store else lambda: 0.0
            before = store_cpu()
            result = wrk.run(target, load, seconds + 2)
            store_us = (store_cpu() - before) / max(1, result.requests) * 1e6
            spy.wait()
            head = f"{stem}: {result.rps:,.0f} requests/s at {load} connections while sampled at {rate}/s"
            head += f"; counter store CPU {store_us:.1f} µs a request\n" if name == MODELYARD_CONSUMER else "\n"
            text = head + summarise(read_folded(folded))
            (OUT / f"{stem}.txt").write_text(text)
            print(text)


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    parser.add_argument("--native", action="store_true", help="C frames too (slows the gateway more)")
    parser.add_argument("--connections", type=int, default=None, help="wrk connections (default: per case)")
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument("--no-tracing", action="store_true", help="the gateway without a trace exporter")
    variant.add_argument("--lean", action="store_true", help="no trace export, WARNING logs, no access log")
    args = parser.parse_args()
    ensure_bench_tools()
    pin_self(LOAD_CPU)
    profile(
        args.case or list(CASES),
        args.seconds,
        args.rate,
        native=args.native,
        variant="lean" if args.lean else "no-tracing" if args.no_tracing else "",
        connections=args.connections,
    )


if __name__ == "__main__":
    main()
