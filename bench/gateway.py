"""Modelyard as deployed: a realistic generated table, served in operator mode with telemetry switched on.

The table has what a production one has: gateway keys (auth on), consumers with their own keys, limits and
budgets, 50 routes each with a fallback target, retries, deadlines, a circuit breaker, context windows,
aliases, a few wildcard patterns, and prices for the route the benchmark calls. It is
compiled here with the project's own compiler and served from a table file with the admin port open,
the way the operator runs proxies. Options the CLI grows later (workers, metrics) are detected from
``--help`` so the benchmark keeps working before and after they land.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.procs import PROXY_CPU, Service, pinned, python_module
from modelyard_routing import Inventory, RoutingTable, compile_inventory
from modelyard_routing.consumer_spec import (
    MAX_BUDGET_USD,
    MAX_CONCURRENT,
    MAX_REQUESTS_PER_MINUTE,
    MAX_TOKENS_PER_MINUTE,
)

NAMESPACE = "default"
API_GROUP = "modelyard.io/v1alpha1"
#: The gateway key wrk sends; the table holds its sha256 among a handful of others.
BENCH_KEY = "sk-bench-8c1f0e4e7a2b4d0f9a1c"
ADMIN_TOKEN = "bench-admin-token"
#: A ModelConsumer's key: the same requests as ``BENCH_KEY``, admitted and settled against the consumer's
#: limits and budgets, which are high enough never to refuse one (so every request pays the full cost).
CONSUMER_KEY = "sk-bench-consumer-5d2a7f90c3e14b68"
CONSUMER = "bench-team"
#: The consumer's limits and budgets: the largest the spec allows, so none of them ever refuses a request.
CONSUMER_LIMITS = {
    "requestsPerMinute": MAX_REQUESTS_PER_MINUTE,
    "tokensPerMinute": MAX_TOKENS_PER_MINUTE,
    "concurrentRequests": MAX_CONCURRENT,
}
CONSUMER_BUDGETS = [{"period": "day", "usd": MAX_BUDGET_USD}, {"period": "month", "usd": MAX_BUDGET_USD}]
#: A list price per million tokens for the called route's models, so budgets count real money.
CHAT_PRICE = {"inputPerMTokens": 0.4, "outputPerMTokens": 1.6}
#: The public names the benchmark calls; the other routes are there to make the table realistic.
CHAT_MODEL = "chat-23"
ANTHROPIC_MODEL = "claude-bench"
STREAM_MODEL = "stream-openai"
STREAM_ANTHROPIC_MODEL = "stream-claude"


def telemetry_env(collector: str) -> dict[str, str]:
    """Tracing on, every span sampled, for OTLP/HTTP export to ``collector`` (which discards them).

    The benchmarked gateway runs through :mod:`bench.traced_gateway`, whose exporter drops each batch
    instead of encoding and sending it; with ``export=True`` (:func:`start`) the spans really go to the
    collector. Metrics are always on (the admin port serves them).
    """
    return {
        "OTEL_SERVICE_NAME": "modelyard-bench",
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }


def _doc(kind: str, name: str, spec: dict[str, Any], index: int = 0) -> dict[str, Any]:
    metadata = {
        "name": name,
        "namespace": NAMESPACE,
        "creationTimestamp": f"2026-01-01T00:{index // 60 % 60:02d}:{index % 60:02d}Z",
    }
    return {"apiVersion": API_GROUP, "kind": kind, "metadata": metadata, "spec": spec}


def _route(index: int, name: str, primary: str, fallback: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": name,
        "aliases": [f"{name}-latest"],
        "targets": [
            # The primary's upstream model is the public name, so an OpenAI-family body passes untouched.
            {"credentialRef": {"name": primary}, "model": name, "priority": 0, "contextWindow": 128000},
            {"credentialRef": {"name": fallback}, "model": f"{name}-fallback", "priority": 1, "contextWindow": 128000},
        ],
        "strategy": {"type": "priority"},
        "retry": {"attempts": 2, "maxTotalAttempts": 3, "backoff": {"initial": "100ms", "max": "1s"}},
        "timeouts": {"connect": "2s", "firstToken": "30s", "idle": "30s", "total": "120s"},
        "fallbackOn": ["rateLimit", "quotaExhausted", "serverError", "overloaded", "connectError", "timeout"],
        "circuitBreaker": {"failureRatePercent": 50, "minRequests": 10, "window": "30s", "cooldown": "15s"},
    }
    if index % 10 == 0:
        spec["modelPatterns"] = [f"{name}-*"]
    return _doc("ModelRoute", name, spec, index)


def _credential(
    name: str, provider: str, base_url: str, key: str, prices: dict[str, dict[str, float]] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "provider": provider,
        "baseURL": base_url,
        "secretRef": {"name": "provider-keys", "key": key},
    }
    if prices:
        spec["prices"] = prices
    return _doc("ProviderCredential", name, spec)


def _secret(name: str, values: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata = {"name": name, "namespace": NAMESPACE, **({"labels": labels} if labels else {})}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "stringData": values}


def _consumers() -> list[dict[str, Any]]:
    """The benchmark's consumer (every model, limits and budgets that never refuse) and four more teams with
    their own keys, narrower models and tighter limits, as a shared gateway has."""
    docs = [
        _secret("bench-team-keys", {"bench": CONSUMER_KEY}),
        _doc(
            "ModelConsumer",
            CONSUMER,
            {
                "keys": {"secretRefs": [{"name": "bench-team-keys"}]},
                "models": ["*"],
                "limits": CONSUMER_LIMITS,
                "budgets": CONSUMER_BUDGETS,
            },
        ),
    ]
    for index in range(4):
        team = f"team-{chr(ord('a') + index)}"
        docs.append(_secret(f"{team}-keys", {"app": f"sk-{team}-7c41e2d9", "ci": f"sk-{team}-ci-0b8e6a35"}))
        spec = {
            "keys": {"secretRefs": [{"name": f"{team}-keys"}]},
            "models": [f"chat-{index:02d}", "chat-1*"],
            "limits": {"requestsPerMinute": 600, "tokensPerMinute": 200_000, "concurrentRequests": 20},
            "budgets": [{"period": "hour", "usd": 5}, {"period": "month", "usd": 1000}],
        }
        docs.append(_doc("ModelConsumer", team, spec, index))
    return docs


def inventory(routes: int, upstream: str, sse: str) -> Inventory:
    """``routes`` routes (the last three are the Anthropic and streaming ones) over five credentials, and
    five consumers.

    ``upstream`` is nginx's base URL, ``sse`` the paced stream server's; both get ``/v1`` appended.
    """
    found = Inventory()
    docs = [
        _secret("provider-keys", {"openai": "sk-up-openai", "compat": "sk-up-compat", "anthropic": "sk-ant-up"}),
        _secret(
            "gateway-keys",
            {"bench": BENCH_KEY, **{f"team-{i}": f"sk-team-{i:02d}-3e9d1c7b" for i in range(20)}},
            {"modelyard.io/api-keys": "true"},
        ),
        _credential("primary", "openai", f"{upstream}/v1", "openai", {CHAT_MODEL: CHAT_PRICE}),
        _credential(
            "fallback", "openai-compatible", f"{upstream}/v1", "compat", {f"{CHAT_MODEL}-fallback": CHAT_PRICE}
        ),
        _credential("anthropic", "anthropic", f"{upstream}/v1", "anthropic"),
        _credential("sse-openai", "openai", f"{sse}/v1", "openai"),
        _credential("sse-anthropic", "anthropic", f"{sse}/v1", "anthropic"),
        *_consumers(),
    ]
    docs += [
        _route(i, f"chat-{i:02d}" if routes <= 100 else f"chat-{i:04d}", "primary", "fallback")
        for i in range(routes - 3)
    ]
    docs += [
        _route(routes - 3, ANTHROPIC_MODEL, "anthropic", "primary"),
        _route(routes - 2, STREAM_MODEL, "sse-openai", "fallback"),
        _route(routes - 1, STREAM_ANTHROPIC_MODEL, "sse-anthropic", "fallback"),
    ]
    for doc in docs:
        found.add_document(doc, "bench")
    return found


def compile_table(found: Inventory, generation: int = 1) -> RoutingTable:
    """The sealed table; fails loudly if any generated object was refused (a bench bug, not a result)."""
    result = compile_inventory(found, generation)
    problems = [f"{ref}: {c.message}" for ref, conds in result.conditions.items() for c in conds if not c.ok]
    if problems:
        raise SystemExit("generated manifests did not compile:\n" + "\n".join(problems[:10]))
    return result.table


@functools.cache
def serve_help() -> str:
    """``modelyard serve --help``: which options this build has."""
    done = subprocess.run(python_module("modelyard", "serve", "--help"), capture_output=True, text=True, check=True)
    return done.stdout


def counts_in_store() -> bool:
    """Whether this build counts consumers' limits and budgets in a shared store (``serve --store-url``)."""
    return "--store-url" in serve_help()


@dataclasses.dataclass(frozen=True, slots=True)
class Gateway:
    """A running gateway and how to reach it."""

    service: Service
    port: int
    admin_port: int

    @property
    def url(self) -> str:
        """Base URL of the public API."""
        return f"http://127.0.0.1:{self.port}"

    def metrics_endpoint(self) -> str | None:
        """Where this build exposes Prometheus metrics (admin port first), or None if it does not."""
        for where, url in (
            ("admin port /metrics", f"http://127.0.0.1:{self.admin_port}/metrics"),
            ("public port /metrics", f"{self.url}/metrics"),
        ):
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return where
            except (OSError, urllib.error.URLError):
                continue
        return None


def start(
    table: RoutingTable,
    folder: Path,
    ports: tuple[int, int],
    collector: str | None,
    running: list[Service],
    *,
    log_level: str = "INFO",
    env: Mapping[str, str] | None = None,
    name: str = "modelyard",
    export: bool = False,
    store_url: str | None = None,
) -> Gateway:
    """Serve ``table`` from a file in operator mode on ``ports`` (public, admin), pinned to the proxy core, one
    worker, with ``env`` added and consumers counted in the store at ``store_url`` (None: in the process);
    the service joins ``running``.

    ``collector`` None switches tracing off; otherwise every span is built and batched, then discarded by
    a no-op exporter, or with ``export`` encoded and sent to ``collector`` over OTLP/HTTP.
    """
    port, admin_port = ports
    table_file = folder / f"{name}-routing-table.json"
    table_file.write_bytes(table.to_wire())
    token_file = folder / "admin-token"
    token_file.write_text(ADMIN_TOKEN)
    args = ["--log-level", log_level, "serve", "--table", str(table_file), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--admin-port", str(admin_port), "--admin-token-file", str(token_file)]
    if "--workers" in serve_help():
        args += ["--workers", "1"]  # the targets are per worker, and the proxy gets one core
    if store_url is not None:
        args += ["--store-url", store_url]  # no password: the bench's store is on loopback
    environment = {**(telemetry_env(collector) if collector else {}), **(env or {})}
    module = "modelyard" if export or collector is None else "bench.traced_gateway"
    service = Service(name, pinned(PROXY_CPU, python_module(module, *args)), folder, environment)
    running.append(service)
    service.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
    return Gateway(service, port, admin_port)
