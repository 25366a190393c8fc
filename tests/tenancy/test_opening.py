"""Opening the counters from settings: in process without a URL, the guarded store with one; no password leaks."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import redis

from modelyard_proxy.tenancy import Admission, Ask, LocalCounters, open_counters
from modelyard_proxy.tenancy.guarded import GuardedCounters
from modelyard_proxy.tenancy.shared import SharedCounters, connect
from tests.storeserver import StoreServer
from tests.tenancy.kit import ask, consumer

WRONG = "not-the-Pa55word-71d0"


async def test_without_a_url_the_counters_live_in_the_process() -> None:
    counters = open_counters(None, None, 0.005, "modelyard:")
    assert isinstance(counters, LocalCounters)
    report = await counters.usage([], days=1)
    assert (report.store, report.store_up) == ("local", True)


def test_a_url_of_another_scheme_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match=r"redis:// or rediss://") as refused:
        open_counters("http://:hunter2-secret@store:6379", "hunter2-secret", 0.005, "modelyard:")
    assert "hunter2-secret" not in str(refused.value)


async def first_admission(url: str, password: str | None) -> tuple[str, bool]:
    """Open the counters, admit one request, close: which backend admitted it, and whether the store is up."""
    counters = open_counters(url, password, 0.5, "modelyard:")
    assert isinstance(counters, GuardedCounters)
    try:
        admitted = await counters.admit(ask(consumer(rpm=5)))
        assert admitted.lease is not None
        return admitted.lease.backend, counters.state.up
    finally:
        await counters.close()


async def test_the_password_given_apart_from_the_url_opens_the_store(password_store_server: StoreServer) -> None:
    assert await first_admission(password_store_server.url, password_store_server.password) == ("shared", True)


async def test_a_rediss_url_speaks_tls_to_the_store(tls_store_server: StoreServer) -> None:
    assert await first_admission(tls_store_server.url, tls_store_server.password) == ("shared", True)
    # The same port without TLS is no store at all.
    plain = f"redis://127.0.0.1:{tls_store_server.port}/0"
    assert await first_admission(plain, tls_store_server.password) == ("local", False)


async def test_a_wrong_password_is_never_logged_nor_in_an_error(
    password_store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert await first_admission(password_store_server.url, WRONG) == ("local", False)
    assert "counter store unreachable: AuthenticationError" in caplog.text
    assert WRONG not in caplog.text

    shared = SharedCounters(connect(password_store_server.url, WRONG, connect_timeout_s=1))
    try:
        with pytest.raises(redis.AuthenticationError) as failed:
            await shared.admit(ask(consumer()))
    finally:
        await shared.close()
    assert WRONG not in str(failed.value)
    assert WRONG not in repr(failed.value)


async def test_a_password_in_the_url_is_kept_out_of_the_log(
    password_store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = password_store_server.password
    assert password is not None
    url = f"redis://:{password}@127.0.0.1:{password_store_server.port}/0"
    counters = open_counters(url, None, 0.5, "modelyard:")
    try:
        assert (await counters.admit(ask(consumer()))).lease is not None
        password_store_server.stop()
        assert (await counters.admit(ask(consumer()))).lease is not None
    finally:
        await counters.close()
    assert "counter store unreachable: " in caplog.text
    assert password not in caplog.text


class _QuotingStore(SharedCounters):
    """A store whose error quotes the password, as a careless client library or proxy might."""

    async def admit(self, ask: Ask, *, timeout_s: float | None = None) -> Admission:
        raise redis.ConnectionError(f"AUTH {WRONG} refused by 127.0.0.1:1")


async def test_an_error_that_quotes_the_password_is_logged_without_it(
    store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shared = _QuotingStore(connect(store_server.url, WRONG, connect_timeout_s=1))
    guarded = GuardedCounters(shared, LocalCounters(), secrets=[WRONG])
    try:
        assert (await guarded.admit(ask(consumer()))).lease is not None
    finally:
        await guarded.close()
    assert "counter store unreachable: ConnectionError: AUTH *** refused by 127.0.0.1:1" in caplog.text
    assert WRONG not in caplog.text


def test_a_gateway_without_a_store_never_loads_the_store_client() -> None:
    """redis-py's asyncio client costs a process 20-26 MB: only a gateway with a store URL imports it."""
    probe = (
        "import sys, modelyard_proxy.api.app, modelyard_proxy.tenancy; "
        "from modelyard_proxy.tenancy import open_counters; open_counters(None, None, 0.01); "
        "print(sorted(name for name in sys.modules if name == 'redis' or name.startswith('redis.')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
