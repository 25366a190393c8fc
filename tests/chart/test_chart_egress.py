"""What the chart renders for egress: the forward proxy variables (a URL with credentials only from a Secret),
``NO_PROXY``, and a CA bundle Secret mounted read-only where ``MODELYARD_CA_BUNDLE`` points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.test_chart_consumers import PROXY, proxy_env, secret_ref
from tests.chart.test_chart_render import CHART, HELM, RELEASE, one, render, render_refused

pytestmark = pytest.mark.skipif(HELM is None, reason="no helm binary: run `python tools/install_helm.py`")

EGRESS_VARIABLES = {"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "MODELYARD_CA_BUNDLE"}


def egress_env(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: env for name, env in proxy_env(docs).items() if name in EGRESS_VARIABLES}


def proxy_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment", PROXY)["spec"]["template"]["spec"]
    return spec


def test_defaults_render_no_egress_settings() -> None:
    docs = render()
    assert egress_env(docs) == {}
    assert "egress-ca" not in {volume["name"] for volume in proxy_pod(docs)["volumes"]}


def test_proxy_urls_and_no_proxy_reach_the_proxies() -> None:
    docs = render(
        sets=(
            "egress.httpsProxy=http://proxy.corp:3128",
            "egress.httpProxy=proxy.corp:3129",
            "egress.noProxy=.svc\\,10.0.0.0/8",
        )
    )
    assert {name: env["value"] for name, env in egress_env(docs).items()} == {
        "HTTPS_PROXY": "http://proxy.corp:3128",
        "HTTP_PROXY": "proxy.corp:3129",
        "NO_PROXY": ".svc,10.0.0.0/8",
    }


def test_a_proxy_url_with_credentials_comes_from_its_secret_only() -> None:
    docs = render(sets=("egress.proxySecret.name=corp-proxy", "egress.proxySecret.key=proxy-url"))
    env = egress_env(docs)
    assert set(env) == {"HTTPS_PROXY", "HTTP_PROXY"}
    for name in ("HTTPS_PROXY", "HTTP_PROXY"):
        assert secret_ref(env[name]) == ("corp-proxy", "proxy-url")
        assert "value" not in env[name]


def test_the_ca_bundle_secret_is_mounted_read_only_where_the_variable_points() -> None:
    docs = render(CHART / "ci" / "production-values.yaml")
    pod = proxy_pod(docs)
    env = egress_env(docs)
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "egress-ca")
    volume = next(v for v in pod["volumes"] if v["name"] == "egress-ca")
    assert mount["readOnly"] is True
    assert volume["secret"] == {"secretName": "corp-ca", "items": [{"key": "corp-root.pem", "path": "ca.crt"}]}
    assert env["MODELYARD_CA_BUNDLE"]["value"] == str(Path(mount["mountPath"]) / "ca.crt")
    assert secret_ref(env["HTTPS_PROXY"]) == ("corp-proxy", "url")
    assert env["NO_PROXY"]["value"] == ".svc,.cluster.local,10.0.0.0/8,169.254.169.254"


def test_the_operator_gets_no_egress_settings() -> None:
    """Only the proxies call upstreams; the operator talks to the API server and the proxies' admin port."""
    docs = render(CHART / "ci" / "production-values.yaml")
    operator = one(docs, "Deployment", f"{RELEASE}-modelyard-operator")["spec"]["template"]["spec"]
    names = {env["name"] for container in operator["containers"] for env in container.get("env", [])}
    assert not names & EGRESS_VARIABLES


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("egress.httpsProxy=http://user:hunter2@proxy.corp:3128",), "httpsProxy"),
        (("egress.httpProxy=http://user:hunter2@proxy.corp:3128",), "httpProxy"),
        (("egress.httpsProxy=socks5://proxy.corp:1080",), "httpsProxy"),
        (("egress.caBundle.secretName=Corp_CA",), "secretName"),
        (("egress.proxySecret.name=corp-proxy", "egress.httpsProxy=http://proxy.corp:3128"), "set one or the other"),
    ],
)
def test_egress_values_that_cannot_work_fail_the_render(sets: tuple[str, ...], message: str) -> None:
    assert message in render_refused(*sets)
