"""Operator settings: command-line flags, with environment variables as defaults for the Deployment."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclasses.dataclass(frozen=True, slots=True)
class OperatorSettings:
    """What the operator watches, where the proxies are, and how patiently it talks to them."""

    #: Namespaces whose ModelRoutes, ProviderCredentials and Secrets are served; empty means all of them.
    watch_namespaces: tuple[str, ...] = dataclasses.field(
        default_factory=lambda: _env_list("MODELYARD_WATCH_NAMESPACES")
    )
    #: Namespaces whose ModelConsumers may grant models, limits and budgets (and whose Secrets their keys come
    #: from); empty means the operator's own namespace only. A consumer anywhere else grants nothing.
    consumer_namespaces: tuple[str, ...] = dataclasses.field(
        default_factory=lambda: _env_list("MODELYARD_CONSUMER_NAMESPACES")
    )
    #: The operator's own namespace: the proxies, their Service and the table Secret live here.
    namespace: str = dataclasses.field(
        default_factory=lambda: _env("MODELYARD_NAMESPACE") or _env("POD_NAMESPACE") or "modelyard-system"
    )
    #: The Secret the table is written to (proxy pods mount it at start).
    table_secret: str = dataclasses.field(
        default_factory=lambda: _env("MODELYARD_TABLE_SECRET", "modelyard-routing-table")
    )
    #: The proxies' Service: its EndpointSlices (label kubernetes.io/service-name) list the pods to push to.
    proxy_service: str = dataclasses.field(default_factory=lambda: _env("MODELYARD_PROXY_SERVICE", "modelyard-proxy"))
    #: Name of the EndpointSlice port that is the proxies' admin port.
    admin_port_name: str = dataclasses.field(default_factory=lambda: _env("MODELYARD_ADMIN_PORT_NAME", "admin"))
    #: File holding the admin bearer token (a mounted Secret); else the MODELYARD_ADMIN_TOKEN variable.
    admin_token_file: Path | None = dataclasses.field(default_factory=lambda: _env_path("MODELYARD_ADMIN_TOKEN_FILE"))
    #: Kubeconfig for running outside the cluster; inside, the service account is used.
    kubeconfig: Path | None = dataclasses.field(default_factory=lambda: _env_path("KUBECONFIG"))
    #: Quiet time after the last change before recompiling, so a `kubectl apply` of many objects is one table.
    debounce: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_DEBOUNCE", 0.5))
    #: Longest a stream of changes can postpone a recompile.
    max_debounce: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_MAX_DEBOUNCE", 5.0))
    #: How often every proxy is asked what it serves, catching restarted pods and missed pushes.
    resync_interval: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_RESYNC_INTERVAL", 15.0))
    #: Timeout of one push or query to one proxy.
    push_timeout: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_PUSH_TIMEOUT", 5.0))
    #: First and largest delay between retries of a failed push (doubling in between).
    retry_initial: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_RETRY_INITIAL", 0.5))
    retry_max: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_RETRY_MAX", 30.0))
    #: Port of the probes (``/healthz``, ``/readyz``) on every interface; 0 serves none.
    health_port: int = dataclasses.field(default_factory=lambda: int(_env("MODELYARD_HEALTH_PORT") or 0))
    #: Longest one reconcile pass may run before ``/healthz`` fails, so that the kubelet restarts a wedged pod.
    stall_timeout: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_STALL_TIMEOUT", 300.0))
    #: How often consumers' spend is read from a proxy's usage endpoint into their status.
    usage_interval: float = dataclasses.field(default_factory=lambda: _env_float("MODELYARD_USAGE_INTERVAL", 20.0))

    def watches(self, namespace: str | None) -> bool:
        """Whether routes, credentials and Secrets in ``namespace`` are served."""
        return not self.watch_namespaces or namespace in self.watch_namespaces

    @property
    def trusted_namespaces(self) -> tuple[str, ...]:
        """Where ModelConsumers grant anything: ``consumer_namespaces``, else the operator's own namespace."""
        return self.consumer_namespaces or (self.namespace,)

    def trusts(self, namespace: str | None) -> bool:
        """Whether ModelConsumers in ``namespace`` may grant anything (and read its Secrets for their keys)."""
        return namespace in self.trusted_namespaces

    def kopf_namespaces(self) -> list[str]:
        """What kopf must watch: the served namespaces plus the operator's own (for the EndpointSlices) and the
        trusted consumer namespaces."""
        if not self.watch_namespaces:
            return []
        return sorted({*self.watch_namespaces, self.namespace, *self.trusted_namespaces})
