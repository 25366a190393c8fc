"""The only module, besides kopf itself, that talks to the Kubernetes API.

It writes what the operator decides (the table Secret, statuses, Events) with a few raw REST calls on
aiohttp, in the same event loop as kopf: cancellable on shutdown, no thread pool, and one connection pool.
The ``kubernetes`` package is used only to read a kubeconfig or the in-cluster service account; the result
is handed to kopf too (see ``handlers.lifecycle``), so both always talk to the same cluster as the same user.
"""

from __future__ import annotations

import datetime
import logging
import os
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import kubernetes

from modelyard_routing.manifests import ObjectRef
from modelyard_routing.specs import API_VERSION

log = logging.getLogger(__name__)

#: Where each kind the operator writes to lives in the API.
API_PATHS: dict[str, tuple[str, str]] = {
    "ModelRoute": (f"/apis/{API_VERSION}", "modelroutes"),
    "ProviderCredential": (f"/apis/{API_VERSION}", "providercredentials"),
    "ModelConsumer": (f"/apis/{API_VERSION}", "modelconsumers"),
    "Secret": ("/api/v1", "secrets"),
    "Event": ("/api/v1", "events"),
}
MERGE_PATCH = "application/merge-patch+json"
COMPONENT = "modelyard-operator"


class KubeError(Exception):
    """A Kubernetes API call that failed; ``status`` is the HTTP status (0 when unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kubernetes API answered {status}: {message}" if status else message)
        self.status = status


def load_connection(kubeconfig: Path | None) -> kopf.ConnectionInfo:
    """Credentials from ``kubeconfig``, else the in-cluster service account, else ``~/.kube/config``."""
    config = kubernetes.client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
        else:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig else None, client_configuration=config
            )
    except kubernetes.config.ConfigException as exc:
        raise kopf.LoginError(f"no Kubernetes credentials: {exc}") from exc
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=info.ca_path)
    if info.certificate_path:
        context.load_cert_chain(info.certificate_path, info.private_key_path)
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def object_path(ref: ObjectRef, subresource: str = "") -> str:
    """The API path of a namespaced object (or, with an empty name, of its collection)."""
    prefix, plural = API_PATHS[ref.kind]
    path = f"{prefix}/namespaces/{ref.namespace}/{plural}"
    path += f"/{ref.name}" if ref.name else ""
    return path + (f"/{subresource}" if subresource else "")


class KubeClient:
    """A minimal async client: read and write Secrets, patch statuses, post Events."""

    def __init__(self, kubeconfig: Path | None = None, timeout: float = 30.0) -> None:
        self._kubeconfig = kubeconfig
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._info: kopf.ConnectionInfo | None = None
        self._session: aiohttp.ClientSession | None = None
        self._session_stale = True

    def login(self) -> kopf.ConnectionInfo:
        """(Re-)read the credentials; the next call opens a new session with them."""
        self._info = load_connection(self._kubeconfig)
        self._session_stale = True
        return self._info

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _session_for(self) -> tuple[aiohttp.ClientSession, kopf.ConnectionInfo]:
        if self._info is None:
            self.login()
        assert self._info is not None
        if self._session is None or self._session_stale:
            await self.close()
            secure = self._info.server.startswith("https:")
            connector = aiohttp.TCPConnector(ssl=_ssl_context(self._info) if secure else False)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._session_stale = False
        return self._session, self._info

    async def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        """One API call; None for a 404 when ``missing_ok``. Re-reads the credentials once on a 401."""
        for attempt in range(2):
            session, info = await self._session_for()
            headers = {**info.as_http_headers(), "User-Agent": COMPONENT}
            if method == "PATCH":
                headers["Content-Type"] = MERGE_PATCH
            try:
                async with session.request(method, info.server.rstrip("/") + path, json=body, headers=headers) as resp:
                    if resp.status == 401 and attempt == 0:
                        self.login()  # a rotated service-account token
                        continue
                    if resp.status == 404 and missing_ok:
                        return None
                    if resp.status >= 400:
                        raise KubeError(resp.status, (await resp.text())[:500])
                    result: dict[str, Any] = await resp.json(content_type=None)
                    return result
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise KubeError(0, f"Kubernetes API unreachable: {exc!r}") from exc
        raise KubeError(401, "credentials refused")

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret as the API returns it, or None if it does not exist."""
        return await self.request("GET", object_path(ObjectRef("Secret", namespace, name)), missing_ok=True)

    async def write_secret(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """Merge ``patch`` (metadata and base64 ``data``) into the Secret, creating it if absent."""
        ref = ObjectRef("Secret", namespace, name)
        if await self.request("PATCH", object_path(ref), patch, missing_ok=True) is None:
            body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", **patch}
            body["metadata"] = {**patch.get("metadata", {}), "name": name, "namespace": namespace}
            await self.request("POST", object_path(ObjectRef("Secret", namespace, "")), body)

    async def patch_status(self, ref: ObjectRef, status: Mapping[str, Any]) -> None:
        """Merge ``status`` into the object's status subresource."""
        await self.request("PATCH", object_path(ref, "status"), {"status": status})

    async def post_event(self, ref: ObjectRef, uid: str, type_: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event about ``ref`` (what `kubectl describe` shows)."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        api_version = "v1" if ref.kind == "Secret" else API_VERSION
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.name}.{time.time_ns():x}", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": api_version,
                "kind": ref.kind,
                "namespace": ref.namespace,
                "name": ref.name,
                "uid": uid,
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self.request("POST", object_path(ObjectRef("Event", ref.namespace, "")), body)
