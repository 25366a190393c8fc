"""The pod's own AWS identity through botocore's standard chain, against the simulator's STS and Pod Identity agent
over real sockets: keys fetched once and shared, refreshed in the background ahead of expiry, one fetch for many
waiters, and a clear error in bounded time when there are no keys, they are refused, or the endpoint hangs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import test_utils

from modelyard_proxy.cloudauth.aws_identity import AwsIdentityUnavailable, ChainIdentity
from modelyard_simulator import REQUEST_LOG
from modelyard_simulator.aws_identity_endpoints import AWS_IDENTITY, POD_IDENTITY_TOKEN
from tests.awsenv import Endpoint, endpoint, no_aws_identity, use_irsa, use_pod_identity

IDENTITY_LOG = "modelyard_proxy.cloudauth.aws_identity"
#: Inside botocore's 15-minute advisory refresh window, outside its 10-minute mandatory one: due for a refresh in
#: the background, yet valid, as a fetch 14 minutes before expiry would be.
DUE_SOON = timedelta(minutes=14)

__all__ = ["endpoint"]  # a fixture


@pytest.fixture
async def identities() -> AsyncIterator[Callable[..., ChainIdentity]]:
    """Make chain identities; each one's fetch in progress ends before the test's loop does."""
    made: list[ChainIdentity] = []

    def make(**options: float) -> ChainIdentity:
        made.append(ChainIdentity(**options))
        return made[-1]

    yield make
    for identity in made:
        await identity.aclose()


async def test_keys_come_from_the_pods_identity_and_are_cached(
    endpoint: Endpoint, identities: Callable[..., ChainIdentity]
) -> None:
    identity = identities()
    keys = await identity.current()
    assert (keys.access_key or "").startswith("ASIA")
    assert endpoint.issued(keys)
    assert await identity.current() == keys
    assert endpoint.fetches() == 1


async def test_environment_keys_are_used_as_they_are(
    simulator: test_utils.TestServer,
    identities: Callable[..., ChainIdentity],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    no_aws_identity(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENTKEY01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret")
    keys = await identities().current()
    assert (keys.access_key, keys.secret_key, keys.token) == ("AKIAENVIRONMENTKEY01", "environment-secret", None)
    assert len(simulator.app[REQUEST_LOG]) == 0


async def test_keys_due_for_refresh_are_served_while_one_refresh_runs_in_the_background(
    endpoint: Endpoint, identities: Callable[..., ChainIdentity]
) -> None:
    endpoint.issue_for(DUE_SOON)
    identity = identities(pause=0)
    first = await identity.current()
    before = endpoint.fetches()
    # Many requests while the keys are due: all get the cached keys at once, and one refresh starts.
    served = await asyncio.gather(*(identity.current() for _ in range(20)))
    assert set(served) == {first}
    await identity.aclose()  # the background refresh lands
    assert endpoint.fetches() == before + 1
    refreshed = await identity.current()
    assert refreshed != first
    assert endpoint.issued(refreshed)


async def test_keys_about_to_expire_are_not_used(endpoint: Endpoint, identities: Callable[..., ChainIdentity]) -> None:
    endpoint.issue_for(timedelta(seconds=20))  # inside the margin a signed request needs
    identity = identities()
    first = await identity.current()
    before = endpoint.fetches()
    second = await identity.current()
    assert second != first
    assert endpoint.fetches() > before


async def test_concurrent_requests_wait_on_one_fetch(
    endpoint: Endpoint, identities: Callable[..., ChainIdentity]
) -> None:
    identity = identities()
    served = await asyncio.gather(*(identity.current() for _ in range(25)))
    assert len(set(served)) == 1
    assert endpoint.fetches() == 1


@dataclasses.dataclass
class Hanging:
    """A loopback server that accepts connections and never answers."""

    url: str
    connections: int = 0
    reached: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


@pytest.fixture
async def hanging_endpoint() -> AsyncIterator[Hanging]:
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hanging.connections += 1
        hanging.reached.set()
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    hanging = Hanging(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
    yield hanging
    release.set()
    server.close()
    await server.wait_closed()


async def test_a_hanging_endpoint_gives_a_clear_error_in_bounded_time(
    identities: Callable[..., ChainIdentity],
    hanging_endpoint: Hanging,  # set up after the identities, so it lets go before they close
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    use_irsa(monkeypatch, tmp_path, hanging_endpoint.url)
    identity = identities(wait=0.2)
    async with asyncio.timeout(5):  # far above the identity's own bound: fails only if that does not hold
        with pytest.raises(AwsIdentityUnavailable) as refused:
            await identity.current()
        assert refused.value.status == 503
        assert refused.value.code == "upstream_auth_unavailable"
        assert "took more than 0.2 s" in refused.value.message
        await hanging_endpoint.reached.wait()  # the fetch goes on, and reaches the endpoint
        # The next request waits on the same stuck fetch (no second connection), and is bounded as well.
        with pytest.raises(AwsIdentityUnavailable, match=r"took more than 0\.2 s"):
            await identity.current()
    assert hanging_endpoint.connections == 1


async def test_refused_token_gives_the_reason_and_how_to_fix_it(
    simulator: test_utils.TestServer,
    identities: Callable[..., ChainIdentity],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    use_irsa(monkeypatch, tmp_path, str(simulator.make_url("/")), token="a-token-sts-does-not-trust")
    identity = identities(pause=60)
    with pytest.raises(AwsIdentityUnavailable) as refused:
        await identity.current()
    message = refused.value.message
    assert "InvalidIdentityToken" in message
    assert "aws.accessKeySecretRef" in message
    assert "IRSA" in message
    assert "EKS Pod Identity" in message
    assert "a-token-sts-does-not-trust" not in message
    # Within the pause the failure is answered at once, without asking STS again.
    with pytest.raises(AwsIdentityUnavailable):
        await identity.current()
    assert Endpoint(simulator, "/").fetches() == 1


@pytest.fixture
def identity_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger=IDENTITY_LOG):
        yield caplog


async def test_no_credentials_anywhere_is_a_clear_error_logged_once_per_change(
    identities: Callable[..., ChainIdentity],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    identity_log: pytest.LogCaptureFixture,
) -> None:
    no_aws_identity(monkeypatch, tmp_path)
    identity = identities(pause=0)  # every request runs the chain again
    for _ in range(3):
        with pytest.raises(AwsIdentityUnavailable) as refused:
            await identity.current()
        assert "none were found" in refused.value.message
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENTKEY01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret")
    for _ in range(2):
        assert (await identity.current()).access_key == "AKIAENVIRONMENTKEY01"
    records = [(r.levelno, r.getMessage()) for r in identity_log.records if r.name == IDENTITY_LOG]
    assert [level for level, _ in records] == [logging.WARNING, logging.INFO]
    assert "none were found" in records[0][1]
    assert "env" in records[1][1]
    assert "environment-secret" not in identity_log.text


async def test_pod_identity_token_is_never_logged_or_shown(
    simulator: test_utils.TestServer,
    identities: Callable[..., ChainIdentity],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    identity_log: pytest.LogCaptureFixture,
) -> None:
    simulator.app[AWS_IDENTITY].pod_identity_tokens = {"the-agent-wants-another-token"}
    use_pod_identity(monkeypatch, tmp_path, str(simulator.make_url("/v1/credentials")))
    with pytest.raises(AwsIdentityUnavailable) as refused:
        await identities().current()
    assert "InvalidTokenException" in refused.value.message
    assert POD_IDENTITY_TOKEN not in refused.value.message
    assert POD_IDENTITY_TOKEN not in identity_log.text
