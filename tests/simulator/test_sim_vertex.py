"""The simulator's Vertex AI, Google token endpoint and metadata server, through the official clients:
google-auth for tokens, ``AnthropicVertex`` for Claude and google-genai (``vertexai=True``) for Gemini."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import anthropic
import pytest
from aiohttp import test_utils
from google import genai
from google.auth.transport.requests import Request
from google.genai import types
from google.oauth2 import service_account

from modelyard_simulator import RequestLog
from modelyard_simulator.google_auth import GOOGLE_AUTH, GoogleAuthority
from modelyard_simulator.google_keys import PROJECT, ServiceAccountKey, service_account_key

pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession from ClientSession is discouraged:DeprecationWarning"
)

REGION = "us-central1"
CLAUDE = "claude-sonnet-4-5@20250929"
METADATA = {"Metadata-Flavor": "Google"}


@pytest.fixture
def authority(sim: test_utils.TestServer) -> GoogleAuthority:
    return sim.app[GOOGLE_AUTH]


@pytest.fixture
def key(sim: test_utils.TestServer, authority: GoogleAuthority) -> ServiceAccountKey:
    return service_account_key(str(sim.make_url("/token"))).trusted_by(authority)


async def credentials_for(key: ServiceAccountKey) -> service_account.Credentials:
    """google-auth's service-account credentials, refreshed (in a thread: the simulator shares this loop)."""
    credentials = key.credentials()
    await asyncio.to_thread(credentials.refresh, Request())
    return credentials


@pytest.fixture
async def token(key: ServiceAccountKey) -> str:
    return str((await credentials_for(key)).token)


@pytest.fixture
async def vertex_claude(sim: test_utils.TestServer, token: str) -> AsyncIterator[anthropic.AsyncAnthropicVertex]:
    async with anthropic.AsyncAnthropicVertex(
        region=REGION, project_id=PROJECT, access_token=token, base_url=str(sim.make_url("/v1")), max_retries=0
    ) as client:
        yield client


async def test_a_service_account_jwt_is_traded_for_a_token_that_expires_as_announced(
    key: ServiceAccountKey, authority: GoogleAuthority, sim_log: RequestLog
) -> None:
    authority.token_lifetime = 120
    credentials = await credentials_for(key)
    assert str(credentials.token).startswith("ya29.")
    assert credentials.expiry is not None
    received = sim_log.last()
    assert (received.method, received.path) == ("POST", "/token")
    assert authority.refusal(credentials.token) is None
    assert authority.issued == [key.email]
    authority.revoke_all()
    assert authority.refusal(credentials.token) is not None


async def test_a_jwt_signed_by_another_key_is_refused(sim: test_utils.TestServer, key: ServiceAccountKey) -> None:
    impostor = service_account_key(str(sim.make_url("/token")))  # same account name, a key the simulator never saw
    with pytest.raises(Exception, match="invalid_grant: Invalid JWT Signature"):
        await credentials_for(impostor)


async def test_claude_through_raw_predict(vertex_claude: anthropic.AsyncAnthropicVertex, sim_log: RequestLog) -> None:
    message = await vertex_claude.messages.create(
        model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "hello vertex"}]
    )
    assert message.content[0].type == "text"
    assert "hello vertex" in message.content[0].text
    received = sim_log.last()
    assert received.path == f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{CLAUDE}:rawPredict"
    assert "model" not in received.body
    assert received.body["anthropic_version"]  # the SDK's own version, which Vertex takes in the body


async def test_claude_streams_through_stream_raw_predict(
    vertex_claude: anthropic.AsyncAnthropicVertex, sim_log: RequestLog
) -> None:
    async with vertex_claude.messages.stream(
        model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "stream on vertex"}]
    ) as stream:
        text = "".join([delta async for delta in stream.text_stream])
        final = await stream.get_final_message()
    assert "stream on vertex" in text
    assert final.usage.output_tokens > 0
    assert sim_log.last().path.endswith(":streamRawPredict")


async def test_a_claude_overload_keeps_anthropics_shape_and_a_quota_error_is_googles(
    vertex_claude: anthropic.AsyncAnthropicVertex,
) -> None:
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        await vertex_claude.messages.create(
            model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "hi [simulate status=529]"}]
        )
    assert overloaded.value.response.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    with pytest.raises(anthropic.RateLimitError) as limited:
        await vertex_claude.messages.create(
            model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "hi [simulate status=429]"}]
        )
    error = limited.value.response.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")


async def test_gemini_through_google_genai_on_vertex(
    sim: test_utils.TestServer, key: ServiceAccountKey, sim_log: RequestLog
) -> None:
    options = types.HttpOptions(base_url=str(sim.make_url("")), retry_options=types.HttpRetryOptions(attempts=1))
    credentials = await credentials_for(key)
    client = genai.Client(
        vertexai=True, project=PROJECT, location=REGION, credentials=credentials, http_options=options
    )
    try:
        response = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hello gemini")
    finally:
        await client.aio.aclose()
    assert response.text == "echo: hello gemini"
    received = sim_log.last()
    assert received.path.endswith(
        f"/projects/{PROJECT}/locations/{REGION}/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    assert received.header("authorization") == f"Bearer {credentials.token}"


@pytest.mark.parametrize("token", [None, "ya29.never-issued"])
async def test_a_missing_or_unknown_token_is_googles_401(sim: test_utils.TestServer, token: str | None) -> None:
    url = sim.make_url(f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{CLAUDE}:rawPredict")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.post(url, json={}, headers=headers) as response:
        assert response.status == 401
        error = (await response.json())["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")


async def test_an_expired_token_is_refused(sim: test_utils.TestServer, authority: GoogleAuthority) -> None:
    authority.token_lifetime = 0
    token = authority.issue("someone@example.com")["access_token"]
    url = sim.make_url(f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/google/models/m:generateContent")
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session, session.post(url, json={}, headers=headers) as response:
        assert response.status == 401
        assert "expired" in (await response.json())["error"]["message"]


async def test_the_metadata_server_answers_only_requests_flavoured_google(
    sim: test_utils.TestServer, authority: GoogleAuthority
) -> None:
    token_path = "/computeMetadata/v1/instance/service-accounts/default/token"
    async with aiohttp.ClientSession() as session:
        async with session.get(sim.make_url(token_path)) as refused:
            assert refused.status == 403
        async with session.get(sim.make_url("/"), headers=METADATA) as ping:
            assert (ping.status, ping.headers["Metadata-Flavor"]) == (200, "Google")
        async with session.get(sim.make_url("/computeMetadata/v1/project/project-id"), headers=METADATA) as project:
            assert await project.text() == authority.project_id
        async with session.get(sim.make_url(token_path), headers=METADATA) as issued:
            token = await issued.json()
    assert token["token_type"] == "Bearer"
    assert authority.refusal(token["access_token"]) is None
    assert authority.issued == [authority.metadata_account]


async def test_predict_embeds_each_instance_with_its_token_count(sim: test_utils.TestServer, token: str) -> None:
    url = sim.make_url(f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/google/models/text-embedding-005:predict")
    body = {"instances": [{"content": "one two"}, {"content": "three"}], "parameters": {"outputDimensionality": 8}}
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as response:
        predictions = (await response.json())["predictions"]
    assert [len(p["embeddings"]["values"]) for p in predictions] == [8, 8]
    assert all(p["embeddings"]["statistics"]["token_count"] > 0 for p in predictions)
