"""The proxies' ServiceAccount can carry a cloud identity: IRSA and GKE Workload Identity bind a role or a Google
service account to it through annotations, which the proxy then uses for ProviderCredentials without keys."""

from __future__ import annotations

import pytest

from tests.chart.test_chart_render import HELM, RELEASE, one, render

pytestmark = pytest.mark.skipif(HELM is None, reason="no helm binary: run `python tools/install_helm.py`")

PROXY = f"{RELEASE}-modelyard-proxy"
ROLE_ARN = "arn:aws:iam::123456789012:role/modelyard-bedrock"
GSA = "modelyard@my-project.iam.gserviceaccount.com"


def test_proxy_service_account_carries_cloud_identity_annotations() -> None:
    docs = render(
        sets=(
            f"proxy.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn={ROLE_ARN}",
            f"proxy.serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account={GSA}",
        )
    )
    account = one(docs, "ServiceAccount", PROXY)
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": ROLE_ARN,
        "iam.gke.io/gcp-service-account": GSA,
    }
    pod = one(docs, "Deployment", PROXY)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == PROXY
    # The IRSA webhook projects its own token; the Kubernetes API token stays unmounted.
    assert pod["automountServiceAccountToken"] is False


def test_proxy_service_account_has_no_annotations_by_default() -> None:
    assert "annotations" not in one(render(), "ServiceAccount", PROXY)["metadata"]
