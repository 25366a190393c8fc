"""The fault matrix: every upstream failure the simulator can script, against a route with a fallback.

Each case asserts what the OpenAI SDK sees, the ``x-modelyard-attempts`` header and the elapsed time. The
route's deadlines are tens to hundreds of milliseconds, so no case may take longer than its budget plus
``SLACK`` and the whole matrix runs in seconds. No case may end in a truncated 200.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import test_utils

from modelyard_proxy.keys import HEALTH
from modelyard_simulator import RequestLog
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from tests.harness import DEMO_KEY, GatewayFactory

#: What a case may take beyond its budget: the SDK, the loopback and a busy shared test machine (a 0.1 s slack
#: failed a case about once a run there). Still an order of magnitude below the 5 s an unbounded fault takes.
SLACK = 0.4
FIRST_TOKEN = 0.3
IDLE = 0.2
BACKOFF_MAX = 0.05
ALL_TRIGGERS = [
    "rateLimit",
    "quotaExhausted",
    "serverError",
    "overloaded",
    "connectError",
    "timeout",
    "contextLength",
    "contentPolicy",
]


def _route(name: str, primary: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "model": name,
            "targets": [
                {**primary, "priority": 0},
                {"credentialRef": {"name": "sim-openai"}, "model": "backup", "priority": 1},
            ],
            "retry": {"attempts": 2, "backoff": {"initial": "20ms", "max": "50ms"}},
            "timeouts": {"connect": "200ms", "firstToken": "300ms", "idle": "200ms", "total": "3s"},
            "fallbackOn": ALL_TRIGGERS,
            "circuitBreaker": {"minRequests": 1000},
            **spec,
        },
    }


#: Routes whose first-token deadline, not the idle one, is what a silent target runs into.
SILENT_FIRST_TOKEN = 0.2
SILENT_TIMEOUTS = {"firstToken": "200ms", "idle": "2s", "total": "3s"}
REFUSING_CREDENTIAL = {
    "apiVersion": "modelyard.io/v1alpha1",
    "kind": "ProviderCredential",
    "metadata": {"name": "refusing", "namespace": "default"},
    "spec": {"provider": "openai-compatible", "baseURL": "http://127.0.0.1:9/v1"},
}
#: A route per dialect whose primary answers in that provider's wire format (the backup speaks OpenAI's).
DIALECTS = ["openai", "anthropic", "gemini"]
MANIFESTS = [
    REFUSING_CREDENTIAL,
    _route("resilient", {"credentialRef": {"name": "sim-openai"}, "model": "primary"}),
    *(_route(f"resilient-{name}", {"credentialRef": {"name": f"sim-{name}"}, "model": "primary"}) for name in DIALECTS),
    *(
        _route(f"alone-{name}", {"credentialRef": {"name": f"sim-{name}"}, "model": "primary"}, fallbackOn=[])
        for name in DIALECTS
    ),
    _route("unreachable", {"credentialRef": {"name": "refusing"}, "model": "primary"}),
    _route("hasty", {"credentialRef": {"name": "sim-openai"}, "model": "primary"}, timeouts=SILENT_TIMEOUTS),
    _route(
        "patient",
        {"credentialRef": {"name": "sim-openai"}, "model": "primary"},
        retry={"attempts": 2, "backoff": {"initial": "20ms", "max": "50ms"}, "retryOn": ["timeout"]},
        timeouts=SILENT_TIMEOUTS,
    ),
    _route("small-window", {"credentialRef": {"name": "sim-openai"}, "model": "primary", "contextWindow": 10}),
]


@pytest.fixture
async def sdk(gateway_factory: GatewayFactory) -> AsyncIterator[openai.AsyncOpenAI]:
    gateway: test_utils.TestServer = await gateway_factory(*MANIFESTS)
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client:
        yield client


def script(simulator: test_utils.TestServer, model: str, **behaviour: object) -> None:
    """Make the simulated upstream ``model`` behave like this for every request."""
    simulator.app[SCENARIOS].models[model] = Behaviour().overlay(behaviour)


@dataclasses.dataclass
class Seen:
    """What the client saw: status, attempts header, text, error code, and how long it took."""

    status: int
    attempts: int
    text: str
    error: str | None
    elapsed: float
    served_by: str | None = None
    message: str | None = None


async def ask(sdk: openai.AsyncOpenAI, model: str, *, stream: bool = False, prompt: str = "hello there") -> Seen:
    started = time.monotonic()
    messages: Any = [{"role": "user", "content": prompt}]
    try:
        raw = await sdk.chat.completions.with_raw_response.create(model=model, messages=messages, stream=stream)
    except openai.APIStatusError as exc:
        attempts = int(exc.response.headers["x-modelyard-attempts"])
        message = exc.body.get("message") if isinstance(exc.body, dict) else None
        return Seen(exc.status_code, attempts, "", exc.code, time.monotonic() - started, message=message)
    attempts = int(raw.headers["x-modelyard-attempts"])
    served_by = raw.headers.get("x-modelyard-upstream-model")
    if not stream:
        completion = raw.parse()
        assert not isinstance(completion, openai.AsyncStream)
        text = completion.choices[0].message.content or ""
        return Seen(raw.status_code, attempts, text, None, time.monotonic() - started, served_by)
    parts: list[str] = []
    error = None
    chunks = raw.parse()
    assert isinstance(chunks, openai.AsyncStream)
    try:
        async for chunk in chunks:
            parts.extend(choice.delta.content or "" for choice in chunk.choices)
    except openai.APIError as exc:
        error = str(exc.code) if exc.code else "in-band"
    return Seen(raw.status_code, attempts, "".join(parts), error, time.monotonic() - started, served_by)


def assert_fell_back(seen: Seen, attempts: int, budget: float) -> None:
    assert (seen.status, seen.error, seen.served_by) == (200, None, "backup"), seen
    assert "hello there" in seen.text, seen  # the simulator echoes the prompt: a whole answer
    assert seen.attempts == attempts, seen
    assert seen.elapsed < budget + SLACK, seen


RETRIED = 2 * 1 + 1  # two attempts at the primary, then the backup
TRANSIENT_CASES = [
    pytest.param({"status": "429"}, RETRIED, BACKOFF_MAX, id="429"),
    pytest.param({"status": "429", "retry-after": "0.3"}, RETRIED, 0.3, id="429-retry-after"),
    pytest.param(
        {"status": "429", "error-message": "You exceeded your current quota, please check your plan"},
        2,
        0,
        id="429-quota-exhausted",
    ),
    pytest.param({"status": "500"}, RETRIED, BACKOFF_MAX, id="500"),
    pytest.param({"status": "502"}, RETRIED, BACKOFF_MAX, id="502"),
    pytest.param({"status": "503"}, RETRIED, BACKOFF_MAX, id="503"),
    pytest.param({"status": "529"}, RETRIED, BACKOFF_MAX, id="529"),
    pytest.param({"latency-ms": "5000"}, 2, FIRST_TOKEN, id="silent-upstream"),  # a timeout is not retried
    pytest.param({"malformed": "true"}, RETRIED, BACKOFF_MAX, id="malformed-body"),
    pytest.param(
        {"status": "400", "error-message": "This model's maximum context length is 8192 tokens"},
        2,
        0,
        id="context-length",
    ),
    pytest.param(
        {"status": "400", "error-message": "The response was filtered due to our content management policy"},
        2,
        0,
        id="content-refusal",
    ),
    pytest.param({"refusal": "true"}, 2, 0, id="answered-refusal"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("behaviour", "attempts", "budget"), TRANSIENT_CASES)
async def test_failure_before_the_commit_point_falls_back(
    sdk: openai.AsyncOpenAI,
    simulator: test_utils.TestServer,
    behaviour: dict[str, str],
    attempts: int,
    budget: float,
    *,
    stream: bool,
) -> None:
    script(simulator, "primary", **behaviour)
    assert_fell_back(await ask(sdk, "resilient", stream=stream), attempts, budget)


UNREADABLE = [
    pytest.param({"malformed": "true"}, False, id="not-json"),
    pytest.param({"shapeless": "true"}, False, id="foreign-json"),
    pytest.param({"malformed": "true"}, True, id="not-json-stream-event"),
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("behaviour", "stream"), UNREADABLE)
async def test_an_unreadable_answer_is_retried_then_falls_back_for_every_provider(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer, behaviour: dict[str, str], dialect: str, *, stream: bool
) -> None:
    script(simulator, "primary", **behaviour)
    assert_fell_back(await ask(sdk, f"resilient-{dialect}", stream=stream), RETRIED, BACKOFF_MAX)
    # Without a fallback, the client learns which credential sent it, after the same retry.
    seen = await ask(sdk, f"alone-{dialect}", stream=stream)
    assert (seen.status, seen.error, seen.attempts) == (502, "upstream_malformed", 2), seen
    assert seen.message == f"upstream {dialect} (default/sim-{dialect}) sent a malformed answer", seen


@pytest.mark.parametrize(
    ("behaviour", "attempts", "budget"),
    [
        pytest.param({"ttft-ms": "5000"}, 2, FIRST_TOKEN, id="slow-first-token"),
        pytest.param({"cut-after-chunks": "0"}, RETRIED, BACKOFF_MAX, id="cut-before-commit"),
        pytest.param(
            {"mid-stream-error": "true", "cut-after-chunks": "0"}, RETRIED, BACKOFF_MAX, id="error-before-commit"
        ),
    ],
)
async def test_stream_stall_or_cut_before_the_first_token_falls_back(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer, behaviour: dict[str, str], attempts: int, budget: float
) -> None:
    script(simulator, "primary", **behaviour)
    assert_fell_back(await ask(sdk, "resilient", stream=True), attempts, budget)


@pytest.mark.parametrize(
    ("silence", "stream"),
    [
        pytest.param({"latency-ms": "5000"}, False, id="no-answer"),
        pytest.param({"latency-ms": "5000"}, True, id="no-headers"),
        pytest.param({"ttft-ms": "5000"}, True, id="no-first-token"),
    ],
)
async def test_a_silent_target_costs_one_first_token_wait_unless_the_route_retries_timeouts(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer, silence: dict[str, str], *, stream: bool
) -> None:
    script(simulator, "primary", **silence)
    seen = await ask(sdk, "hasty", stream=stream)
    assert_fell_back(seen, 2, SILENT_FIRST_TOKEN)  # one firstToken, then the fallback: no retry of the silent one
    assert seen.elapsed >= SILENT_FIRST_TOKEN, seen
    patient = await ask(sdk, "patient", stream=stream)  # retry.retryOn lists timeout: each attempt waits it out
    assert_fell_back(patient, RETRIED, 2 * SILENT_FIRST_TOKEN + BACKOFF_MAX)
    assert patient.elapsed >= 2 * SILENT_FIRST_TOKEN, patient


@pytest.mark.parametrize(
    ("behaviour", "budget"),
    [
        pytest.param({"token-interval-ms": "5000"}, IDLE, id="stall-after-commit"),
        pytest.param({"cut-after-chunks": "2", "token-interval-ms": "20"}, 0.04, id="cut-after-commit"),
        pytest.param({"drop-last-events": "3"}, 0, id="clean-close-before-finish"),
        pytest.param(
            {"mid-stream-error": "true", "cut-after-chunks": "2", "token-interval-ms": "20"},
            0.04,
            id="error-after-commit",
        ),
    ],
)
async def test_failure_after_the_commit_point_is_an_in_band_error(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer, behaviour: dict[str, str], budget: float
) -> None:
    script(simulator, "primary", **behaviour)
    seen = await ask(sdk, "resilient", stream=True, prompt="one two three four five six seven")
    assert (seen.status, seen.attempts, seen.served_by) == (200, 1, "primary"), seen
    assert seen.text, seen  # content reached the client before the failure
    assert seen.error is not None, seen  # an error event, never a clean end
    assert seen.elapsed < budget + SLACK, seen


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_connection_refused_falls_back(sdk: openai.AsyncOpenAI, *, stream: bool) -> None:
    assert_fell_back(await ask(sdk, "unreachable", stream=stream), RETRIED, BACKOFF_MAX)


async def test_a_prompt_that_cannot_fit_skips_the_target_without_calling_it(
    sdk: openai.AsyncOpenAI, upstream_log: RequestLog
) -> None:
    seen = await ask(sdk, "small-window", prompt="hello there " + "word " * 40)
    assert_fell_back(seen, 1, 0)
    assert [entry.body["model"] for entry in upstream_log] == ["backup"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_all_targets_down_is_an_error_not_a_hang(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer, *, stream: bool
) -> None:
    script(simulator, "primary", status="503")
    script(simulator, "backup", status="503")
    seen = await ask(sdk, "resilient", stream=stream)
    assert (seen.status, seen.error, seen.attempts) == (503, "upstream_unavailable", 4), seen
    assert seen.elapsed < 2 * BACKOFF_MAX + SLACK, seen


async def ask_within_total(
    gateway_factory: GatewayFactory, name: str, total: str, **spec: Any
) -> tuple[test_utils.TestServer, Seen]:
    """One request to a fresh route ``name`` (primary, then backup) whose total deadline is ``total``."""
    route = _route(name, {"credentialRef": {"name": "sim-openai"}, "model": "primary"})
    route["spec"] |= {**spec, "timeouts": {"firstToken": "2s", "total": total}}
    gateway = await gateway_factory(route)
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client:
        return gateway, await ask(client, name)


async def test_a_silent_upstream_costs_at_most_the_total_deadline(
    gateway_factory: GatewayFactory, simulator: test_utils.TestServer
) -> None:
    script(simulator, "primary", latency_ms="5000")
    script(simulator, "backup", latency_ms="5000")
    _, seen = await ask_within_total(gateway_factory, "tight", "250ms")
    assert (seen.status, seen.error, seen.attempts) == (504, "upstream_timeout", 1), seen
    assert 0.25 <= seen.elapsed < 0.25 + SLACK, seen


async def test_the_total_deadline_also_cuts_a_fallback_short(
    gateway_factory: GatewayFactory, simulator: test_utils.TestServer
) -> None:
    script(simulator, "primary", status="503")
    script(simulator, "backup", latency_ms="5000")
    gateway, seen = await ask_within_total(gateway_factory, "cut", "300ms", retry={"attempts": 1})
    assert (seen.status, seen.error, seen.attempts) == (504, "upstream_timeout", 2), seen
    assert 0.3 <= seen.elapsed < 0.3 + SLACK, seen
    # The backup was cut by the request's deadline, not found slow: its breaker has no failure on record.
    backup = gateway.app[HEALTH]["default/sim-openai|backup"]
    assert backup.failures == 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_refusal_is_the_answer_when_the_route_does_not_fall_back_on_content_policy(
    client: openai.AsyncOpenAI, *, stream: bool
) -> None:
    messages: Any = [{"role": "user", "content": "hi [simulate refusal]"}]
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages, stream=stream)
    assert raw.headers["x-modelyard-attempts"] == "1"
    parsed = raw.parse()
    if isinstance(parsed, openai.AsyncStream):
        finishes = [choice.finish_reason async for chunk in parsed for choice in chunk.choices if choice.finish_reason]
    else:
        finishes = [choice.finish_reason for choice in parsed.choices]
    assert finishes == ["content_filter"]
