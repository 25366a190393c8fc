"""Conversations in a real redis-server: keys scoped by the owner's digest with their TTL, every call bounded,
and a store that is down answered as a clear 503 at once, never with its password."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.conversations import (
    ConversationStoreUnavailable,
    MemoryStore,
    open_conversations,
    open_shared,
    owner_digest,
    remember,
    resolve,
)
from modelyard_proxy.conversations.shared import SharedStore
from tests.conversations.conftest import TIMEOUT_S, SharedFactory
from tests.conversations.kit import OTHER_OWNER, OWNER, TTL_S, answer, assistant
from tests.storeserver import StoreServer

#: Far longer than any store call here: a call that hangs fails the test instead of the suite.
HANG_S = 3.0
LOGGER = "modelyard_proxy.conversations.shared"
WRONG = "not-the-Pa55word-71d0"


async def test_keys_name_the_owner_by_digest_under_the_prefix_and_expire(
    shared_factory: SharedFactory, store_server: StoreServer
) -> None:
    store = shared_factory()
    resolved = await resolve({"model": "fast", "input": "Hi"}, OWNER, store)
    assert await remember(OWNER, resolved, answer("resp_1", assistant("msg_1", "Hello")), store, TTL_S) == "stored"
    space = f"modelyard:responses:{{{owner_digest(OWNER)}}}:"
    with store_server.client() as client:
        keys = sorted(client.keys("*"))
        assert keys == [space + "item:msg_1", space + "response:resp_1"]
        assert all(0 < client.ttl(key) <= TTL_S for key in keys)
    assert all(OWNER not in key for key in keys)


async def test_another_owner_reads_nothing_of_a_conversation(shared_factory: SharedFactory) -> None:
    writer, reader = shared_factory(), shared_factory()  # two pods
    await writer.put_many(OWNER, {"response:resp_1": b"mine"}, TTL_S)
    assert await reader.get_many(OWNER, ["response:resp_1"]) == [b"mine"]
    assert await reader.get_many(OTHER_OWNER, ["response:resp_1"]) == [None]


async def test_a_killed_store_is_a_clear_503_at_once_and_logged_once(
    shared_factory: SharedFactory, store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    store = shared_factory()
    await store.put_many(OWNER, {"response:resp_1": b"mine"}, TTL_S)
    store_server.stop()
    for _ in range(3):
        with pytest.raises(ConversationStoreUnavailable) as failed:
            async with asyncio.timeout(HANG_S):
                await resolve({"model": "fast", "input": "And?", "previous_response_id": "resp_1"}, OWNER, store)
    error = failed.value
    assert (error.status, error.type, error.code, error.retry_after) == (
        503,
        "server_error",
        "responses_store_unavailable",
        1.0,
    )
    assert str(store_server.port) not in error.message
    messages = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert len(messages) == 1
    assert messages[0].startswith("conversation store unavailable: ConnectionError")
    assert store.errors_total == 3

    store_server.start()
    assert await store.get_many(OWNER, ["response:resp_1"]) == [None]  # the store restarted empty
    assert [record.getMessage() for record in caplog.records if record.name == LOGGER][1:] == [
        "conversation store reachable again"
    ]


async def test_a_store_that_stops_answering_fails_within_the_bound(
    shared_factory: SharedFactory, store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = shared_factory()
    await store.put_many(OWNER, {"response:resp_1": b"mine"}, TTL_S)
    store_server.pause()
    try:
        with pytest.raises(ConversationStoreUnavailable):
            async with asyncio.timeout(HANG_S):
                await store.put_many(OWNER, {"response:resp_2": b"more"}, TTL_S)
    finally:
        store_server.resume()
    assert f"conversation store unavailable: no answer within {TIMEOUT_S * 1000:g} ms" in caplog.text


async def test_a_failed_write_loses_the_conversation_not_the_answer(
    shared_factory: SharedFactory, store_server: StoreServer
) -> None:
    store = shared_factory()
    resolved = await resolve({"model": "fast", "input": "Hi"}, OWNER, store)
    store_server.stop()
    async with asyncio.timeout(HANG_S):
        assert await remember(OWNER, resolved, answer("resp_1", assistant("msg_1", "Hi")), store, TTL_S) == "failed"


async def test_a_store_that_refuses_writes_is_a_clear_503(
    shared_factory: SharedFactory, store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = shared_factory()
    with store_server.client() as client:
        client.config_set("maxmemory", "1")  # the store refuses every write
        client.config_set("maxmemory-policy", "noeviction")
        try:
            with pytest.raises(ConversationStoreUnavailable):
                await store.put_many(OWNER, {"response:resp_1": b"the user's prompt", "item:msg_1": b"i"}, TTL_S)
        finally:
            client.config_set("maxmemory", "0")
        assert client.keys("*") == []
    assert "conversation store unavailable: OutOfMemoryError" in caplog.text
    assert "the user's prompt" not in caplog.text  # redis-py's error quotes the command


async def test_the_password_given_apart_from_the_url_opens_the_store(password_store_server: StoreServer) -> None:
    store = open_shared(password_store_server.url, password_store_server.password, prefix="gw:", timeout_s=TIMEOUT_S)
    try:
        await store.put_many(OWNER, {"item:a": b"a"}, TTL_S)
        assert await store.get_many(OWNER, ["item:a"]) == [b"a"]
    finally:
        await store.close()


async def test_a_rediss_url_speaks_tls_to_the_store(tls_store_server: StoreServer) -> None:
    store = open_shared(tls_store_server.url, tls_store_server.password, prefix="gw:", timeout_s=HANG_S)
    try:
        await store.put_many(OWNER, {"item:a": b"a"}, TTL_S)
        assert await store.get_many(OWNER, ["item:a"]) == [b"a"]
    finally:
        await store.close()


@pytest.mark.parametrize("in_url", [False, True])
async def test_a_wrong_password_is_never_logged_nor_in_the_error(
    password_store_server: StoreServer, caplog: pytest.LogCaptureFixture, in_url: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    port = password_store_server.port
    url, password = (f"redis://:{WRONG}@127.0.0.1:{port}/0", None) if in_url else (password_store_server.url, WRONG)
    store = open_shared(url, password, prefix="gw:", timeout_s=HANG_S)
    try:
        with pytest.raises(ConversationStoreUnavailable) as failed:
            await store.get_many(OWNER, ["item:a"])
    finally:
        await store.close()
    assert "conversation store unavailable: AuthenticationError" in caplog.text
    assert WRONG not in caplog.text
    assert WRONG not in str(failed.value)
    assert WRONG not in repr(failed.value)


async def test_settings_choose_the_backend(store_server: StoreServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_RESPONSES_STORE", "off")
    assert open_conversations(ProxySettings()) is None
    monkeypatch.setenv("MODELYARD_RESPONSES_STORE", "on")
    assert ProxySettings().responses_store
    assert isinstance(open_conversations(ProxySettings(store_url=None, responses_store=True)), MemoryStore)
    shared = open_conversations(ProxySettings(store_url=store_server.url, responses_store=True))
    assert isinstance(shared, SharedStore)
    assert shared.key("o", "item:a").startswith("modelyard:responses:{")
    await shared.close()


def test_a_url_of_another_scheme_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match=r"redis:// or rediss://") as refused:
        open_shared("http://:hunter2-secret@store:6379", "hunter2-secret", prefix="gw:", timeout_s=0.5)
    assert "hunter2-secret" not in str(refused.value)


def test_a_gateway_without_a_store_never_loads_the_store_client() -> None:
    """redis-py's asyncio client costs a process 20-26 MB: only a gateway with a store URL imports it."""
    probe = (
        "import sys, modelyard_proxy.conversations as c; from modelyard_proxy.base.settings import ProxySettings; "
        "c.open_conversations(ProxySettings(store_url=None)); "
        "print(sorted(name for name in sys.modules if name == 'redis' or name.startswith('redis.')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
