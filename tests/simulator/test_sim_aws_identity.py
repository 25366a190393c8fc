"""The simulated STS (AssumeRoleWithWebIdentity) and EKS Pod Identity agent, read by botocore as it reads AWS's:
temporary keys that land in the keyring, the configured lifetime, and AWS's refusals of wrong or missing tokens."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp import test_utils
from botocore.credentials import ContainerProvider
from botocore.exceptions import ClientError

from modelyard_simulator import RequestLog
from modelyard_simulator.aws_identity_endpoints import AWS_IDENTITY, POD_IDENTITY_TOKEN, WEB_IDENTITY_TOKEN
from tests.awsenv import ROLE_ARN, use_pod_identity


def sts_client(sim: test_utils.TestServer) -> Any:
    return boto3.client("sts", region_name="us-east-1", endpoint_url=str(sim.make_url("/")))


async def assume(sim: test_utils.TestServer, token: str, role_arn: str = ROLE_ARN) -> Any:
    client = sts_client(sim)
    return await asyncio.to_thread(
        client.assume_role_with_web_identity, RoleArn=role_arn, RoleSessionName="gw-1", WebIdentityToken=token
    )


def keyring_has(sim: test_utils.TestServer, access_key_id: str, secret: str, token: str) -> bool:
    key = sim.app[AWS_IDENTITY].keyring.lookup(access_key_id)
    return key is not None and (key.secret_access_key, key.session_token) == (secret, token) and not key.expired()


async def test_sts_issues_temporary_keys_the_keyring_accepts(sim: test_utils.TestServer, sim_log: RequestLog) -> None:
    sim.app[AWS_IDENTITY].lifetime = timedelta(minutes=20)
    answer = await assume(sim, WEB_IDENTITY_TOKEN)
    keys = answer["Credentials"]
    assert keys["AccessKeyId"].startswith("ASIA")
    assert keys["SessionToken"]
    assert keyring_has(sim, keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])
    left = keys["Expiration"] - datetime.now(UTC)
    assert timedelta(minutes=19, seconds=58) < left <= timedelta(minutes=20, seconds=1)  # whole seconds, rounded up
    assert answer["AssumedRoleUser"]["Arn"] == "arn:aws:sts::123456789012:assumed-role/modelyard-bedrock/gw-1"
    assert [(r.method, r.path) for r in sim_log] == [("POST", "/")]
    # Each call issues new keys.
    again = (await assume(sim, WEB_IDENTITY_TOKEN))["Credentials"]
    assert again["AccessKeyId"] != keys["AccessKeyId"]


async def test_sts_refuses_an_unknown_token_and_a_malformed_role(sim: test_utils.TestServer) -> None:
    with pytest.raises(ClientError) as refused:
        await assume(sim, "someone-elses-token")
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidIdentityToken"
    assert "could not be validated" in error["Error"]["Message"]

    with pytest.raises(ClientError) as malformed:
        await assume(sim, WEB_IDENTITY_TOKEN, role_arn="arn:aws:iam::modelyard:role/bedrock")  # no account
    assert malformed.value.response["Error"]["Code"] == "ValidationError"
    assert sim.app[AWS_IDENTITY].issued == 0


async def test_sts_refuses_other_actions(sim: test_utils.TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        form = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}
        async with session.post(sim.make_url("/"), data=form) as response:
            assert response.status == 400
            text = await response.text()
    assert "<Code>InvalidAction</Code>" in text


async def test_pod_identity_agent_issues_keys_botocore_reads(
    sim: test_utils.TestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sim_log: RequestLog
) -> None:
    sim.app[AWS_IDENTITY].lifetime = timedelta(minutes=20)
    use_pod_identity(monkeypatch, tmp_path, str(sim.make_url("/v1/credentials")))
    credentials = await asyncio.to_thread(ContainerProvider().load)
    frozen = credentials.get_frozen_credentials()  # fresh keys: outside botocore's refresh window, no fetch
    assert frozen.access_key is not None
    assert frozen.secret_key is not None
    assert frozen.access_key.startswith("ASIA")
    assert frozen.token is not None
    assert keyring_has(sim, frozen.access_key, frozen.secret_key, frozen.token)
    assert credentials.refresh_needed(19 * 60) is False
    assert credentials.refresh_needed(20 * 60 + 2) is True  # expires in 20 minutes, as the issuer says
    assert sim_log.last().path == "/v1/credentials"
    assert sim_log.last().header("authorization") == POD_IDENTITY_TOKEN


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "Service account token cannot be empty"),
        ({"Authorization": "not-the-projected-token"}, "(InvalidTokenException)"),
    ],
)
async def test_pod_identity_agent_refuses_missing_and_wrong_tokens(
    sim: test_utils.TestServer, headers: dict[str, str], expected: str
) -> None:
    async with aiohttp.ClientSession() as session, session.get(sim.make_url("/v1/credentials"), headers=headers) as got:
        assert got.status == 400
        assert expected in await got.text()
    assert sim.app[AWS_IDENTITY].issued == 0


async def test_tokens_never_show_in_the_request_log_view(sim: test_utils.TestServer) -> None:
    await assume(sim, WEB_IDENTITY_TOKEN)
    async with aiohttp.ClientSession() as session:
        async with session.get(sim.make_url("/v1/credentials"), headers={"Authorization": POD_IDENTITY_TOKEN}):
            pass
        async with session.get(sim.make_url("/_simulator/requests")) as response:
            view = await response.text()
    assert WEB_IDENTITY_TOKEN not in view
    assert POD_IDENTITY_TOKEN not in view
