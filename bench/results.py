"""What one benchmark run found, reduced to the numbers the report shows (no I/O here)."""

from __future__ import annotations

import dataclasses

#: The three systems side by side, plus the gateway's route for a consumer with limits and budgets, and its
#: Anthropic-translating route with that route's own floor.
DIRECT = "direct"
PASSTHROUGH = "passthrough"
MODELYARD = "modelyard"
#: The same gateway and route called with a ModelConsumer's key: limits and budgets counted in a local store.
MODELYARD_CONSUMER = "modelyard-consumer"
DIRECT_ANTHROPIC = "direct-anthropic"
MODELYARD_ANTHROPIC = "modelyard-anthropic"
#: The other client protocols: each native pass-through, and each translated to the other family.
MESSAGES_PASSTHROUGH = "messages-anthropic"
MESSAGES_TO_OPENAI = "messages-openai"
RESPONSES_PASSTHROUGH = "responses-openai"
RESPONSES_TO_ANTHROPIC = "responses-anthropic"
#: Which direct run is each case's floor (the same upstream endpoint, called without a proxy).
FLOOR = {
    DIRECT: DIRECT,
    PASSTHROUGH: DIRECT,
    MODELYARD: DIRECT,
    MODELYARD_CONSUMER: DIRECT,
    DIRECT_ANTHROPIC: DIRECT_ANTHROPIC,
    MODELYARD_ANTHROPIC: DIRECT_ANTHROPIC,
    MESSAGES_PASSTHROUGH: DIRECT_ANTHROPIC,
    MESSAGES_TO_OPENAI: DIRECT,
    RESPONSES_PASSTHROUGH: DIRECT,
    RESPONSES_TO_ANTHROPIC: DIRECT_ANTHROPIC,
}
#: What translating a client protocol may cost over passing it through, in CPU per request.
TRANSLATION_CPU_SHARE = 1.5
#: Throughput is the best rate whose p99 stays under this.
P99_BOUND_MS = 50.0
#: What limits and budgets (admit and settle against the counter store) may add over a plain gateway key.
CONSUMER_ADDED_P50_MS = 0.3
CONSUMER_THROUGHPUT_SHARE = 0.8


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    """One system on the non-streamed path: latency at one connection, and its throughput frontier."""

    p50_ms: float
    p99_ms: float
    #: Over the floor, same round, median of rounds (0 for the floor itself).
    added_p50_ms: float
    added_p99_ms: float
    max_rps: float
    connections: int
    p99_at_max_ms: float
    #: CPU of the process answering (the proxy; nginx for the direct runs) per request, at the best rate.
    cpu_us_per_request: float


@dataclasses.dataclass(frozen=True, slots=True)
class Stream:
    """One system on the streamed path (paced upstream), all over the matching direct run."""

    ttft_p50_ms: float
    ttft_p99_ms: float
    added_ttft_p50_ms: float
    added_ttft_p99_ms: float
    transit_p50_us: float
    transit_p99_us: float
    added_chunk_p50_us: float
    added_chunk_p99_us: float
    cpu_us_per_chunk: float
    streams: int
    failures: int


#: Resident memory may move this much between the loaded checkpoint and the end and still count as flat
#: (allocator pages come and go; a leak grows with every request).
FLAT_MB = 3.0


@dataclasses.dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of a proxy at checkpoints: (when, MB, requests served by then), idle first."""

    checkpoints: tuple[tuple[str, float, int], ...]

    @property
    def idle_mb(self) -> float:
        """Before any load."""
        return self.checkpoints[0][1]

    @property
    def final_mb(self) -> float:
        """After the whole run."""
        return self.checkpoints[-1][1]

    @property
    def final_requests(self) -> int:
        """Requests served over the whole run."""
        return self.checkpoints[-1][2]

    @property
    def growth_mb(self) -> float:
        """Growth from the checkpoint before the end (every load level already seen) to the end."""
        return self.checkpoints[-1][1] - self.checkpoints[-2][1]

    @property
    def growth_from(self) -> int:
        """Requests served at the checkpoint ``growth_mb`` counts from."""
        return self.checkpoints[-2][2]


@dataclasses.dataclass(frozen=True, slots=True)
class StoreUse:
    """What the consumer's requests asked of the counter store over the run (from the store's own stats)."""

    #: Requests wrk completed with the consumer's key.
    requests: int
    #: Lua script calls (admit and settle: two per request when every one is counted in the store).
    script_calls: int
    #: The store's own time in those scripts, microseconds in all.
    script_us: float
    #: Times the gateway gave up on the store (a call over its timeout) and counted in the process for a while.
    outages: int

    @property
    def calls_per_request(self) -> float:
        """2.0 when every request was admitted and settled in the store."""
        return self.script_calls / self.requests if self.requests else float("nan")

    @property
    def us_per_call(self) -> float:
        """The store's time in one script call."""
        return self.script_us / self.script_calls if self.script_calls else float("nan")


@dataclasses.dataclass(frozen=True, slots=True)
class ControlPlane:
    """Compile and push times (seconds, medians)."""

    routes: int
    compile_s: float
    wire_bytes: int
    proxies: int
    push_all_s: float
    push_one_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class Signing:
    """CPU per SigV4-signed request (µs, medians): botocore's signer as its clients use it, and the gateway's."""

    botocore_us: float
    gateway_us: float
    budget_us: float

    @property
    def ratio(self) -> float:
        return self.gateway_us / self.botocore_us

    @property
    def met(self) -> bool:
        return self.gateway_us <= self.budget_us


@dataclasses.dataclass(frozen=True, slots=True)
class Tokens:
    """CPU a Vertex AI call's authorisation adds with its access token cached (µs, median of rounds)."""

    cached_us: float
    budget_us: float

    @property
    def met(self) -> bool:
        return self.cached_us <= self.budget_us


@dataclasses.dataclass(slots=True)
class Run:
    """Everything one run measured, with the settings and the machine it ran on."""

    machine: dict[str, str]
    settings: dict[str, str]
    cases: dict[str, Case] = dataclasses.field(default_factory=dict)
    streams: dict[str, Stream] = dataclasses.field(default_factory=dict)
    memory: dict[str, Memory] = dataclasses.field(default_factory=dict)
    store: StoreUse | None = None
    control_plane: ControlPlane | None = None
    signing: Signing | None = None
    tokens: Tokens | None = None
    seconds: float = 0.0
