"""Conversations in the process: forgotten after their TTL, and held within a count and a byte bound (LRU)."""

from __future__ import annotations

from modelyard_proxy.conversations import MemoryStore
from tests.conversations.kit import OTHER_OWNER, OWNER


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_entry_is_forgotten_after_its_ttl() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    await store.put_many(OWNER, {"response:resp_1": b"abc"}, ttl_s=60)
    clock.now += 59.9
    assert await store.get_many(OWNER, ["response:resp_1"]) == [b"abc"]
    clock.now += 0.1
    assert await store.get_many(OWNER, ["response:resp_1"]) == [None]
    assert (len(store), store.bytes) == (0, 0)


async def test_expired_entries_make_room_before_any_live_one_is_evicted() -> None:
    clock = Clock()
    store = MemoryStore(max_entries=2, clock=clock)
    await store.put_many(OWNER, {"item:a": b"a"}, ttl_s=10)
    await store.put_many(OWNER, {"item:b": b"b"}, ttl_s=100)
    clock.now += 50
    await store.put_many(OWNER, {"item:c": b"c"}, ttl_s=100)
    assert await store.get_many(OWNER, ["item:a", "item:b", "item:c"]) == [None, b"b", b"c"]
    assert store.evicted_total == 0


async def test_the_least_recently_used_entry_goes_first_when_the_count_is_reached() -> None:
    store = MemoryStore(max_entries=3)
    await store.put_many(OWNER, {"item:a": b"a", "item:b": b"b", "item:c": b"c"}, ttl_s=60)
    assert await store.get_many(OWNER, ["item:a"]) == [b"a"]  # ``a`` is now more recent than ``b``
    await store.put_many(OWNER, {"item:d": b"d"}, ttl_s=60)
    assert await store.get_many(OWNER, ["item:a", "item:b", "item:c", "item:d"]) == [b"a", None, b"c", b"d"]
    assert (len(store), store.evicted_total) == (3, 1)


async def test_the_byte_bound_evicts_until_the_values_fit() -> None:
    store = MemoryStore(max_bytes=100)
    await store.put_many(OWNER, {"item:a": b"a" * 40, "item:b": b"b" * 40}, ttl_s=60)
    await store.put_many(OWNER, {"item:c": b"c" * 50}, ttl_s=60)
    assert await store.get_many(OWNER, ["item:a", "item:b", "item:c"]) == [None, b"b" * 40, b"c" * 50]
    assert store.bytes == 90


async def test_rewriting_a_key_counts_its_bytes_once() -> None:
    store = MemoryStore(max_bytes=100)
    for _ in range(5):
        await store.put_many(OWNER, {"item:a": b"a" * 60}, ttl_s=60)
    assert (len(store), store.bytes, store.evicted_total) == (1, 60, 0)


async def test_entries_larger_than_the_whole_store_are_not_kept_and_evict_nothing() -> None:
    store = MemoryStore(max_bytes=100)
    await store.put_many(OWNER, {"item:a": b"a" * 40}, ttl_s=60)
    await store.put_many(OWNER, {"item:huge": b"h" * 101}, ttl_s=60)
    assert await store.get_many(OWNER, ["item:a", "item:huge"]) == [b"a" * 40, None]


async def test_each_owner_has_its_own_space() -> None:
    store = MemoryStore()
    await store.put_many(OWNER, {"response:resp_1": b"mine"}, ttl_s=60)
    await store.put_many(OTHER_OWNER, {"response:resp_2": b"theirs"}, ttl_s=60)
    assert await store.get_many(OTHER_OWNER, ["response:resp_1", "response:resp_2"]) == [None, b"theirs"]
