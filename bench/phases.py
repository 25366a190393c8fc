"""The benchmark's phases over the running systems: start-up, latency, throughput, streams, memory load.

``bench.run`` drives them and reduces what they return; ``bench.profile`` and ``bench.ablate`` reuse the
start-up. The proxy under test gets CPU 0 to itself; nginx, the SSE upstream and the clients share CPU 1.
"""

from __future__ import annotations

import dataclasses
import urllib.request
from pathlib import Path

import orjson

from bench import gateway, store, streaming, wrk
from bench.procs import LOAD_CPU, PROXY_CPU, Service, ensure_tools, free_port, pinned, python_module
from bench.results import (
    DIRECT,
    DIRECT_ANTHROPIC,
    MESSAGES_PASSTHROUGH,
    MESSAGES_TO_OPENAI,
    MODELYARD,
    MODELYARD_ANTHROPIC,
    MODELYARD_CONSUMER,
    P99_BOUND_MS,
    PASSTHROUGH,
    RESPONSES_PASSTHROUGH,
    RESPONSES_TO_ANTHROPIC,
    StoreUse,
)
from bench.upstreams import start_nginx

#: What a consumer's answers carry (OpenAI's rate headers) and a plain key's do not.
RATE_HEADER = "x-ratelimit-limit-requests"
MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Write a haiku about a proxy that adds no latency."},
]


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """How long and how hard each phase runs."""

    rounds: int
    latency_seconds: int
    levels: tuple[int, ...]
    level_seconds: int
    streams: int
    chunks: int
    first_ms: float
    interval_ms: float
    #: Modelyard's memory target is checked after this many requests.
    steady_requests: int
    control_plane: bool


def ensure_bench_tools() -> None:
    """wrk and nginx, and redis-server when this build counts consumers' limits in a store."""
    ensure_tools("wrk", "nginx", *([store.PACKAGE] if gateway.counts_in_store() else []))


def json_body(**fields: object) -> bytes:
    """A request body."""
    return orjson.dumps(fields)


def stream_template(**fields: object) -> bytes:
    """A streaming request body with ``%d`` for ``max_tokens`` (the SSE upstream's delta count)."""
    return orjson.dumps({**fields, "stream": True, "max_tokens": 0}).replace(b'"max_tokens":0', b'"max_tokens":%d')


@dataclasses.dataclass(frozen=True, slots=True)
class Systems:
    """What the phases after start-up need to reach or to measure."""

    passthrough: Service
    passthrough_sse: Service
    gateway: gateway.Gateway
    sse_port: int
    passthrough_sse_port: int
    #: The consumers' counter store; None when this build cannot use one (no consumer target then).
    counter_store: store.Store | None


@dataclasses.dataclass(slots=True)
class Bench:
    """The running systems and what has been measured so far."""

    settings: Settings
    folder: Path
    running: list[Service]
    targets: dict[str, wrk.Target] = dataclasses.field(default_factory=dict)
    #: The process whose CPU each target's numbers are charged to.
    cpu_of: dict[str, Service] = dataclasses.field(default_factory=dict)
    #: Spans exported to nginx's discarding collector endpoint (False: this build's no-op provider).
    tracing: bool = True
    #: The shipped defaults; ``bench.profile --lean`` turns logging off to see what remains.
    log_level: str = "INFO"
    access_log: bool = False
    gateway_requests: int = 0
    passthrough_requests: int = 0
    consumer_requests: int = 0

    # -- set-up --------------------------------------------------------------------------------------------

    def start(self) -> Systems:
        """nginx, the paced SSE upstream, the two passthroughs, the counter store and Modelyard, and the six wrk
        targets (five when this build has no ``--store-url``)."""
        nginx_port, sse_port, pt_port, pt_sse_port, gw_port, admin_port = (free_port() for _ in range(6))
        nginx = start_nginx(self.folder / "nginx", nginx_port, self.running)
        nginx_url, sse_url = f"http://127.0.0.1:{nginx_port}", f"http://127.0.0.1:{sse_port}"
        s = self.settings
        pacing = ["--first-ms", str(s.first_ms), "--interval-ms", str(s.interval_ms)]
        sse = self._service("sse-upstream", LOAD_CPU, "bench.sse_server", "--port", str(sse_port), *pacing)
        passthrough = self._service(
            "passthrough", PROXY_CPU, "bench.passthrough", "--port", str(pt_port), "--upstream", nginx_url
        )
        pt_sse = self._service(
            "passthrough-sse", PROXY_CPU, "bench.passthrough", "--port", str(pt_sse_port), "--upstream", sse_url
        )
        table = gateway.compile_table(gateway.inventory(50, nginx_url, sse_url))
        collector = nginx_url if self.tracing else None
        counters = store.start(self.folder, self.running) if gateway.counts_in_store() else None
        gw = gateway.start(
            table,
            self.folder,
            (gw_port, admin_port),
            collector,
            self.running,
            log_level=self.log_level,
            env={"MODELYARD_ACCESS_LOG": "1" if self.access_log else "0"},
            store_url=counters.url if counters else None,
        )
        for service, port in ((sse, sse_port), (passthrough, pt_port), (pt_sse, pt_sse_port)):
            service.wait_port(port)
        chat = json_body(model=gateway.CHAT_MODEL, messages=MESSAGES, max_tokens=64)
        claude = json_body(model=gateway.ANTHROPIC_MODEL, messages=MESSAGES, max_tokens=64)
        native = json_body(
            model=gateway.ANTHROPIC_MODEL, system=MESSAGES[0]["content"], messages=MESSAGES[1:], max_tokens=64
        )
        self._add(DIRECT, f"{nginx_url}/v1/chat/completions", chat, nginx)
        self._add(PASSTHROUGH, f"http://127.0.0.1:{pt_port}/v1/chat/completions", chat, passthrough)
        self._add(MODELYARD, f"{gw.url}/v1/chat/completions", chat, gw.service, gateway.BENCH_KEY)
        if counters:
            self._add(MODELYARD_CONSUMER, f"{gw.url}/v1/chat/completions", chat, gw.service, gateway.CONSUMER_KEY)
        self._add(DIRECT_ANTHROPIC, f"{nginx_url}/v1/messages", native, nginx)
        self._add(MODELYARD_ANTHROPIC, f"{gw.url}/v1/chat/completions", claude, gw.service, gateway.BENCH_KEY)
        self._add_protocols(gw)
        return Systems(passthrough, pt_sse, gw, sse_port, pt_sse_port, counters)

    def _add_protocols(self, gw: gateway.Gateway) -> None:
        """Anthropic Messages and OpenAI Responses clients, each to its native provider and to the other one."""
        system, turns = MESSAGES[0]["content"], MESSAGES[1:]
        for name, model in ((MESSAGES_PASSTHROUGH, gateway.ANTHROPIC_MODEL), (MESSAGES_TO_OPENAI, gateway.CHAT_MODEL)):
            body = json_body(model=model, system=system, messages=turns, max_tokens=64)
            self._add(name, f"{gw.url}/v1/messages", body, gw.service, gateway.BENCH_KEY)
        for name, model in (
            (RESPONSES_PASSTHROUGH, gateway.CHAT_MODEL),
            (RESPONSES_TO_ANTHROPIC, gateway.ANTHROPIC_MODEL),
        ):
            body = json_body(model=model, instructions=system, input=turns, max_output_tokens=64, store=False)
            self._add(name, f"{gw.url}/v1/responses", body, gw.service, gateway.BENCH_KEY)

    def _service(self, name: str, cpu: int, module: str, *args: str) -> Service:
        service = Service(name, pinned(cpu, python_module(module, *args)), self.folder)
        self.running.append(service)
        return service

    def _add(self, name: str, url: str, body: bytes, service: Service, key: str = "") -> None:
        path = self.folder / f"{name}.json"
        path.write_bytes(body)
        self.targets[name] = wrk.Target(name, url, path, key)
        self.cpu_of[name] = service

    def check(self) -> None:
        """One request to every target: a misconfigured table must fail here, not show up as a fast 401."""
        for name, target in self.targets.items():
            headers = {"Content-Type": "application/json"}
            if target.key:
                headers["Authorization"] = f"Bearer {target.key}"
            request = urllib.request.Request(target.url, data=target.body.read_bytes(), headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = orjson.loads(response.read())
                    limited = RATE_HEADER in response.headers
            except OSError as exc:
                raise SystemExit(f"{name}: {target.url} failed: {exc}\n{self.cpu_of[name].tail()}") from exc
            if not {"choices", "content", "output"} & answer.keys():
                raise SystemExit(f"{name}: unexpected answer {answer}")
            if name == MODELYARD_CONSUMER and not limited:
                raise SystemExit(f"{name}: no {RATE_HEADER} header: the key was not served as the consumer's")

    # -- phases ----------------------------------------------------------------------------------------------

    def _wrk(self, name: str, connections: int, seconds: int) -> tuple[wrk.WrkResult, float]:
        service = self.cpu_of[name]
        before = service.cpu_seconds()
        result = wrk.run(self.targets[name], connections, seconds)
        cpu = service.cpu_seconds() - before
        if service is self.cpu_of[MODELYARD]:  # every Modelyard target is the same process
            self.gateway_requests += result.requests
        elif name == PASSTHROUGH:
            self.passthrough_requests += result.requests
        if name == MODELYARD_CONSUMER:
            self.consumer_requests += result.requests
        return result, cpu

    def latency(self) -> dict[str, list[wrk.WrkResult]]:
        """One connection, sequential requests: each round runs every target once."""
        for name in self.targets:
            self._wrk(name, 8, 1)  # warm-up: connection pools, caches, lazy imports
        found: dict[str, list[wrk.WrkResult]] = {name: [] for name in self.targets}
        for _ in range(self.settings.rounds):
            for name in self.targets:
                found[name].append(self._wrk(name, 1, self.settings.latency_seconds)[0])
        return found

    def throughput(self) -> dict[str, list[tuple[wrk.WrkResult, float]]]:
        """Per round and target, the best rate over the connection levels whose p99 stays under the bound.

        The direct Anthropic endpoint is skipped: nginx answers it exactly as the OpenAI one.
        """
        names = [name for name in self.targets if name != DIRECT_ANTHROPIC]
        found: dict[str, list[tuple[wrk.WrkResult, float]]] = {name: [] for name in names}
        for _ in range(self.settings.rounds):
            for name in names:
                best: tuple[wrk.WrkResult, float] | None = None
                for connections in self.settings.levels:
                    result, cpu = self._wrk(name, connections, self.settings.level_seconds)
                    ok = result.errors == 0 and result.p99_us < P99_BOUND_MS * 1000
                    if ok and (best is None or result.rps > best[0].rps):
                        best = (result, cpu)
                found[name].append(best or (dataclasses.replace(result, requests=0), cpu))
        return found

    def store_use(self, counter_store: store.Store, since: tuple[int, float]) -> StoreUse:
        """The consumer's script calls and the store's time in them since ``since`` (``store.script_stats``),
        and how often the gateway gave up on the store meanwhile (it logs each time)."""
        calls, micros = store.script_stats(counter_store.url)
        log = self.cpu_of[MODELYARD_CONSUMER].log_path.read_text(errors="replace")
        return StoreUse(self.consumer_requests, calls - since[0], micros - since[1], log.count(store.OUTAGE_LOG))

    def top_up(self) -> None:
        """Keep loading Modelyard until it has served the steady-state request count."""
        while self.gateway_requests < self.settings.steady_requests:
            remaining = self.settings.steady_requests - self.gateway_requests
            self._wrk(MODELYARD, 16, max(1, min(30, remaining // 2000)))


def streams(bench: Bench, systems: Systems) -> dict[str, streaming.StreamStats]:
    """Every streaming target, measured by ``streaming.measure``: direct, passthrough, Modelyard, and Anthropic."""
    s, gw = bench.settings, systems.gateway
    sse_port, pt_sse_port = systems.sse_port, systems.passthrough_sse_port
    openai = stream_template(model=gateway.STREAM_MODEL, messages=MESSAGES)
    claude = stream_template(model=gateway.STREAM_ANTHROPIC_MODEL, messages=MESSAGES)
    native = stream_template(model=gateway.ANTHROPIC_MODEL, system=MESSAGES[0]["content"], messages=MESSAGES[1:])
    targets = [
        streaming.StreamTarget(DIRECT, sse_port, "/v1/chat/completions", openai),
        streaming.StreamTarget(
            PASSTHROUGH, pt_sse_port, "/v1/chat/completions", openai, cpu=systems.passthrough_sse.cpu_seconds
        ),
        streaming.StreamTarget(
            MODELYARD, gw.port, "/v1/chat/completions", openai, gateway.BENCH_KEY, gw.service.cpu_seconds
        ),
        streaming.StreamTarget(DIRECT_ANTHROPIC, sse_port, "/v1/messages", native),
        streaming.StreamTarget(
            MODELYARD_ANTHROPIC, gw.port, "/v1/chat/completions", claude, gateway.BENCH_KEY, gw.service.cpu_seconds
        ),
    ]
    found = streaming.measure(targets, chunks=s.chunks, streams=s.streams, rounds=s.rounds)
    bench.gateway_requests += 2 * (5 + 3 * s.streams + 20 * s.rounds)
    return found
