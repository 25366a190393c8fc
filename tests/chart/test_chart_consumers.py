"""What the chart renders for ModelConsumers: the trusted namespaces and the operator's RBAC there, the roles
aggregated to admin/edit/view (which never create a consumer), the proxies' counter store settings, and the
bundled Valkey, hardened and reachable from the proxies alone. The Valkey start script and probe are run for
real against ``redis-server`` (the same command line and config syntax) when it is installed.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chart.test_chart_render import (
    CHART,
    HELM,
    NAMESPACE,
    RELEASE,
    find,
    one,
    render,
    render_refused,
)

pytestmark = pytest.mark.skipif(HELM is None, reason="no helm binary: run `python tools/install_helm.py`")

PROXY = f"{RELEASE}-modelyard-proxy"
VALKEY = f"{RELEASE}-modelyard-valkey"
CONSUMERS_VALUES = CHART / "ci" / "consumers-values.yaml"
READ_ONLY = {"get", "list", "watch"}


def proxy_env(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    container = one(docs, "Deployment", PROXY)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def store_env(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: e for name, e in proxy_env(docs).items() if name.startswith("MODELYARD_STORE_")}


def secret_ref(env: dict[str, Any]) -> tuple[str, str]:
    ref = env["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


# --- counter store settings ----------------------------------------------------------------------------


def test_defaults_render_no_store_and_no_valkey() -> None:
    docs = render()
    assert store_env(docs) == {}
    assert find(docs, "StatefulSet") == []
    assert not [d for d in docs if d["metadata"]["name"] == VALKEY]


def test_an_external_store_reaches_the_proxies_with_its_password_from_a_secret() -> None:
    sets = (
        "store.url=redis://redis.platform:6379/2",
        "store.existingSecret=redis-auth",
        "store.passwordKey=redis-password",
        "store.timeoutMs=25",
    )
    docs = render(sets=sets)
    env = store_env(docs)
    assert env["MODELYARD_STORE_URL"]["value"] == "redis://redis.platform:6379/2"
    assert secret_ref(env["MODELYARD_STORE_PASSWORD"]) == ("redis-auth", "redis-password")
    assert "value" not in env["MODELYARD_STORE_PASSWORD"]
    assert env["MODELYARD_STORE_TIMEOUT_MS"]["value"] == "25"
    assert find(docs, "StatefulSet") == []

    tls = store_env(render(sets=(*sets, "store.tls=true")))
    assert tls["MODELYARD_STORE_URL"]["value"] == "rediss://redis.platform:6379/2"
    plain = store_env(render(sets=("store.url=rediss://redis.platform:6380",)))
    assert set(plain) == {"MODELYARD_STORE_URL"}  # no password, the proxy's own timeout
    assert plain["MODELYARD_STORE_URL"]["value"] == "rediss://redis.platform:6380"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("valkey.enabled=true", "store.tls=true"), "the bundled Valkey has no TLS"),
        (("store.existingSecret=redis-auth",), "store.existingSecret needs a store"),
    ],
)
def test_store_settings_that_cannot_work_fail_the_render(sets: tuple[str, ...], message: str) -> None:
    assert message in render_refused(*sets)


# --- the bundled Valkey --------------------------------------------------------------------------------


def valkey_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "StatefulSet", VALKEY)["spec"]["template"]["spec"]
    return spec


def test_valkey_becomes_the_proxies_store_with_a_generated_password() -> None:
    docs = render(sets=("valkey.enabled=true",))
    env = store_env(docs)
    service = one(docs, "Service", VALKEY)
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("valkey", 6379)]
    assert env["MODELYARD_STORE_URL"]["value"] == f"redis://{VALKEY}.{NAMESPACE}.svc:6379/0"
    secret = one(docs, "Secret", VALKEY)
    assert len(base64.b64decode(secret["data"]["password"])) >= 32
    assert secret_ref(env["MODELYARD_STORE_PASSWORD"]) == (VALKEY, "password")
    container = valkey_pod(docs)["containers"][0]
    valkey_env = {e["name"]: e for e in container["env"]}
    assert secret_ref(valkey_env["VALKEY_PASSWORD"]) == secret_ref(valkey_env["VALKEYCLI_AUTH"]) == (VALKEY, "password")
    assert base64.b64decode(secret["data"]["password"]).decode() not in str(one(docs, "StatefulSet", VALKEY))
    assert service["spec"]["selector"] == one(docs, "StatefulSet", VALKEY)["spec"]["selector"]["matchLabels"]


def test_valkey_can_take_its_password_from_an_existing_secret() -> None:
    docs = render(sets=("valkey.enabled=true", "valkey.auth.existingSecret=vk", "valkey.auth.existingSecretKey=pw"))
    assert find(docs, "Secret", VALKEY) == []
    assert secret_ref(store_env(docs)["MODELYARD_STORE_PASSWORD"]) == ("vk", "pw")
    valkey_env = {e["name"]: e for e in valkey_pod(docs)["containers"][0]["env"]}
    assert secret_ref(valkey_env["VALKEY_PASSWORD"]) == ("vk", "pw")


def test_valkey_is_hardened_like_the_other_pods() -> None:
    docs = render(CONSUMERS_VALUES)
    statefulset = one(docs, "StatefulSet", VALKEY)
    assert statefulset["spec"]["replicas"] == 1
    pod = valkey_pod(docs)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert re.fullmatch(r"docker\.io/valkey/valkey:\d+\.\d+\.\d+-alpine", container["image"])  # pinned, not latest
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    for probe in ("readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:2] == ["sh", "-c"]
        assert "valkey-cli -p 6379 ping" in command[2]
        assert "PONG" in command[2]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/data"] == "data"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    # Claim templates cannot change: only labels that never do (not the chart version).
    assert claim["metadata"]["labels"] == statefulset["spec"]["selector"]["matchLabels"]
    assert "--appendonly yes" in container["args"][0]

    ephemeral = render(sets=("valkey.enabled=true", "valkey.persistence.enabled=false"))
    statefulset = one(ephemeral, "StatefulSet", VALKEY)
    assert "volumeClaimTemplates" not in statefulset["spec"]
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["data"]
    assert "--appendonly no" in statefulset["spec"]["template"]["spec"]["containers"][0]["args"][0]


def test_valkey_network_policy_admits_only_the_proxy_pods() -> None:
    docs = render(CONSUMERS_VALUES)
    policy = one(docs, "NetworkPolicy", VALKEY)
    proxy = one(docs, "Deployment", PROXY)
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == one(docs, "StatefulSet", VALKEY)["spec"]["selector"]["matchLabels"]
    )
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == []  # Valkey opens no connection
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "valkey", "protocol": "TCP"}]
    assert rule["from"] == [{"podSelector": {"matchLabels": proxy["spec"]["selector"]["matchLabels"]}}]
    assert find(render(sets=("valkey.enabled=true", "networkPolicy.enabled=false")), "NetworkPolicy") == []


# --- RBAC: trusted namespaces, and roles for people -----------------------------------------------------


def _namespaces_reading_secrets(docs: list[dict[str, Any]]) -> set[str]:
    """Namespaces where a Role lets the operator list (so read every) Secret."""
    return {
        role["metadata"]["namespace"]
        for role in find(docs, "Role")
        for rule in role["rules"]
        if "secrets" in rule["resources"] and "list" in rule["verbs"]
    }


def _grants_secrets(role: dict[str, Any]) -> bool:
    return any("secrets" in rule["resources"] for rule in role["rules"])


def test_trusted_namespaces_reach_the_operator_and_get_its_role() -> None:
    docs = render(CONSUMERS_VALUES)
    operator = one(docs, "Deployment", f"{RELEASE}-modelyard-operator")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert env["MODELYARD_CONSUMER_NAMESPACES"] == "platform"
    assert env["MODELYARD_WATCH_NAMESPACES"] == "team-a"
    # Secrets are read where routes are served and where consumers are trusted, nowhere else, and never
    # through a ClusterRole.
    assert _namespaces_reading_secrets(docs) == {"team-a", "platform", NAMESPACE}
    assert not any(_grants_secrets(role) for role in find(docs, "ClusterRole"))
    platform = one([r for r in find(docs, "Role") if r["metadata"]["namespace"] == "platform"], "Role")
    verbs = {(resource, verb) for rule in platform["rules"] for resource in rule["resources"] for verb in rule["verbs"]}
    assert {("modelconsumers", v) for v in READ_ONLY} <= verbs
    assert {("modelconsumers/status", v) for v in ("get", "patch", "update")} <= verbs
    assert {("secrets", v) for v in READ_ONLY} <= verbs
    assert not {("modelconsumers", v) for v in ("create", "update", "patch", "delete")} & verbs
    (binding,) = [b for b in find(docs, "RoleBinding") if b["metadata"]["namespace"] == "platform"]
    assert binding["roleRef"]["name"] == platform["metadata"]["name"]
    assert binding["subjects"][0]["name"] == f"{RELEASE}-modelyard-operator"

    several = render(CONSUMERS_VALUES, sets=("consumers.trustedNamespaces={platform,finance}",))
    assert _namespaces_reading_secrets(several) == {"team-a", "platform", "finance", NAMESPACE}


def _aggregated(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        role["metadata"]["name"]: role
        for role in find(docs, "ClusterRole")
        if any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in role["metadata"]["labels"])
    }


def _verbs_on(role: dict[str, Any], resource: str) -> set[str]:
    return {
        verb
        for rule in role["rules"]
        if rule["apiGroups"] == ["modelyard.io"] and {resource, "*"} & set(rule["resources"])
        for verb in rule["verbs"]
    }


def test_roles_aggregated_to_admin_and_edit_never_create_or_change_consumers() -> None:
    roles = _aggregated(render())
    assert sorted(roles) == [f"{RELEASE}-modelyard-edit", f"{RELEASE}-modelyard-view"]
    edit, view = roles[f"{RELEASE}-modelyard-edit"], roles[f"{RELEASE}-modelyard-view"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    for role in roles.values():
        assert _verbs_on(role, "modelconsumers") == READ_ONLY, role["metadata"]["name"]
        assert _verbs_on(role, "modelconsumers/status") == set(), role["metadata"]["name"]
        assert not _grants_secrets(role)
    for resource in ("modelroutes", "providercredentials"):
        assert {"create", "update", "patch", "delete"} <= _verbs_on(edit, resource)
        assert _verbs_on(view, resource) == READ_ONLY
    assert find(render(sets=("aggregatedRoles.enabled=false",)), "ClusterRole", f"{RELEASE}-modelyard-edit") == []


# --- the Valkey start script and probe, run for real ----------------------------------------------------

REDIS_SERVER, REDIS_CLI = shutil.which("redis-server"), shutil.which("redis-cli")
#: Everything Valkey's config syntax or a shell could trip over.
AWKWARD_PASSWORD = "p\"a\\ss $HOME w0rd's"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_redis(command: str, port: int, data: Path) -> str:
    """The chart's command with the Valkey binaries swapped for Redis's (same options, same config syntax)."""
    swapped = command.replace("valkey-server", REDIS_SERVER or "").replace("valkey-cli", REDIS_CLI or "")
    return (
        swapped.replace("-p 6379", f"-p {port}")
        .replace("--port 6379", f"--port {port}")
        .replace("--dir /data", f"--dir {data}")
    )


def _probe(command: str, password: str) -> int:
    env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": password, "VALKEYCLI_AUTH": password}
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=10, check=False).returncode


@pytest.mark.skipif(REDIS_SERVER is None or REDIS_CLI is None, reason="redis-server and redis-cli are not installed")
def test_valkey_script_takes_any_password_off_the_command_line_and_the_probe_checks_it(tmp_path: Path) -> None:
    container = valkey_pod(render(sets=("valkey.enabled=true",)))["containers"][0]
    port = _free_port()
    assert container["command"] == ["sh", "-c"]
    script = _as_redis(container["args"][0], port, tmp_path)
    probe = _as_redis(container["readinessProbe"]["exec"]["command"][2], port, tmp_path)
    env = {"PATH": os.environ["PATH"], "VALKEY_PASSWORD": AWKWARD_PASSWORD}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(["sh", "-c", script], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while _probe(probe, AWKWARD_PASSWORD) != 0:
            assert server.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the server never answered the probe"
            time.sleep(0.1)
        assert _probe(probe, "wrong") != 0  # an error reply fails the probe, though redis-cli exits 0
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode(errors="replace")
        assert "redis-server" in cmdline  # `exec`: the server is the container's first process, not sh
        assert "w0rd" not in cmdline
        env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": AWKWARD_PASSWORD}
        policy = subprocess.run(
            [REDIS_CLI or "", "-p", str(port), "config", "get", "maxmemory-policy"],
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        assert policy.stdout.split() == ["maxmemory-policy", "noeviction"]
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert (tmp_path / "appendonlydir").is_dir()  # persistence on: the append-only file is in /data
