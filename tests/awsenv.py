"""The process environment botocore's credential chain reads, set for a test: nothing of the machine's own AWS
setup, then IRSA or EKS Pod Identity pointed at the simulator's endpoints (the ``endpoint`` fixture, both ways)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import test_utils
from botocore.credentials import ReadOnlyCredentials

from modelyard_simulator import REQUEST_LOG
from modelyard_simulator.aws_identity_endpoints import AWS_IDENTITY, POD_IDENTITY_TOKEN, WEB_IDENTITY_TOKEN

ROLE_ARN = "arn:aws:iam::123456789012:role/modelyard-bedrock"
#: Where IRSA's webhook puts the STS region; Bedrock calls must still be signed for the credential's own region.
ENV_REGION = "eu-west-3"
_CHAIN_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def no_aws_identity(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """No AWS credentials anywhere: no keys in the environment, no config files, no instance metadata."""
    for name in _CHAIN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def use_irsa(monkeypatch: pytest.MonkeyPatch, folder: Path, sts_url: str, token: str = WEB_IDENTITY_TOKEN) -> Path:
    """What the IRSA webhook sets, with STS at ``sts_url``; returns the projected token's file."""
    no_aws_identity(monkeypatch, folder)
    token_file = folder / "irsa-token"
    token_file.write_text(token)
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_STS_REGIONAL_ENDPOINTS", "regional")
    monkeypatch.setenv("AWS_REGION", ENV_REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", ENV_REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_url)
    return token_file


def use_pod_identity(
    monkeypatch: pytest.MonkeyPatch, folder: Path, agent_url: str, token: str = POD_IDENTITY_TOKEN
) -> Path:
    """What the EKS Pod Identity webhook sets, with the agent at ``agent_url``; returns the token's file."""
    no_aws_identity(monkeypatch, folder)
    token_file = folder / "eks-pod-identity-token"
    token_file.write_text(token)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent_url)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    return token_file


@dataclasses.dataclass
class Endpoint:
    """Where the pod's identity gets its keys: the simulator's STS (IRSA) or its Pod Identity agent."""

    simulator: test_utils.TestServer
    path: str

    def fetches(self) -> int:
        """How many times keys were asked for."""
        return sum(1 for request in self.simulator.app[REQUEST_LOG] if request.path == self.path)

    def issued(self, keys: ReadOnlyCredentials) -> bool:
        """Whether ``keys`` are keys the simulated AWS handed out and still accepts."""
        key = self.simulator.app[AWS_IDENTITY].keyring.lookup(keys.access_key or "")
        return key is not None and (key.secret_access_key, key.session_token) == (keys.secret_key, keys.token)

    def issue_for(self, lifetime: timedelta) -> None:
        """Keys issued from now on live this long."""
        self.simulator.app[AWS_IDENTITY].lifetime = lifetime


@pytest.fixture(params=["irsa", "pod-identity"])
def endpoint(
    request: pytest.FixtureRequest, simulator: test_utils.TestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Endpoint:
    """The process environment set as IRSA's or EKS Pod Identity's webhook sets it, aimed at the simulator."""
    if request.param == "irsa":
        use_irsa(monkeypatch, tmp_path, str(simulator.make_url("/")))
        return Endpoint(simulator, "/")
    use_pod_identity(monkeypatch, tmp_path, str(simulator.make_url("/v1/credentials")))
    return Endpoint(simulator, "/v1/credentials")
