"""The container image, run hardened exactly as the chart runs the proxy: `make image-test`.

The image is built (tools/build_image.sh, from BASE_IMAGE) and run with the proxy's securityContext from
charts/modelyard/values.yaml translated to ``docker run`` flags: the chart's uid and gid, a read-only root,
every capability dropped, no privilege escalation, ``/tmp`` as the only writable place (the chart's emptyDir).
The simulator runs from the same image, hardened the same way; the gateway joins its network namespace, as
two containers of one pod, so examples/standalone's ``127.0.0.1:9100`` reaches it unchanged.

Opt-in (MODELYARD_IMAGE_TEST=1, which `make image-test` sets), since a build takes minutes; skipped with the
reason where there is no engine or no base image. MODELYARD_E2E_IMAGE tests an already-built image.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from e2e import steps

ADMIN_TOKEN = "image-test-admin-token"
DEMO_KEY = "sk-modelyard-demo"  # examples/standalone/gateway-keys.yaml
CHAT_MODELS = ["gpt-4o", "azure-gpt-4o", "claude-sonnet", "gemini-flash"]
API_PORT, ADMIN_PORT, SIMULATOR_PORT = 8080, 8081, 9100
STOP_GRACE = 30  # seconds docker stop waits before SIGKILL (exit 137)


def _problem() -> str | None:
    return steps.docker_problem() or steps.image_problem()


pytestmark = [
    pytest.mark.image,
    steps.skip_unless_runnable(
        "image tests", opt_in="MODELYARD_IMAGE_TEST", target="make image-test", problem=_problem
    ),
    pytest.mark.timeout(120, func_only=True),
]


def chart_proxy_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((steps.ROOT / "charts" / "modelyard" / "values.yaml").read_text())
    proxy: dict[str, Any] = values["proxy"]
    return proxy


def hardened_flags() -> list[str]:
    """``docker run`` flags for the chart's proxy podSecurityContext and securityContext, and its /tmp emptyDir."""
    proxy = chart_proxy_values()
    pod, container = proxy["podSecurityContext"], proxy["securityContext"]
    assert pod["runAsNonRoot"]
    assert pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}  # Docker's default seccomp profile
    flags = ["--user", f"{pod['runAsUser']}:{pod['runAsGroup']}", "--group-add", str(pod["fsGroup"])]
    flags += ["--tmpfs", "/tmp"]
    if container["readOnlyRootFilesystem"]:
        flags.append("--read-only")
    if not container["allowPrivilegeEscalation"]:
        flags += ["--security-opt", "no-new-privileges"]
    flags += [f"--cap-drop={cap}" for cap in container["capabilities"].get("drop", [])]
    flags += [f"--cap-add={cap}" for cap in container["capabilities"].get("add", [])]
    return flags


def docker(what: str, *args: str, timeout: float = 60) -> str:
    return steps.run_step(what, ["docker", *args], timeout=timeout).stdout.strip()


def inspect(container: str, template: str) -> str:
    return docker(f"inspecting {container}", "inspect", "--format", template, container)


def get(url: str, token: str | None = None) -> tuple[int, dict[str, Any] | str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read().decode()
            status: int = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read().decode(), error.code
    if body.startswith("{"):
        return status, json.loads(body)
    return status, body


@dataclass(frozen=True)
class Pod:
    """The simulator and the gateway sharing one network namespace; host URLs of the published ports."""

    simulator: str
    gateway: str
    api: str
    admin: str

    def logs(self, container: str) -> str:
        result = steps.run_step(f"logs of {container}", ["docker", "logs", container], timeout=30, check=False)
        return result.stdout + result.stderr


@pytest.fixture(scope="module")
def image() -> str:
    return steps.image("modelyard:image-test")


@pytest.fixture(scope="module")
def pod(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    name = f"modelyard-image-test-{uuid.uuid4().hex[:8]}"
    simulator, gateway = f"{name}-simulator", f"{name}-gateway"
    token = tmp_path_factory.mktemp("admin") / "token"
    token.write_text(ADMIN_TOKEN)
    token.chmod(0o644)
    flags = hardened_flags()
    published = [f"--publish=127.0.0.1::{port}" for port in (API_PORT, ADMIN_PORT)]
    try:
        docker(
            "starting the simulator",
            *("run", "--detach", "--name", simulator, *flags, *published, image),
            *("simulate", "--host", "127.0.0.1", "--port", str(SIMULATOR_PORT)),
        )
        docker(
            "starting the gateway",
            *("run", "--detach", "--name", gateway, f"--network=container:{simulator}", *flags, "--cpus=2"),
            *("--env", "MODELYARD_SHUTDOWN_TIMEOUT=80"),
            *("--volume", f"{steps.ROOT / 'examples' / 'standalone'}:/etc/modelyard/manifests:ro"),
            *("--volume", f"{token}:/etc/modelyard/admin/token:ro"),
            image,
            *("--log-level", "INFO", "serve", "--manifests", "/etc/modelyard/manifests"),
            *("--port", str(API_PORT), "--admin-port", str(ADMIN_PORT)),
            *("--admin-token-file", "/etc/modelyard/admin/token"),
        )
        api = docker("the gateway's published port", "port", simulator, f"{API_PORT}/tcp").splitlines()[0]
        admin = docker("the admin's published port", "port", simulator, f"{ADMIN_PORT}/tcp").splitlines()[0]
        yield Pod(simulator, gateway, f"http://{api}", f"http://{admin}")
    finally:
        steps.run_step(
            "removing the containers", ["docker", "rm", "--force", gateway, simulator], timeout=60, check=False
        )


@pytest.fixture(scope="module")
def ready(pod: Pod) -> Pod:
    """The pod once /readyz answers 200 (the manifests compiled into a table)."""
    deadline = time.monotonic() + 60
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body = get(pod.api + "/readyz")
        except OSError as exc:  # not listening yet
            last = exc
        else:
            if status == 200:
                return pod
            last = (status, body)
        assert inspect(pod.gateway, "{{.State.Running}}") == "true", pod.logs(pod.gateway)
        time.sleep(0.2)
    raise steps.StepFailed(f"waiting for /readyz: not ready after 60 s: {last!r}\n{pod.logs(pod.gateway)}")


def test_the_image_runs_as_the_charts_user(image: str) -> None:
    """runAsNonRoot needs a numeric non-root USER in the image; it is the chart's uid and gid."""
    pod_context = chart_proxy_values()["podSecurityContext"]
    user = docker("the image's user", "image", "inspect", "--format", "{{.Config.User}}", image)
    assert user == f"{pod_context['runAsUser']}:{pod_context['runAsGroup']}"


def test_healthz_and_readyz_answer(ready: Pod) -> None:
    assert get(ready.api + "/healthz") == (200, {"status": "ok"})
    status, body = get(ready.api + "/readyz")
    assert status == 200
    assert isinstance(body, dict)
    assert body["ready"] is True
    assert body["routes"] > 0


def test_chat_and_streams_through_the_openai_sdk(ready: Pod) -> None:
    from openai import OpenAI  # noqa: PLC0415

    client = OpenAI(base_url=ready.api + "/v1", api_key=DEMO_KEY, max_retries=0, timeout=30)
    assert set(CHAT_MODELS) <= {model.id for model in client.models.list()}
    for model in CHAT_MODELS:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}])
        assert reply.choices[0].message.content, model
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Stream please"}], stream=True
        )
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices), model


def test_metrics_answer_on_the_admin_port(ready: Pod) -> None:
    status, body = get(ready.admin + "/metrics", token=ADMIN_TOKEN)
    assert status == 200
    assert isinstance(body, str)
    assert "# TYPE" in body
    assert get(ready.admin + "/metrics", token="wrong")[0] == 401


PACKAGES_PROBE = """
import importlib.metadata, json, os, platform, sys
print(json.dumps({
    "installed": {d.metadata["Name"]: d.version for d in importlib.metadata.distributions()},
    "markers": {
        "implementation_name": sys.implementation.name,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_system": platform.system(),
        "python_full_version": platform.python_version(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    },
}))
"""


def locked_runtime_packages(markers: dict[str, str]) -> dict[str, str]:
    """What uv.lock pins for the project without any dependency group, on the image's platform."""
    from packaging.requirements import Requirement  # noqa: PLC0415
    from packaging.utils import canonicalize_name  # noqa: PLC0415

    uv = steps.ROOT / ".tools" / "uv" / "bin" / "uv"
    export = [str(uv), "export", "--project", str(steps.ROOT), "--frozen", "--no-default-groups", "--no-emit-project"]
    lines = steps.run_step("uv export", [*export, "--no-hashes", "--no-header", "--no-annotate"], timeout=60).stdout
    locked: dict[str, str] = {}
    for line in lines.splitlines():
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(markers):
            locked[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return locked


def test_the_venv_holds_exactly_the_locked_runtime_packages(image: str) -> None:
    """uv.lock's versions, the project, and nothing else: no development group, no pip, no setuptools."""
    from packaging.utils import canonicalize_name  # noqa: PLC0415

    probe = json.loads(
        docker("listing the venv", "run", "--rm", "--entrypoint", "python3", image, "-c", PACKAGES_PROBE)
    )
    installed = {canonicalize_name(name): version for name, version in probe["installed"].items()}
    assert installed == {**locked_runtime_packages(probe["markers"]), "modelyard": "0.1.0"}


def test_bytecode_is_compiled_at_build_time(image: str) -> None:
    """Whatever the gateway, simulator and operator import has up-to-date bytecode in the image: the standard
    library as well as the venv. A read-only root cannot cache it, so anything missing would be compiled
    again on every start. Run writable, as root, with bytecode writing on: nothing gets written."""
    program = (
        "import importlib, pkgutil\n"
        "for top in ('modelyard', 'modelyard_routing', 'modelyard_tracing', 'modelyard_proxy',"
        " 'modelyard_simulator', 'modelyard_operator'):\n"
        "    for info in pkgutil.walk_packages(importlib.import_module(top).__path__, top + '.'):\n"
        "        if not info.name.endswith('.__main__'):\n"
        "            importlib.import_module(info.name)\n"
    )
    container = f"modelyard-image-test-bytecode-{uuid.uuid4().hex[:8]}"
    docker(
        "creating the bytecode probe",
        *("create", "--name", container, "--user", "0", "--env", "PYTHONDONTWRITEBYTECODE="),
        *("--entrypoint", "python3", image, "-c", program),
    )
    try:
        docker("importing every module", "start", "--attach", container, timeout=120)
        written = [line for line in docker("docker diff", "diff", container).splitlines() if line.endswith(".pyc")]
        assert written == []
    finally:
        steps.run_step("removing the probe", ["docker", "rm", "--force", container], timeout=60, check=False)


def test_sigterm_stops_the_gateway_cleanly(ready: Pod) -> None:
    """docker stop sends SIGTERM, as the kubelet does: the gateway exits 0 on its own, long before the SIGKILL
    (exit 137) that would follow STOP_GRACE seconds later."""
    started = time.monotonic()
    docker("stopping the gateway", "stop", "--time", str(STOP_GRACE), ready.gateway, timeout=STOP_GRACE + 30)
    assert time.monotonic() - started < STOP_GRACE / 2
    assert inspect(ready.gateway, "{{.State.ExitCode}}") == "0", ready.logs(ready.gateway)
    assert "Traceback" not in ready.logs(ready.gateway)
