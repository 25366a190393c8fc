"""A cluster without a cluster: kmock's Kubernetes emulator, the real operator and real proxy processes.

The emulator is an in-memory API server over HTTP; it keeps objects as plain JSON, so ``Cluster`` plays the
API server's part for metadata (uid, generation bumped on spec changes, creation time) and the kubelet's
part for Secret mounts. The operator and the proxies are subprocesses on loopback, started exactly as the
Deployments start them (``modelyard operator``, ``modelyard serve --table``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import kmock
import yaml

from modelyard_routing import RoutingTable
from modelyard_routing.push import TABLE_SECRET_KEY

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
PROXY_NAMESPACE = "modelyard-system"
ROUTES_NAMESPACE = "default"
PROXY_SERVICE = "modelyard-proxy"
TABLE_SECRET = "modelyard-routing-table"
ADMIN_TOKEN = "test-admin-token"
API_KEY = "sk-modelyard-test"
START_TIMEOUT = 15.0

#: Where each core kind the operator uses lives in the API.
CORE_KINDS: dict[str, tuple[str, str, bool]] = {
    # kind: (group/version, plural, namespaced)
    "Namespace": ("v1", "namespaces", False),
    "Secret": ("v1", "secrets", True),
    "Event": ("v1", "events", True),
    "EndpointSlice": ("discovery.k8s.io/v1", "endpointslices", True),
}


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _crd_kinds() -> dict[str, tuple[str, str, bool]]:
    kinds = {}
    for path in sorted(CRDS.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())["spec"]
        version = next(v["name"] for v in spec["versions"] if v.get("served"))
        kinds[spec["names"]["kind"]] = (
            f"{spec['group']}/{version}",
            spec["names"]["plural"],
            spec["scope"] == "Namespaced",
        )
    return kinds


#: The CRDs' kinds, read from ``crds/`` so the emulator serves exactly what the cluster would.
CUSTOM_KINDS = _crd_kinds()
#: ModelConsumer is served even while ``crds/`` has no manifest for it yet: the operator watches it.
CUSTOM_KINDS.setdefault("ModelConsumer", ("modelyard.io/v1alpha1", "modelconsumers", True))
KINDS = {**CORE_KINDS, **CUSTOM_KINDS}


def _path(kind: str, namespace: str | None, name: str = "") -> str:
    group_version, plural, namespaced = KINDS[kind]
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    scope = f"/namespaces/{namespace}" if namespaced and namespace else ""
    return f"{prefix}{scope}/{plural}" + (f"/{name}" if name else "")


class ProxyPod(Protocol):
    """What an EndpointSlice says about a proxy pod: its name and its two ports on loopback."""

    @property
    def name(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def admin_port(self) -> int: ...


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 15.0, what: str = "") -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or check}")
        await asyncio.sleep(0.1)


class Cluster:
    """The emulated API server, with the bits of API-server and kubelet behaviour the tests rely on."""

    def __init__(self, emulator: kmock.KubernetesEmulator, server: kmock.Server, workdir: Path) -> None:
        self.emulator = emulator
        self.server = server
        self.url = str(server.url).rstrip("/")
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                    "users": [{"name": "operator", "user": {"token": "emulator-token"}}],
                    "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "operator"}}],
                    "current-context": "emulator",
                }
            )
        )
        self._uids = itertools.count(1)
        self._created = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, workdir: Path) -> AsyncIterator[Cluster]:
        """An emulator with the core resources kopf needs and the CRDs from ``crds/`` declared."""
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
            for kind, (group_version, plural, namespaced) in KINDS.items():
                emulator.resources[f"{group_version}/{plural}"] = kmock.ResourceInfo(
                    kind=kind,
                    namespaced=namespaced,
                    verbs={"get", "list", "watch", "create", "patch", "delete"},
                    subresources={"status"} if kind in CUSTOM_KINDS else set(),
                )
            yield cls(emulator, server, workdir)

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        async with self.server.client.request(method, path, json=body, headers=headers) as resp:
            assert resp.status < 400, f"{method} {path}: {resp.status} {await resp.text()}"
            return await resp.json()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object, or None."""
        group_version, plural, _ = KINDS[kind]
        key = (kmock.resource(f"{group_version}/{plural}"), namespace, name)
        if key not in self.emulator.objects or self.emulator.objects[key].deleted:
            return None
        return copy.deepcopy(dict(self.emulator.objects[key].raw))

    async def apply(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Create or merge-patch ``doc`` like ``kubectl apply`` would, with the API server's metadata."""
        kind, meta = doc["kind"], doc["metadata"]
        namespace = meta.get("namespace", ROUTES_NAMESPACE)
        existing = self.get(kind, namespace, meta["name"])
        body = copy.deepcopy(dict(doc))
        if kind == "Secret" and "stringData" in body:
            strings = body.pop("stringData")
            body["data"] = {k: base64.b64encode(str(v).encode()).decode() for k, v in strings.items()}
        if existing is None:
            body["metadata"] = {
                **meta,
                "namespace": namespace,
                "uid": f"uid-{next(self._uids)}",
                "generation": 1,
                "creationTimestamp": f"2026-01-01T00:{(n := next(self._created)) // 60:02d}:{n % 60:02d}Z",
                "resourceVersion": "1",
            }
            result: dict[str, Any] = await self._call("POST", _path(kind, namespace), body)
            return result
        generation = existing["metadata"].get("generation", 1)
        if "spec" in body and body["spec"] != existing.get("spec"):
            generation += 1
        body["metadata"] = {**meta, "generation": generation}
        if kind == "Secret":  # Secrets are replaced as a whole, like kubectl apply with a full manifest
            body["data"] = {**dict.fromkeys(existing.get("data") or {}), **body.get("data", {})}
        patched: dict[str, Any] = await self._call("PATCH", _path(kind, namespace, meta["name"]), body)
        return patched

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete an object (none of the operator's writes add finalizers, so it goes at once)."""
        await self._call("DELETE", _path(kind, namespace, name))

    def status(self, kind: str, name: str, namespace: str = ROUTES_NAMESPACE) -> dict[str, Any]:
        """The object's status (empty if none yet)."""
        obj = self.get(kind, namespace, name) or {}
        return dict(obj.get("status") or {})

    def condition(self, kind: str, name: str, type_: str, namespace: str = ROUTES_NAMESPACE) -> dict[str, Any]:
        """One condition of the object's status (empty if absent)."""
        for condition in self.status(kind, name, namespace).get("conditions") or ():
            if condition["type"] == type_:
                return dict(condition)
        return {}

    def events(self, name: str, namespace: str = ROUTES_NAMESPACE) -> list[dict[str, Any]]:
        """The Events posted about ``name``."""
        return [
            dict(obj.raw)
            for (resource, ns, _), obj in self.emulator.objects.items()
            if resource == kmock.resource("v1/events") and ns == namespace and not obj.deleted
            if obj.raw.get("involvedObject", {}).get("name") == name
        ]

    def status_patches(self, kind: str) -> list[str]:
        """The names of the objects of ``kind`` whose status subresource was patched, one per request, in order."""
        _, plural, _ = KINDS[kind]
        names = []
        for request in self.emulator:
            *_, resource, name, subresource = ["", "", "", *request.url.path.split("/")]
            if request.method == kmock.method.PATCH and (resource, subresource) == (plural, "status"):
                names.append(name)
        return names

    def reads(self) -> list[str]:
        """Every path read from the emulator (gets, lists and watches; the tests' own writes are not reads)."""
        return [str(request.url.path) for request in self.emulator if request.method == kmock.method.GET]

    def table(self) -> RoutingTable:
        """The table the operator last wrote into the table Secret (the one it pushes)."""
        secret = self.get("Secret", PROXY_NAMESPACE, TABLE_SECRET)
        assert secret is not None, "the operator has not written the table Secret"
        return RoutingTable.from_wire(base64.b64decode(secret["data"][TABLE_SECRET_KEY]))

    def mount_table(self, path: Path) -> None:
        """Do the kubelet's job: project the table Secret's key into a file, by an atomic swap."""
        secret = self.get("Secret", PROXY_NAMESPACE, TABLE_SECRET)
        assert secret is not None, "the operator has not written the table Secret"
        staging = path.with_suffix(".tmp")
        staging.write_bytes(base64.b64decode(secret["data"][TABLE_SECRET_KEY]))
        staging.replace(path)

    async def add_proxy_endpoint(self, proxy: ProxyPod, *, ready: bool = True) -> None:
        """The proxy Service's EndpointSlice for one pod (one slice per pod: each has its own loopback port)."""
        await self.apply(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{PROXY_SERVICE}-{proxy.name}",
                    "namespace": PROXY_NAMESPACE,
                    "labels": {"kubernetes.io/service-name": PROXY_SERVICE},
                },
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": proxy.port}, {"name": "admin", "port": proxy.admin_port}],
                "endpoints": [
                    {
                        "addresses": ["127.0.0.1"],
                        "conditions": {"ready": ready},
                        "targetRef": {"kind": "Pod", "name": proxy.name, "namespace": PROXY_NAMESPACE},
                    }
                ],
            }
        )


class Process:
    """A child process whose output goes to a log file, shown when a test fails."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.args = args
        self.env = {**os.environ, **env}
        # Never let a child find a real cluster from the environment it inherited.
        for variable in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
            self.env.pop(variable, None)
        self.log = log
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the process (not waiting for it to be ready)."""
        with self.log.open("ab") as out:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "modelyard", *self.args, env=self.env, stdout=out, stderr=out, cwd=REPO
            )

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the process and wait for it to exit."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(sig)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.returncode is None

    def output(self) -> str:
        """Everything the process logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class ProxyProcess(Process):
    """``modelyard serve --table`` on loopback: a proxy pod with its Secret mount at ``table``."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.table = workdir / f"{name}-table.json"
        super().__init__(
            name,
            [
                *("serve", "--table", str(self.table), "--host", "127.0.0.1", "--port", str(self.port)),
                *("--admin-port", str(self.admin_port), "--reload-interval", "0.2"),
            ],
            # One process per proxy, whatever the machine's CPUs: tests/cli/test_workers.py covers several.
            {
                "MODELYARD_ADMIN_TOKEN": ADMIN_TOKEN,
                "MODELYARD_ACCESS_LOG": "0",
                "MODELYARD_API_KEYS": "",
                "MODELYARD_WORKERS": "1",
            },
            workdir / f"{name}.log",
        )

    @property
    def url(self) -> str:
        """The public base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start and wait until both ports answer."""
        await super().start()

        async def up() -> bool:
            admin = f"http://127.0.0.1:{self.admin_port}/admin/v1/routing-table"
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.get(f"{self.url}/healthz") as resp:
                        if resp.status != 200:
                            return False
                    # With several workers the admin port opens once every one of them serves.
                    async with session.get(admin, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
                        return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(up, START_TIMEOUT, f"proxy {self.name} to start\n{self.output()}")

    async def served(self) -> dict[str, Any]:
        """What ``/admin/v1/routing-table`` says: generation and hash."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        url = f"http://127.0.0.1:{self.admin_port}/admin/v1/routing-table"
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
            result: dict[str, Any] = await resp.json()
            return result

    async def models(self) -> set[str]:
        """The public model names the proxy serves (empty if it serves no table)."""
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/v1/models", headers=headers) as resp:
            if resp.status != 200:
                return set()
            return {model["id"] for model in (await resp.json())["data"]}

    async def chat(self, model: str) -> tuple[int, dict[str, Any]]:
        """One non-streamed chat completion through this proxy."""
        body = {"model": model, "messages": [{"role": "user", "content": "Hello!"}]}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/v1/chat/completions", json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json()


class OperatorProcess(Process):
    """``modelyard operator`` against the emulator, with test-sized debounce, resync, backoff and usage refresh."""

    def __init__(self, cluster: Cluster, workdir: Path, *extra_args: str) -> None:
        self.health_port = free_port()
        super().__init__(
            "operator",
            [
                *("operator", "--watch-namespace", ROUTES_NAMESPACE, "--namespace", PROXY_NAMESPACE),
                *("--kubeconfig", str(cluster.kubeconfig), *extra_args),
            ],
            {
                "MODELYARD_ADMIN_TOKEN": ADMIN_TOKEN,
                "MODELYARD_DEBOUNCE": "0.1",
                "MODELYARD_MAX_DEBOUNCE": "0.5",
                "MODELYARD_RESYNC_INTERVAL": "1",
                "MODELYARD_RETRY_INITIAL": "0.2",
                "MODELYARD_RETRY_MAX": "1",
                "MODELYARD_PUSH_TIMEOUT": "2",
                "MODELYARD_HEALTH_PORT": str(self.health_port),
                "MODELYARD_USAGE_INTERVAL": "0.5",
            },
            workdir / "operator.log",
        )

    async def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        """What ``/healthz`` or ``/readyz`` answers: (0, {}) while nothing listens yet."""
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{self.health_port}{path}") as resp,
            ):
                return resp.status, await resp.json()
        except aiohttp.ClientConnectionError:
            return 0, {}
