"""Which proxy pods exist and where their admin ports are, read from the proxy Service's EndpointSlices.

EndpointSlices are what the Service itself routes by, so "ready" here means exactly what it means for
traffic: a pod that receives requests is a pod that must have the table. Pods not ready yet are pushed to
as well (a proxy without a table is not ready, so waiting for readiness would wait forever); terminating
ones are left alone. The admin port comes from the slice's named port, so the operator needs no
knowledge of the Deployment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

#: The label Kubernetes puts on every EndpointSlice of a Service.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class ProxyEndpoint:
    """One proxy pod: a stable name (the pod's, else its address), its admin base URL, and readiness."""

    name: str
    url: str
    ready: bool = True


def _host(address: str) -> str:
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address  # an FQDN slice


def proxy_endpoints(slice_body: Mapping[str, Any], port_name: str) -> tuple[ProxyEndpoint, ...]:
    """The live (not terminating) endpoints of one EndpointSlice, addressed at its port named ``port_name``."""
    ports = [p for p in slice_body.get("ports") or () if p.get("name") == port_name and p.get("port")]
    if not ports:
        return ()
    port = int(ports[0]["port"])
    found = []
    for endpoint in slice_body.get("endpoints") or ():
        conditions = endpoint.get("conditions") or {}
        if conditions.get("terminating") is True or not endpoint.get("addresses"):
            continue
        address = str(endpoint["addresses"][0])
        name = str((endpoint.get("targetRef") or {}).get("name") or f"{address}:{port}")
        # Per the EndpointSlice API, an absent `ready` means ready.
        found.append(ProxyEndpoint(name, f"http://{_host(address)}:{port}", conditions.get("ready") is not False))
    return tuple(found)


def merge(slices: Iterable[Iterable[ProxyEndpoint]]) -> tuple[ProxyEndpoint, ...]:
    """Every pod once (dual-stack Services list a pod in two slices), in a stable order."""
    by_name: dict[str, ProxyEndpoint] = {}
    for endpoints in slices:
        for endpoint in endpoints:
            by_name.setdefault(endpoint.name, endpoint)
    return tuple(sorted(by_name.values()))
