"""Offline checks of charts/modelyard: helm lint, helm template with every values file, and what it renders.

Every rendered manifest is validated against the Kubernetes OpenAPI schema (kubernetes-validate, strict, so
unknown fields fail too), and the chart's promises are asserted: pod security defaults, least-privilege
RBAC, the NetworkPolicy on the admin port, CRDs kept on uninstall, the test hook, the values schema.
`make test` installs helm into .tools/bin first (tools/install_helm.py).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelyard"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
#: The Kubernetes version manifests are validated against (the chart's floor is 1.29; this is current).
K8S_VERSION = "1.33"
RELEASE, NAMESPACE = "gw", "modelyard-system"


def _helm_binary() -> str | None:
    local = ROOT / ".tools" / "bin" / "helm"
    return str(local) if local.is_file() else shutil.which("helm")


HELM = _helm_binary()
pytestmark = pytest.mark.skipif(
    HELM is None, reason="no helm binary: run `python tools/install_helm.py` (make test does) or put helm on PATH"
)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    result = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@functools.cache
def _render(values_files: tuple[str, ...], sets: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in values_files:
        args += ["-f", path]
    for item in sets:
        args += ["--set", item]
    out = helm(*args).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def render(*values_files: Path | str, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return list(_render(tuple(str(p) for p in values_files), sets))


def render_refused(*sets: str) -> str:
    """What helm says when the chart refuses to render with ``sets`` (the test fails if it renders)."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for item in sets:
        args += ["--set", item]
    result = helm(*args, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, pod spec, container) for every container the chart runs, the test hook included."""
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            spec = doc["spec"]["template"]["spec"]
        elif doc["kind"] == "Pod":
            spec = doc["spec"]
        else:
            continue
        for container in spec["containers"]:
            yield f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}", spec, container


VALUES_CASES = [pytest.param((), id="default"), *(pytest.param((p,), id=p.stem) for p in CI_VALUES)]


# --- lint and schema validation of everything rendered -------------------------------------------------


def test_ci_values_files_exist() -> None:
    assert len(CI_VALUES) >= 3


@pytest.mark.parametrize("values", VALUES_CASES)
def test_helm_lint(values: tuple[Path, ...]) -> None:
    args = ["lint", str(CHART), "--strict", "--namespace", NAMESPACE]
    for path in values:
        args += ["-f", str(path)]
    helm(*args)


@pytest.mark.parametrize("values", VALUES_CASES)
def test_every_manifest_is_valid_kubernetes(values: tuple[Path, ...]) -> None:
    docs = render(*values)
    assert docs
    checked = 0
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a Prometheus Operator CRD kind: no upstream schema (checked in its own test)
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} is not valid Kubernetes {K8S_VERSION}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("values", VALUES_CASES)
def test_everything_is_labelled_and_namespaced(values: tuple[Path, ...]) -> None:
    for doc in render(*values):
        labels = doc["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/name") == "modelyard", doc["metadata"]["name"]
        if doc["kind"] not in {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}:
            assert doc["metadata"].get("namespace"), f"{doc['kind']}/{doc['metadata']['name']} has no namespace"


# --- values schema -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("proxy:\n  replicaCout: 3\n", "replicaCout"),
        ("opertor:\n  logLevel: INFO\n", "opertor"),
        ("proxy:\n  port: http\n", "port"),
        ("operator:\n  logLevel: verbose\n", "logLevel"),
        ("networkPolicy:\n  enabled: 'yes'\n", "enabled"),
        ("otel:\n  protocol: thrift\n", "protocol"),
        ("proxy:\n  workers: -1\n", "workers"),
        ("store:\n  timeoutMs: 0\n", "timeoutMs"),
        ("store:\n  timeoutMs: '50'\n", "timeoutMs"),
        ("store:\n  url: http://redis:6379\n", "url"),
        ("store:\n  password: hunter2\n", "password"),
        ("store:\n  existingSecret: Store_Secret\n", "existingSecret"),
        ("valkey:\n  enabeld: true\n", "enabeld"),
        ("valkey:\n  persistence:\n    size: lots\n", "size"),
        ("valkey:\n  maxMemory: 0\n", "maxMemory"),
        ("valkey:\n  image:\n    tag: ''\n", "tag"),
        ("consumers:\n  trustedNamespaces: [Team_A]\n", "trustedNamespaces"),
        ("consumers:\n  trusted: [platform]\n", "trusted"),
        ("aggregatedRoles:\n  enabled: 1\n", "enabled"),
    ],
)
def test_values_schema_rejects_bad_values(tmp_path: Path, bad: str, message: str) -> None:
    values = tmp_path / "bad-values.yaml"
    values.write_text(bad, encoding="utf-8")
    result = helm("template", RELEASE, str(CHART), "-f", str(values), check=False)
    assert result.returncode != 0, f"helm template accepted {bad!r}"
    assert "schema" in result.stderr
    assert message in result.stderr


def test_every_value_is_documented() -> None:
    """Each key of values.yaml has a comment above it, or sits inside a documented map (like `resources`)."""
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing maps
    previous = ""
    for number, line in enumerate((CHART / "values.yaml").read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        match = re.match(r"^( *)([A-Za-z][\w.-]*):(.*)$", line)
        if match:
            indent, value = len(match.group(1)), match.group(3).strip()
            while stack and stack[-1][0] >= indent:
                stack.pop()
            documented = previous.startswith("#") or any(doc for _, doc in stack)
            if value:
                assert documented, f"values.yaml:{number} `{stripped}` has no comment"
            else:
                stack.append((indent, previous.startswith("#")))
        if stripped:
            previous = stripped


# --- CRDs ----------------------------------------------------------------------------------------------


def test_chart_crds_are_the_repository_crds() -> None:
    """One source of truth: the chart reads the CRDs through a symlink to crds/."""
    assert (CHART / "files" / "crds").resolve() == (ROOT / "crds").resolve()


def test_crds_installed_by_default_and_kept_on_uninstall() -> None:
    crds = find(render(), "CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "modelconsumers.modelyard.io",
        "modelroutes.modelyard.io",
        "providercredentials.modelyard.io",
    ]
    repo = {
        d["metadata"]["name"]: d
        for p in (ROOT / "crds").glob("*.yaml")
        for d in yaml.safe_load_all(p.read_text(encoding="utf-8"))
    }
    for crd in crds:
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["spec"] == repo[crd["metadata"]["name"]]["spec"]


def test_crds_can_be_switched_off_or_left_unkept() -> None:
    assert find(render(sets=("crds.enabled=false",)), "CustomResourceDefinition") == []
    for crd in find(render(sets=("crds.keep=false",)), "CustomResourceDefinition"):
        assert "annotations" not in crd["metadata"]


# --- pod security and probes ---------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUES_CASES)
def test_pods_are_locked_down(values: tuple[Path, ...]) -> None:
    docs = render(*values)
    found = 0
    for name, pod, container in containers(docs):
        found += 1
        pod_sc, sc = pod.get("securityContext", {}), container.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert sc.get("readOnlyRootFilesystem") is True, name
        assert sc.get("allowPrivilegeEscalation") is False, name
        assert sc.get("capabilities") == {"drop": ["ALL"]}, name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"].get(kind, {})), f"{name} lacks {kind}"
    assert found == 3 + len(find(docs, "StatefulSet"))  # operator, proxy, test hook, and Valkey when enabled


def test_proxy_probes_and_graceful_shutdown() -> None:
    docs = render()
    pod = one(docs, "Deployment", f"{RELEASE}-modelyard-proxy")["spec"]["template"]["spec"]
    proxy = pod["containers"][0]
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    sleep = int(proxy["lifecycle"]["preStop"]["exec"]["command"][1])
    drain = int(next(e["value"] for e in proxy["env"] if e["name"] == "MODELYARD_SHUTDOWN_TIMEOUT"))
    assert drain >= 60  # long streams get at least a minute to finish
    assert sleep + drain < pod["terminationGracePeriodSeconds"]  # the proxy exits before the kubelet kills it
    assert pod["automountServiceAccountToken"] is False
    assert proxy["args"][2:] == [
        "serve",
        "--table",
        "/etc/modelyard/table/routing-table.json",
        "--port",
        "8080",
        "--admin-port",
        "8081",
        "--admin-token-file",
        "/etc/modelyard/admin/token",
    ]
    table = next(v for v in pod["volumes"] if v["name"] == "routing-table")
    assert table["secret"] == {"secretName": f"{RELEASE}-modelyard-routing-table", "optional": True}


def test_proxy_runs_one_worker_per_cpu_of_its_limit_and_no_access_log() -> None:
    proxy = one(render(), "Deployment", f"{RELEASE}-modelyard-proxy")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in proxy["env"]}
    assert env["MODELYARD_WORKERS"]["valueFrom"] == {
        "resourceFieldRef": {"containerName": proxy["name"], "resource": "limits.cpu", "divisor": "1"}
    }
    assert proxy["resources"]["limits"]["cpu"] == "2"
    assert env["MODELYARD_ACCESS_LOG"]["value"] == "0"
    pinned = one(render(sets=("proxy.workers=3", "proxy.accessLog=true")), "Deployment", f"{RELEASE}-modelyard-proxy")
    env = {e["name"]: e for e in pinned["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELYARD_WORKERS"] == {"name": "MODELYARD_WORKERS", "value": "3"}
    assert env["MODELYARD_ACCESS_LOG"]["value"] == "1"


def test_operator_is_one_recreated_replica_wired_to_the_proxies() -> None:
    docs = render()
    deployment = one(docs, "Deployment", f"{RELEASE}-modelyard-operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-1] == "operator"
    env = {e["name"]: e.get("value") for e in container["env"]}
    admin_service = one(docs, "Service", env["MODELYARD_PROXY_SERVICE"])
    assert admin_service["spec"]["clusterIP"] == "None"
    assert [p["name"] for p in admin_service["spec"]["ports"]] == [env["MODELYARD_ADMIN_PORT_NAME"]] == ["admin"]
    assert one(docs, "Secret", env["MODELYARD_TABLE_SECRET"])["type"] == "Opaque"
    assert env["MODELYARD_WATCH_NAMESPACES"] == ""
    assert env["MODELYARD_CONSUMER_NAMESPACES"] == NAMESPACE  # trusted: the release namespace alone


@pytest.mark.parametrize("port", [None, 9090])
def test_operator_probes_ask_its_own_health_port_whether_it_is_live_and_ready(port: int | None) -> None:
    sets = (f"operator.healthPort={port}", "operator.stallTimeout=120") if port else ()
    deployment = one(render(sets=sets), "Deployment", f"{RELEASE}-modelyard-operator")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELYARD_HEALTH_PORT"] == str(port or 8080)
    assert env["MODELYARD_STALL_TIMEOUT"] == ("120" if port else "300")
    assert container["ports"] == [{"name": "health", "containerPort": port or 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    # Ready is checked more often than live: a rollout waits on it, a restart is the last resort.
    assert container["readinessProbe"]["periodSeconds"] < container["livenessProbe"]["periodSeconds"]


def test_client_service_exposes_only_the_client_port() -> None:
    service = one(render(), "Service", f"{RELEASE}-modelyard-proxy")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [("http", 80, "http")]


def test_admin_token_and_api_key_secrets_are_generated() -> None:
    docs = render()
    token = one(docs, "Secret", f"{RELEASE}-modelyard-admin-token")
    assert len(token["data"]["token"]) >= 48
    keys = one(docs, "Secret", f"{RELEASE}-modelyard-api-keys")
    assert keys["data"]["keys"]
    proxy = one(docs, "Deployment", f"{RELEASE}-modelyard-proxy")["spec"]["template"]["spec"]["containers"][0]
    ref = next(e for e in proxy["env"] if e["name"] == "MODELYARD_API_KEYS")["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{RELEASE}-modelyard-api-keys", "key": "keys"}


def test_existing_secrets_replace_the_generated_ones() -> None:
    docs = render(CHART / "ci" / "watch-namespaces-values.yaml")
    assert [s["metadata"]["name"] for s in find(docs, "Secret")] == [f"{RELEASE}-modelyard-routing-table"]
    for _, pod, _ in containers(docs):
        for volume in pod.get("volumes", []):
            if volume["name"] == "admin-token":
                assert volume["secret"]["secretName"] == "modelyard-admin"


# --- RBAC ----------------------------------------------------------------------------------------------

WATCH_RULES = {
    ("modelyard.io", "modelroutes", ("get", "list", "watch")),
    ("modelyard.io", "providercredentials", ("get", "list", "watch")),
    ("modelyard.io", "modelconsumers", ("get", "list", "watch")),
    ("modelyard.io", "modelroutes/status", ("patch",)),
    ("modelyard.io", "providercredentials/status", ("patch",)),
    ("modelyard.io", "modelconsumers/status", ("get", "patch", "update")),
    ("", "secrets", ("get", "list", "watch")),
    ("", "events", ("create",)),
    ("discovery.k8s.io", "endpointslices", ("get", "list", "watch")),
}
TABLE_RULES = {
    ("", "secrets", ("create",), ()),
    ("", "secrets", ("get", "patch"), (f"{RELEASE}-modelyard-routing-table",)),
}


def _rules(role: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...]]]:
    flat: set[tuple[str, str, tuple[str, ...]]] = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                flat.add((group, resource, tuple(sorted(rule["verbs"]))))
    return flat


def _no_wildcards(docs: list[dict[str, Any]]) -> None:
    for role in find(docs, "Role") + find(docs, "ClusterRole"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['metadata']['name']}: wildcard in {field}"


def test_rbac_all_namespaces_is_one_cluster_role_plus_the_table_secret() -> None:
    docs = render()
    _no_wildcards(docs)
    cluster_role = one(docs, "ClusterRole", f"{RELEASE}-modelyard-operator")
    assert _rules(cluster_role) == WATCH_RULES
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-modelyard-operator", "namespace": NAMESPACE}
    ]
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert {
        (r["apiGroups"][0], r["resources"][0], tuple(r["verbs"]), tuple(r.get("resourceNames", ())))
        for r in role["rules"]
    } == TABLE_RULES
    assert one(docs, "RoleBinding")["roleRef"]["name"] == role["metadata"]["name"]


def test_rbac_watch_namespaces_has_no_cluster_scope() -> None:
    docs = render(CHART / "ci" / "watch-namespaces-values.yaml")
    _no_wildcards(docs)
    assert find(docs, "ClusterRoleBinding") == []
    assert [r["metadata"]["name"] for r in find(docs, "ClusterRole")] == [
        f"{RELEASE}-modelyard-edit",  # the aggregated user roles, bound to nobody by the chart
        f"{RELEASE}-modelyard-view",
    ]
    watch_roles = {r["metadata"]["namespace"]: r for r in find(docs, "Role", f"{RELEASE}-modelyard-operator-watch")}
    assert sorted(watch_roles) == sorted(["team-a", "team-b", NAMESPACE])
    for role in watch_roles.values():
        assert _rules(role) == WATCH_RULES
    bindings = find(docs, "RoleBinding", f"{RELEASE}-modelyard-operator-watch")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == sorted(watch_roles)
    operator = one(docs, "Deployment", f"{RELEASE}-modelyard-operator")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert env["MODELYARD_WATCH_NAMESPACES"] == "team-a,team-b"
    assert env["MODELYARD_CONSUMER_NAMESPACES"] == NAMESPACE


def test_rbac_and_service_account_can_be_brought_along() -> None:
    docs = render(CHART / "ci" / "minimal-values.yaml")
    assert not any(d["kind"] in {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} for d in docs)
    operator = one(docs, "Deployment", f"{RELEASE}-modelyard-operator")["spec"]["template"]["spec"]
    assert operator["serviceAccountName"] == "modelyard-operator"
    assert find(docs, "ClusterRole") == []
    assert [s["metadata"]["name"] for s in find(docs, "ServiceAccount")] == [f"{RELEASE}-modelyard-proxy"]


# --- NetworkPolicy, HPA, PDB, ServiceMonitor, OTel, test hook -------------------------------------------


def test_network_policy_admits_only_the_operator_to_the_admin_port() -> None:
    docs = render()
    policy = one(docs, "NetworkPolicy")
    proxy = one(docs, "Deployment", f"{RELEASE}-modelyard-proxy")
    operator = one(docs, "Deployment", f"{RELEASE}-modelyard-operator")
    assert policy["spec"]["podSelector"]["matchLabels"] == proxy["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    by_port = {rule["ports"][0]["port"]: rule for rule in policy["spec"]["ingress"]}
    assert sorted(by_port) == ["admin", "http"]
    assert all(len(rule["ports"]) == 1 for rule in policy["spec"]["ingress"])
    assert by_port["admin"]["from"] == [{"podSelector": {"matchLabels": operator["spec"]["selector"]["matchLabels"]}}]
    assert "from" not in by_port["http"]
    restricted = one(render(CHART / "ci" / "watch-namespaces-values.yaml"), "NetworkPolicy")
    clients = next(r for r in restricted["spec"]["ingress"] if r["ports"][0]["port"] == "http")["from"]
    assert len(clients) == 3  # the two namespaces of clientFrom, and the chart's test pod
    assert clients[2]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    assert find(render(sets=("networkPolicy.enabled=false",)), "NetworkPolicy") == []


def test_hpa_and_pdb_toggles() -> None:
    docs = render()
    assert find(docs, "HorizontalPodAutoscaler") == []
    assert one(docs, "Deployment", f"{RELEASE}-modelyard-proxy")["spec"]["replicas"] == 2
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1

    scaled = render(CHART / "ci" / "production-values.yaml")
    hpa = one(scaled, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{RELEASE}-modelyard-proxy",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 30)
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert "replicas" not in one(scaled, "Deployment", f"{RELEASE}-modelyard-proxy")["spec"]

    assert find(render(CHART / "ci" / "minimal-values.yaml"), "PodDisruptionBudget") == []


def test_production_values_reach_the_pods() -> None:
    docs = render(CHART / "ci" / "production-values.yaml")
    proxy = one(docs, "Deployment", f"{RELEASE}-modelyard-proxy")["spec"]["template"]["spec"]
    container = proxy["containers"][0]
    assert container["image"].startswith("registry.example.com/platform/modelyard@sha256:")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert env["OTEL_SERVICE_NAME"] == "modelyard-proxy"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
    assert "deployment.environment=prod" in env["OTEL_RESOURCE_ATTRIBUTES"]
    assert env["MODELYARD_READ_TIMEOUT"] == "900"
    assert env["MODELYARD_MAX_BODY_BYTES"] == "67108864"
    assert proxy["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert proxy["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in proxy["affinity"]
    spread = proxy["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "proxy"
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {
            "port": "admin",
            "path": "/metrics",
            "interval": "30s",
            "authorization": {
                "type": "Bearer",
                "credentials": {"name": f"{RELEASE}-modelyard-admin-token", "key": "token"},
            },
        }
    ]
    assert not any(e["name"].startswith("OTEL_") for _, _, c in containers(render()) for e in c.get("env", []))


def test_helm_test_hook_lists_models_through_the_service() -> None:
    docs = render()
    pod = one(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["GATEWAY_URL"]["value"] == f"http://{RELEASE}-modelyard-proxy.{NAMESPACE}.svc:80"
    assert "/v1/models" in container["args"][0]
    compile(container["args"][0], "helm-test", "exec")  # the inline script is valid Python


def _notes(*sets: str) -> str:
    args = ["install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client"]
    for item in sets:
        args += ["--set", item]
    notes = helm(*args).stdout
    return " ".join(notes[notes.index("NOTES:") :].split())  # one line: sentences may wrap


def test_notes_tell_how_to_reach_the_gateway() -> None:
    notes = _notes()
    assert f"http://{RELEASE}-modelyard-proxy.{NAMESPACE}.svc:80/v1" in notes
    assert "port-forward" in notes
    assert f"{RELEASE}-modelyard-api-keys" in notes


def test_notes_tell_where_consumers_count_and_where_their_counters_live() -> None:
    notes = _notes()
    assert f"count only in {NAMESPACE};" in notes
    assert "No counter store: each proxy counts consumers' limits and spend on its own" in notes
    notes = _notes("consumers.trustedNamespaces={platform,finance}", "valkey.enabled=true")
    assert "count only in platform, finance;" in notes
    assert f"in the bundled Valkey ({RELEASE}-modelyard-valkey)." in notes
    notes = _notes("store.url=redis://redis.platform:6379/0")
    assert "in the store at store.url" in notes
    assert "redis.platform" not in notes  # a URL may carry a password: never printed


def test_grafana_dashboard_ships_as_a_configmap_when_enabled() -> None:
    assert find(render(), "ConfigMap") == []
    docs = render(sets=("metrics.dashboard.enabled=true",))
    (config_map,) = [d for d in find(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["modelyard.json"])
    assert dashboard["uid"] == "modelyard-gateway"
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", ()))
    for metric in (
        "modelyard_requests_total",
        "gen_ai_server_request_duration_seconds_bucket",
        "gen_ai_server_time_to_first_token_seconds_bucket",
        "modelyard_tokens_total",
        "modelyard_cost_usd_total",
        "modelyard_fallbacks_total",
    ):
        assert metric in exprs
    assert json.loads((CHART / "dashboards" / "modelyard.json").read_text()) == dashboard


def test_prometheus_peers_reach_the_admin_port_when_listed() -> None:
    docs = render(sets=("metrics.serviceMonitor.from[0].namespaceSelector.matchLabels.name=monitoring",))
    policy = one(docs, "NetworkPolicy")
    admin = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "admin")
    assert admin["from"][1] == {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
