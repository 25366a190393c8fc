"""Proxy settings: flags on the command line, with environment variables as defaults for containers."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from modelyard_proxy.base.cpus import default_workers

MiB = 1024 * 1024
#: What turns a switch off in the environment.
_OFF = ("0", "off", "false", "no")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _env_either_case(name: str) -> str:
    """A conventional variable such as ``https_proxy``: the lowercase name first, as curl and Python read it."""
    return os.environ.get(name) or os.environ.get(name.upper()) or ""


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclasses.dataclass(frozen=True, slots=True)
class ProxySettings:
    """How one proxy process listens, limits requests and talks to upstreams."""

    host: str = dataclasses.field(default_factory=lambda: os.environ.get("MODELYARD_HOST", "0.0.0.0"))  # noqa: S104
    port: int = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_PORT", 8080))
    #: Largest request body accepted (after decompression); prompts with images outgrow aiohttp's 1 MiB default
    #: quickly, and a chat body past 16 MiB is more often a mistake or an attack than a prompt.
    max_body_bytes: int = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_MAX_BODY_BYTES", 16 * MiB))
    #: JSON values (objects, arrays, strings, numbers) one body may hold: what parsing costs in memory is the
    #: count of values more than the byte size (900,000 short messages in 28 MB take 500 MB once parsed).
    max_json_values: int = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_MAX_JSON_VALUES", 300_000))
    #: How deeply a body's arrays and objects may nest.
    max_json_depth: int = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_MAX_JSON_DEPTH", 64))
    #: Messages one chat request may carry.
    max_messages: int = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_MAX_MESSAGES", 10_000))
    #: Seconds a client may take to send a request's line and headers (from its first byte, or from the
    #: connection's opening) and, separately, its whole body.
    header_timeout: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_HEADER_TIMEOUT", 10.0))
    body_timeout: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_BODY_TIMEOUT", 60.0))
    #: Seconds an idle keep-alive connection is kept open (above the usual load balancers' 60 s idle time, so the
    #: balancer, not the gateway, closes first).
    keepalive_timeout: float = dataclasses.field(
        default_factory=lambda: _env_float("MODELYARD_KEEPALIVE_TIMEOUT", 75.0)
    )
    #: Client connections one worker keeps open at once; more are answered 503 and closed (0: no cap).
    max_connections: int = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_MAX_CONNECTIONS", 4096))
    connect_timeout: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_CONNECT_TIMEOUT", 10.0))
    #: Longest silence tolerated between upstream bytes (a reasoning model may think for minutes).
    read_timeout: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_READ_TIMEOUT", 600.0))
    #: Upstream connection pool size shared by every route in the process.
    pool_size: int = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_POOL_SIZE", 1000))
    #: Extra gateway API keys (plaintext, comma-separated in MODELYARD_API_KEYS), added to the table's.
    api_keys: tuple[str, ...] = dataclasses.field(
        default_factory=lambda: tuple(
            k.strip() for k in os.environ.get("MODELYARD_API_KEYS", "").split(",") if k.strip()
        )
    )
    #: Seconds SIGTERM waits for in-flight requests and streams before cutting them (keep it under the pod's
    #: termination grace period minus its preStop sleep).
    shutdown_timeout: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_SHUTDOWN_TIMEOUT", 60.0))
    #: aiohttp's access log, off unless MODELYARD_ACCESS_LOG=1: the audit line already records every request's
    #: status, route and time, and a second line per request costs measurable CPU on the request path.
    access_log: bool = dataclasses.field(default_factory=lambda: os.environ.get("MODELYARD_ACCESS_LOG", "0") != "0")
    #: Port of the admin app the operator pushes tables to (operator mode only); None serves no admin port.
    admin_port: int | None = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_ADMIN_PORT", 0) or None)
    #: Record prompt and completion text on spans (opt-in, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT).
    capture_content: bool = dataclasses.field(
        default_factory=lambda: (
            os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").lower() == "true"
        )
    )
    #: File holding the admin bearer token (a mounted Secret, re-read on change); else MODELYARD_ADMIN_TOKEN.
    admin_token_file: Path | None = dataclasses.field(
        default_factory=lambda: Path(p) if (p := os.environ.get("MODELYARD_ADMIN_TOKEN_FILE")) else None
    )
    #: The Redis-protocol store (``redis://`` or ``rediss://``, Valkey or Redis) every pod and worker counts
    #: limits and budgets in; None counts them in each process (exact for one process only).
    store_url: str | None = dataclasses.field(default_factory=lambda: os.environ.get("MODELYARD_STORE_URL") or None)
    #: The store's password, from the environment only (a Secret), never a flag or a log line.
    store_password: str | None = dataclasses.field(
        default_factory=lambda: os.environ.get("MODELYARD_STORE_PASSWORD") or None, repr=False
    )
    #: Milliseconds one store call may take before the consumer's ``onStoreFailure`` applies.
    store_timeout_ms: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_STORE_TIMEOUT_MS", 25.0))
    #: Prefix of every key in the store, so several gateways can share one.
    store_prefix: str = dataclasses.field(
        default_factory=lambda: os.environ.get("MODELYARD_STORE_PREFIX", "modelyard:")
    )
    #: Keep ``POST /v1/responses`` conversations in the gateway (``previous_response_id``, ``item_reference``):
    #: on unless MODELYARD_RESPONSES_STORE is 0/off/false. Off, requests naming a stored response are refused.
    responses_store: bool = dataclasses.field(
        default_factory=lambda: os.environ.get("MODELYARD_RESPONSES_STORE", "on").lower() not in _OFF
    )
    #: Seconds a stored response can be continued. A day: a conversation left open over a working day still
    #: continues, while every conversation a busy gateway answers (prompts and completions, kept in the clear)
    #: does not pile up in the store for OpenAI's 30 days, which serve a retrieval API the gateway does not offer.
    responses_ttl: int = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_RESPONSES_TTL", 86_400))
    #: Largest stored conversation (input and output items, as JSON); a larger one is answered but not kept.
    #: Each turn stores the whole conversation, so this bounds the store per turn as the body limit bounds a request.
    responses_max_bytes: int = dataclasses.field(
        default_factory=lambda: _env_int("MODELYARD_RESPONSES_MAX_BYTES", 8 * MiB)
    )
    #: Without a shared store, each process keeps at most this many entries (responses and their output items)
    #: and bytes, the least recently used dropped first.
    responses_memory_entries: int = dataclasses.field(
        default_factory=lambda: _env_int("MODELYARD_RESPONSES_MEMORY_ENTRIES", 20_000)
    )
    responses_memory_bytes: int = dataclasses.field(
        default_factory=lambda: _env_int("MODELYARD_RESPONSES_MEMORY_BYTES", 64 * MiB)
    )
    #: Milliseconds one conversation read or write in the shared store may take before the request is answered
    #: 503: longer than a counter's bound, since a conversation may be megabytes and is read once per request.
    responses_store_timeout_ms: float = dataclasses.field(
        default_factory=lambda: _env_float("MODELYARD_RESPONSES_STORE_TIMEOUT_MS", 500.0)
    )
    #: Processes serving the public port (SO_REUSEPORT); more than one adds a supervisor that owns the admin
    #: port. 0 or unset: the container's CPU limit (cgroup quota, capped by the CPUs it may run on).
    workers: int = dataclasses.field(default_factory=lambda: _env_int("MODELYARD_WORKERS", 0) or default_workers())
    #: Forward proxies for upstream calls (``https_proxy``/``HTTPS_PROXY``, ``http_proxy``/``HTTP_PROXY``) and the
    #: hosts reached directly (``no_proxy``/``NO_PROXY``), read once at startup. A proxy URL may carry a user and
    #: password, so none of them is ever shown.
    https_proxy: str = dataclasses.field(default_factory=lambda: _env_either_case("https_proxy"), repr=False)
    http_proxy: str = dataclasses.field(default_factory=lambda: _env_either_case("http_proxy"), repr=False)
    no_proxy: str = dataclasses.field(default_factory=lambda: _env_either_case("no_proxy"))
    #: PEM file of CA certificates trusted for upstream calls on top of the system's store (a TLS-intercepting
    #: corporate proxy, an internal CA every upstream shares).
    ca_bundle: Path | None = dataclasses.field(
        default_factory=lambda: Path(p) if (p := os.environ.get("MODELYARD_CA_BUNDLE")) else None
    )
