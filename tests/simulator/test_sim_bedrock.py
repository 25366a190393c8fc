"""The Bedrock dialect through AWS's own SDK (boto3's ``bedrock-runtime`` client), and its authentication checks.

boto3 signs with botocore, parses Converse answers and ConverseStream's event stream, and reads the error type
from ``x-amzn-ErrorType``: what it accepts, the gateway meets on real Bedrock.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import aiohttp
import boto3
import botocore.auth
import orjson
import pytest
from aiohttp import test_utils
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError, EventStreamError

from modelyard_simulator.aws_keys import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from modelyard_simulator.bedrock_auth import TEST_API_KEY
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
HELLO = [{"role": "user", "content": [{"text": "hello there"}]}]


Clients = Callable[..., Any]


@pytest.fixture
def bedrock(sim: test_utils.TestServer) -> Iterator[Clients]:
    """Makes boto3 ``bedrock-runtime`` clients for the simulator (closed after the test: they pool sockets)."""
    made: list[Any] = []

    def client(secret: str = TEST_SECRET_ACCESS_KEY) -> Any:
        made.append(
            boto3.client(
                "bedrock-runtime",
                region_name="us-east-1",
                endpoint_url=str(sim.make_url("")).rstrip("/"),
                aws_access_key_id=TEST_ACCESS_KEY_ID,
                aws_secret_access_key=secret,
                config=Config(retries={"total_max_attempts": 1}),
            )
        )
        return made[-1]

    yield client
    for each in made:
        each.close()


async def off_loop(call: Callable[[], Any]) -> Any:
    """boto3 blocks: run it in a thread while the simulator serves on this loop."""
    return await asyncio.to_thread(call)


async def test_converse_through_boto3(bedrock: Clients) -> None:
    client = bedrock()
    answer = await off_loop(lambda: client.converse(modelId=MODEL, messages=HELLO, inferenceConfig={"maxTokens": 50}))
    assert answer["output"]["message"]["content"] == [{"text": "echo: hello there"}]
    assert answer["stopReason"] == "end_turn"
    assert answer["usage"]["outputTokens"] == 3


async def test_converse_stream_through_boto3(bedrock: Clients) -> None:
    client = bedrock()

    def events() -> list[dict[str, Any]]:
        stream = client.converse_stream(modelId=MODEL, messages=HELLO)["stream"]
        try:
            return list(stream)
        finally:
            stream.close()

    received = await off_loop(events)
    assert [next(iter(e)) for e in received[:2]] == ["messageStart", "contentBlockDelta"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in received if "contentBlockDelta" in e)
    assert text == "echo: hello there"
    assert received[-2] == {"messageStop": {"stopReason": "end_turn"}}
    assert received[-1]["metadata"]["usage"]["totalTokens"] > 0


async def test_an_in_stream_failure_is_an_exception_frame_boto3_raises(
    sim: test_utils.TestServer, bedrock: Clients
) -> None:
    sim.app[SCENARIOS].models[MODEL] = Behaviour(mid_stream_error=True, cut_after_chunks=1)
    client = bedrock()
    stream = (await off_loop(lambda: client.converse_stream(modelId=MODEL, messages=HELLO)))["stream"]
    with pytest.raises(EventStreamError) as caught:
        await off_loop(lambda: list(stream))
    stream.close()
    assert caught.value.response["Error"]["Code"] == "modelStreamErrorException"


async def test_titan_embeddings_through_boto3(bedrock: Clients) -> None:
    client = bedrock()
    body = orjson.dumps({"inputText": "one", "dimensions": 256, "normalize": True})
    answer = await off_loop(lambda: client.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=body))
    vector = orjson.loads(answer["body"].read())
    assert len(vector["embedding"]) == 256
    assert vector["inputTextTokenCount"] == 1


@pytest.mark.parametrize(
    ("behaviour", "code"),
    [
        ({"status": 429}, "ThrottlingException"),
        ({"status": 503}, "ServiceUnavailableException"),
        ({"status": 400, "error_message": "Input is too long for requested model."}, "ValidationException"),
    ],
)
async def test_errors_name_their_exception_as_bedrock_does(
    sim: test_utils.TestServer, bedrock: Clients, behaviour: dict[str, Any], code: str
) -> None:
    sim.app[SCENARIOS].models[MODEL] = Behaviour().overlay(behaviour)
    client = bedrock()
    with pytest.raises(ClientError) as caught:
        await off_loop(lambda: client.converse(modelId=MODEL, messages=HELLO))
    assert caught.value.response["Error"]["Code"] == code


async def test_a_wrong_secret_key_is_an_invalid_signature(bedrock: Clients) -> None:
    client = bedrock(secret="not-the-secret")
    with pytest.raises(ClientError) as caught:
        await off_loop(lambda: client.converse(modelId=MODEL, messages=HELLO))
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


async def post(sim: test_utils.TestServer, headers: dict[str, str], body: bytes) -> tuple[int, str | None]:
    url = str(sim.make_url("/model/amazon.nova-pro-v1%3A0/converse"))
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, response.headers.get("x-amzn-ErrorType", "").partition(":")[0] or None


def signed_at(sim: test_utils.TestServer, body: bytes, at: datetime.datetime) -> dict[str, str]:
    """Headers botocore's signer gives the request at ``at``."""
    request = AWSRequest("POST", str(sim.make_url("/model/amazon.nova-pro-v1%3A0/converse")), data=body)
    request.headers["content-type"] = "application/json"
    credentials = ReadOnlyCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
        SigV4Auth(credentials, "bedrock", "us-east-1").add_auth(request)
    return dict(request.headers.items())


async def test_a_signature_more_than_five_minutes_old_is_refused(sim: test_utils.TestServer) -> None:
    body = orjson.dumps({"messages": HELLO})
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert await post(sim, signed_at(sim, body, now - datetime.timedelta(minutes=1)), body) == (200, None)
    stale = signed_at(sim, body, now - datetime.timedelta(minutes=6))
    assert await post(sim, stale, body) == (403, "InvalidSignatureException")


async def test_a_signature_over_other_bytes_is_refused(sim: test_utils.TestServer) -> None:
    body = orjson.dumps({"messages": HELLO})
    headers = signed_at(sim, body, datetime.datetime.now(datetime.UTC).replace(tzinfo=None))
    assert await post(sim, headers, body.replace(b"hello", b"HELLO")) == (403, "InvalidSignatureException")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": f"Bearer {TEST_API_KEY}"}, (200, None)),
        ({"Authorization": "Bearer ABSKbm90LWEta2V5"}, (403, "UnrecognizedClientException")),
        ({}, (403, "MissingAuthenticationTokenException")),
        ({"Authorization": "AWS4-HMAC-SHA256 Credential=nonsense"}, (403, "IncompleteSignatureException")),
    ],
)
async def test_api_keys_and_unsigned_requests(
    sim: test_utils.TestServer, headers: dict[str, str], expected: tuple[int, str | None]
) -> None:
    assert (
        await post(sim, {"content-type": "application/json", **headers}, orjson.dumps({"messages": HELLO})) == expected
    )
