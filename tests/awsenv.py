"""The process environment botocore's credential chain reads, set for a test: nothing of the machine's own AWS
setup, then IRSA or EKS Pod Identity pointed at the simulator's endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard_simulator.aws_identity_endpoints import POD_IDENTITY_TOKEN, WEB_IDENTITY_TOKEN

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
