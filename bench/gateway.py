"""Modelyard as deployed: a realistic generated table, served in operator mode with telemetry switched on.

The table has what a production one has: gateway keys (auth on), 50 routes each with a fallback target,
retries, deadlines, a circuit breaker, context windows, aliases and a few wildcard patterns. It is
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

NAMESPACE = "default"
API_GROUP = "modelyard.io/v1alpha1"
#: The gateway key wrk sends; the table holds its sha256 among a handful of others.
BENCH_KEY = "sk-bench-8c1f0e4e7a2b4d0f9a1c"
ADMIN_TOKEN = "bench-admin-token"
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


def _credential(name: str, provider: str, base_url: str, key: str) -> dict[str, Any]:
    spec = {"provider": provider, "baseURL": base_url, "secretRef": {"name": "provider-keys", "key": key}}
    return _doc("ProviderCredential", name, spec)


def inventory(routes: int, upstream: str, sse: str) -> Inventory:
    """``routes`` routes (the last three are the Anthropic and streaming ones) over five credentials.

    ``upstream`` is nginx's base URL, ``sse`` the paced stream server's; both get ``/v1`` appended.
    """
    found = Inventory()
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "provider-keys", "namespace": NAMESPACE},
            "stringData": {"openai": "sk-up-openai", "compat": "sk-up-compat", "anthropic": "sk-ant-up"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "gateway-keys", "namespace": NAMESPACE, "labels": {"modelyard.io/api-keys": "true"}},
            "stringData": {"bench": BENCH_KEY, **{f"team-{i}": f"sk-team-{i:02d}-3e9d1c7b" for i in range(20)}},
        },
        _credential("primary", "openai", f"{upstream}/v1", "openai"),
        _credential("fallback", "openai-compatible", f"{upstream}/v1", "compat"),
        _credential("anthropic", "anthropic", f"{upstream}/v1", "anthropic"),
        _credential("sse-openai", "openai", f"{sse}/v1", "openai"),
        _credential("sse-anthropic", "anthropic", f"{sse}/v1", "anthropic"),
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
) -> Gateway:
    """Serve ``table`` from a file in operator mode on ``ports`` (public, admin), pinned to the proxy core, one
    worker, with ``env`` added; the service joins ``running``.

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
    environment = {**(telemetry_env(collector) if collector else {}), **(env or {})}
    module = "modelyard" if export or collector is None else "bench.traced_gateway"
    service = Service(name, pinned(PROXY_CPU, python_module(module, *args)), folder, environment)
    running.append(service)
    service.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
    return Gateway(service, port, admin_port)
