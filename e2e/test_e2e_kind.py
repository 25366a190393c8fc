"""End to end on a throwaway kind cluster: image, Helm chart, operator, proxies, simulator, the openai SDK.

The flow: build the image, create a kind cluster, load the image, ``helm install`` the chart, run the
provider simulator as a Deployment, apply ``examples/standalone`` pointed at it, then drive traffic with
the official ``openai`` SDK through ``kubectl port-forward``: every route Programmed, streams, scaling,
Secret rotation, the operator killed mid-traffic, ``helm test``, and a clean ``helm uninstall``.

Opt-in: ``make e2e`` (MODELYARD_E2E=1), since it builds an image and a cluster, so ``make test`` skips it even
where an engine runs. Needs Docker, kind, kubectl (helm is taken from .tools/bin, else PATH) and a base image;
skipped with the reason without them. The GitHub workflow .github/workflows/e2e.yaml runs it. Each fixture step
is bounded and names itself when it fails or overruns (e2e/steps.py); the per-test timeout covers the test only.
Knobs: MODELYARD_E2E_IMAGE (use this already-built image, skip the build), BASE_IMAGE (build from this base),
MODELYARD_E2E_KEEP=1 (keep the cluster).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e import steps

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = os.environ.get("MODELYARD_E2E_CLUSTER", "modelyard-e2e")
KEEP = os.environ.get("MODELYARD_E2E_KEEP") == "1"
SYSTEM_NS, APP_NS, RELEASE = "modelyard-system", "default", "modelyard"
PROXY, OPERATOR = f"{RELEASE}-proxy", f"{RELEASE}-operator"
SIMULATOR_URL = f"http://modelyard-simulator.{APP_NS}.svc.cluster.local:9100"
DEMO_KEY = "sk-modelyard-demo"  # examples/standalone/gateway-keys.yaml
CHAT_MODELS = ["gpt-4o", "azure-gpt-4o", "claude-sonnet", "gemini-flash"]


def _missing_tools() -> str | None:
    for tool in ("kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    if _helm() is None:
        return "no helm binary (make helm, or helm on PATH)"
    return steps.docker_problem() or steps.image_problem()


def _helm() -> str | None:
    local = ROOT / ".tools" / "bin" / "helm"
    return str(local) if local.is_file() else shutil.which("helm")


pytestmark = [
    pytest.mark.e2e,
    steps.skip_unless_runnable(
        "e2e on kind (Docker, kind, kubectl, helm)", opt_in="MODELYARD_E2E", target="make e2e", problem=_missing_tools
    ),
    pytest.mark.timeout(600, func_only=True),  # the module's fixtures bound each of their steps themselves
]


# --- plumbing ------------------------------------------------------------------------------------------


class Kube:
    """kubectl and helm against the kind cluster's kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 300) -> str:
        what = " ".join([Path(args[0]).name, *args[1:3]])  # e.g. "kubectl rollout status"
        return steps.run_step(what, args, stdin=stdin, env=self.env, timeout=timeout, check=check).stdout

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 300) -> str:
        return self.run("kubectl", *args, stdin=stdin, check=check, timeout=timeout)

    def helm(self, *args: str, timeout: float = 600) -> str:
        helm = _helm()
        assert helm is not None
        return self.run(helm, *args, timeout=timeout)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def apply(self, docs: list[dict[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def eventually(check: Callable[[], Any], timeout: float = 120, interval: float = 1.0, what: str = "") -> Any:
    """Call ``check`` until it returns truthy without raising; the last failure is reported on timeout."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (AssertionError, OSError, ValueError) as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check.__name__}: {last!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def port_forward(kube: Kube, target: str, remote_port: int, namespace: str) -> Iterator[str]:
    """``kubectl port-forward`` to ``target``; yields the local base URL."""
    local = free_port()
    process = subprocess.Popen(
        ["kubectl", "port-forward", "-n", namespace, target, f"{local}:{remote_port}"],
        env=kube.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def connected() -> bool:
            with socket.create_connection(("127.0.0.1", local), timeout=1):
                return True

        eventually(connected, timeout=30, interval=0.5, what=f"port-forward to {target}")
        yield f"http://127.0.0.1:{local}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def examples_for_the_cluster() -> list[dict[str, Any]]:
    """examples/standalone, with the simulator's address changed from localhost to its Service."""
    docs = []
    for path in sorted((ROOT / "examples" / "standalone").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc:
                continue
            spec = doc.get("spec") or {}
            if "baseURL" in spec:
                spec["baseURL"] = spec["baseURL"].replace("http://127.0.0.1:9100", SIMULATOR_URL)
            docs.append(doc)
    return docs


def simulator_manifests(image: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "modelyard-simulator"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "modelyard-simulator", "namespace": APP_NS, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [
                            {
                                "name": "simulator",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "args": ["simulate", "--host", "0.0.0.0", "--port", "9100"],
                                "ports": [{"name": "http", "containerPort": 9100}],
                                "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 2},
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "modelyard-simulator", "namespace": APP_NS, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 9100, "targetPort": "http"}]},
        },
    ]


def route_status(kube: Kube, name: str) -> dict[str, Any]:
    status: dict[str, Any] = kube.get("modelroute", name, "-n", APP_NS).get("status") or {}
    return status


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or () if c["type"] == kind), {})


def ready_proxies(kube: Kube) -> int:
    deployment = kube.get("deployment", PROXY, "-n", SYSTEM_NS)
    ready: int = deployment["status"].get("readyReplicas") or 0
    return ready


def all_programmed(kube: Kube, replicas: int) -> bool:
    routes = kube.get("modelroutes", "-n", APP_NS)["items"]
    assert routes
    for route in routes:
        status = route.get("status") or {}
        assert condition(status, "Programmed").get("status") == "True", (route["metadata"]["name"], status)
        assert status.get("programmedReplicas") == f"{replicas}/{replicas}", (route["metadata"]["name"], status)
    return True


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image() -> str:
    return steps.image("modelyard:e2e")


@pytest.fixture(scope="module")
def kube(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    steps.run_step(
        f"creating the kind cluster {CLUSTER}",
        ["kind", "create", "cluster", "--name", CLUSTER, "--kubeconfig", str(kubeconfig), "--wait", "180s"],
        timeout=600,
    )
    try:
        steps.run_step(
            f"loading {image} into kind", ["kind", "load", "docker-image", image, "--name", CLUSTER], timeout=600
        )
        yield Kube(kubeconfig)
    finally:
        if not KEEP:
            steps.run_step("deleting the kind cluster", ["kind", "delete", "cluster", "--name", CLUSTER], timeout=300)


@pytest.fixture(scope="module")
def release(kube: Kube, image: str) -> str:
    repository, _, tag = image.rpartition(":")
    kube.helm(
        "install",
        RELEASE,
        str(ROOT / "charts" / "modelyard"),
        "--namespace",
        SYSTEM_NS,
        "--create-namespace",
        "--set",
        f"image.repository={repository}",
        "--set",
        f"image.tag={tag}",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        "proxy.replicaCount=2",
    )
    kube.kubectl("rollout", "status", f"deployment/{OPERATOR}", "-n", SYSTEM_NS, "--timeout=180s")
    kube.apply(simulator_manifests(image))
    kube.kubectl("rollout", "status", "deployment/modelyard-simulator", "-n", APP_NS, "--timeout=180s")
    kube.apply(examples_for_the_cluster())
    kube.kubectl("rollout", "status", f"deployment/{PROXY}", "-n", SYSTEM_NS, "--timeout=180s")
    return RELEASE


@pytest.fixture(scope="module")
def gateway(kube: Kube, release: str) -> Iterator[str]:
    with port_forward(kube, f"svc/{PROXY}", 80, SYSTEM_NS) as url:
        yield url + "/v1"


@pytest.fixture(scope="module")
def client(gateway: str) -> Any:
    from openai import OpenAI  # noqa: PLC0415 - only where the suite runs

    return OpenAI(base_url=gateway, api_key=DEMO_KEY, max_retries=3, timeout=30)


# --- the flow (in file order; each step builds on the previous) ----------------------------------------


def test_every_route_is_accepted_and_programmed(kube: Kube, release: str) -> None:
    eventually(lambda: all_programmed(kube, 2), timeout=120, what="every ModelRoute Programmed on 2/2 proxies")
    for credential in kube.get("providercredentials", "-n", APP_NS)["items"]:
        status = credential.get("status") or {}
        assert condition(status, "Accepted").get("status") == "True", credential["metadata"]["name"]
        assert condition(status, "ResolvedRefs").get("status") == "True", credential["metadata"]["name"]


def test_provider_examples_pass_the_apiserver(kube: Kube, release: str) -> None:
    """The CRDs' schemas and CEL rules, as the real apiserver runs them, accept every provider example."""
    kube.kubectl("apply", "--dry-run=server", "-f", str(ROOT / "examples" / "providers"))


def test_openai_sdk_chat_stream_and_embeddings(client: Any) -> None:
    listed = {model.id for model in client.models.list()}
    assert set(CHAT_MODELS) <= listed
    for model in CHAT_MODELS:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}])
        assert reply.choices[0].message.content, model
        text = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Stream please"}], stream=True
            )
            if chunk.choices
        )
        assert text, model
    embedding = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert embedding.data[0].embedding


def test_generated_api_key_works_and_wrong_keys_are_refused(kube: Kube, gateway: str) -> None:
    import base64  # noqa: PLC0415

    from openai import AuthenticationError, OpenAI  # noqa: PLC0415

    secret = kube.get("secret", f"{RELEASE}-api-keys", "-n", SYSTEM_NS)
    key = base64.b64decode(secret["data"]["keys"]).decode()
    assert OpenAI(base_url=gateway, api_key=key).models.list().data
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=gateway, api_key="sk-wrong", max_retries=0).models.list()


def test_helm_test_hook_passes(kube: Kube, release: str) -> None:
    kube.helm("test", release, "--namespace", SYSTEM_NS, "--logs", "--timeout", "3m")


def test_scaled_out_proxies_are_programmed(kube: Kube, client: Any) -> None:
    kube.kubectl("scale", f"deployment/{PROXY}", "-n", SYSTEM_NS, "--replicas=3")
    kube.kubectl("rollout", "status", f"deployment/{PROXY}", "-n", SYSTEM_NS, "--timeout=180s")
    assert ready_proxies(kube) == 3  # Ready means a table is loaded: the new pod got it
    eventually(lambda: all_programmed(kube, 3), timeout=60, what="every ModelRoute Programmed on 3/3 proxies")
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "after scaling"}])
    assert reply.choices[0].message.content


def test_rotated_secret_reaches_every_proxy_without_restart(kube: Kube, client: Any) -> None:
    from openai import APIStatusError  # noqa: PLC0415

    new_key = "sk-sim-openai-rotated"
    # The simulator answers 401 unless the gateway presents exactly `new_key` (the gateway maps it to a 502).
    prompt = [{"role": "user", "content": f"who am I [simulate require-key={new_key}]"}]
    with pytest.raises(APIStatusError):
        client.with_options(max_retries=0).chat.completions.create(model="gpt-4o", messages=prompt)
    before = route_status(kube, "gpt-4o").get("tableGeneration")
    pods_before = {
        p["metadata"]["name"]
        for p in kube.get("pods", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=proxy")["items"]
    }
    kube.kubectl(
        "patch",
        "secret",
        "simulator-keys",
        "-n",
        APP_NS,
        "--type=merge",
        "-p",
        json.dumps({"stringData": {"openai": new_key}}),
    )

    def answered() -> bool:
        for _ in range(6):  # the port-forward reaches one pod; every pod must have the new key anyway
            reply = client.with_options(max_retries=0).chat.completions.create(model="gpt-4o", messages=prompt)
            assert reply.choices[0].message.content
        return True

    eventually(answered, timeout=30, what="the rotated key in use")
    assert route_status(kube, "gpt-4o").get("tableGeneration") != before
    pods_after = {
        p["metadata"]["name"]
        for p in kube.get("pods", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=proxy")["items"]
    }
    assert pods_after == pods_before  # no restart
    eventually(lambda: all_programmed(kube, 3), timeout=60, what="Programmed after the rotation")


def test_traffic_continues_while_the_operator_is_killed(kube: Kube, client: Any) -> None:
    selector = "app.kubernetes.io/component=operator"
    old = {p["metadata"]["name"] for p in kube.get("pods", "-n", SYSTEM_NS, "-l", selector)["items"]}
    kube.kubectl("delete", "pod", "-n", SYSTEM_NS, "-l", selector, "--grace-period=0", "--force", "--wait=false")
    deadline = time.monotonic() + 20
    served = 0
    while time.monotonic() < deadline:
        reply = client.with_options(max_retries=0).chat.completions.create(
            model="claude-sonnet", messages=[{"role": "user", "content": "still there?"}]
        )
        assert reply.choices[0].message.content
        served += 1
    assert served >= 5

    def replaced() -> bool:
        pods = kube.get("pods", "-n", SYSTEM_NS, "-l", selector)["items"]
        return len(pods) == 1 and pods[0]["metadata"]["name"] not in old and pods[0]["status"].get("phase") == "Running"

    eventually(replaced, timeout=120, what="a new operator pod")
    # The new operator programs changes again: a new route becomes servable.
    kube.apply(
        [
            {
                "apiVersion": "modelyard.io/v1alpha1",
                "kind": "ModelRoute",
                "metadata": {"name": "after-restart", "namespace": APP_NS},
                "spec": {
                    "model": "after-restart",
                    "targets": [{"credentialRef": {"name": "sim-openai"}, "model": "gpt-4o-mini"}],
                },
            }
        ]
    )
    eventually(lambda: all_programmed(kube, 3), timeout=120, what="the new route Programmed by the new operator")
    reply = client.chat.completions.create(model="after-restart", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content


def test_uninstall_is_clean_and_keeps_the_crds(kube: Kube, release: str) -> None:
    kube.helm("uninstall", release, "--namespace", SYSTEM_NS, "--wait", "--timeout", "3m")

    def gone() -> bool:
        assert kube.get("pods", "-n", SYSTEM_NS)["items"] == []
        return True

    eventually(gone, timeout=180, what="every pod of the release gone")
    secrets = {s["metadata"]["name"] for s in kube.get("secrets", "-n", SYSTEM_NS)["items"]}
    assert not {f"{RELEASE}-routing-table", f"{RELEASE}-admin-token", f"{RELEASE}-api-keys"} & secrets
    assert kube.kubectl("get", "clusterrole", OPERATOR, check=False, timeout=30) == ""
    crds = {c["metadata"]["name"] for c in kube.get("crds")["items"]}
    assert {"modelroutes.modelyard.io", "providercredentials.modelyard.io"} <= crds  # helm.sh/resource-policy: keep
    assert kube.get("modelroutes", "-n", APP_NS)["items"]  # and the routes in them
