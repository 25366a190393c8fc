"""Standalone mode: serve manifests from a folder, recompiling whenever a file in it changes.

The folder is polled (file names, sizes and modification times) rather than watched through inotify, so
it behaves the same on a ConfigMap mount, whose updates arrive as a symlink swap. A change is compiled once
the folder stayed the same for one poll, so a folder replaced file by file is read whole.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import orjson
from aiohttp import web

from modelyard_proxy.table.store import TableStore
from modelyard_routing import CompileResult, ManifestError, RoutingTable, compile_inventory, load_documents
from modelyard_routing.manifests import manifest_files
from modelyard_routing.push import TableState
from modelyard_routing.table import InvalidTableError

log = logging.getLogger(__name__)

Signature = tuple[tuple[str, int, int], ...]

#: A file of this name in the manifest folder says an empty table is meant: no routes, or no API keys.
EMPTY_MARKER = "modelyard-empty"


def folder_signature(directory: Path) -> Signature:
    """What changes when any manifest file (or the empty marker) is added, removed or edited."""
    entries = []
    for path in (*manifest_files(directory), directory / EMPTY_MARKER):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


@dataclasses.dataclass(frozen=True, slots=True)
class Handoff:
    """What a supervisor tells a worker it starts, so a restarted worker comes back where its siblings are:
    the most advanced sibling's table state, and (operator mode) the last table pushed to them."""

    siblings: TableState | None = None
    table: bytes | None = None

    def encode(self) -> bytes:
        """One JSON line, then the table's bytes (as many as the line says)."""
        state = self.siblings.model_dump() if self.siblings else None
        return orjson.dumps({"siblings": state, "tableBytes": len(self.table or b"")}) + b"\n" + (self.table or b"")

    @classmethod
    def decode(cls, line: str, read: Callable[[int], bytes]) -> Handoff:
        """The handoff whose JSON ``line`` was read (none if empty); ``read(n)`` reads the n table bytes that
        follow it."""
        if not line:
            return cls()
        header = orjson.loads(line)
        state = header["siblings"]
        length = header["tableBytes"]
        return cls(TableState.model_validate(state) if state else None, read(length) if length else None)


class ManifestFolder:
    """Compiles a folder into the store, keeping the last good table when the folder turns bad."""

    def __init__(self, directory: Path, store: TableStore) -> None:
        self.directory = directory
        self.store = store
        self.generation = 0
        self._signature: Signature | None = None
        self._seen: Signature | None = None
        self._siblings: TableState | None = None

    def resume(self, handoff: Handoff) -> None:
        """Number tables on from the siblings' generation: the same content they serve gets their generation."""
        if handoff.siblings is not None and handoff.siblings.generation is not None:
            self._siblings = handoff.siblings
            self.generation = max(self.generation, handoff.siblings.generation)

    def reload(self) -> CompileResult | None:
        """Compile the folder now; returns the result, or None (with the reason logged) if it was refused.

        Once a table is being served, a folder with any invalid object or broken reference is refused as a
        whole, so a typo never takes a working route down; the first load serves whatever compiles. A
        folder with no route, or one that drops every API key the served table has, is refused unless it
        holds the empty marker: a folder being emptied and filled again is not a table anybody meant.
        """
        self._signature = self._seen = folder_signature(self.directory)
        try:
            inventory = load_documents(manifest_files(self.directory))
            result = compile_inventory(inventory, self.generation + 1)
        except ManifestError as exc:
            self.store.reject(str(exc))
            return None
        problems = [
            f"{ref}: {c.type}={c.status} {c.reason}: {c.message}"
            for ref, conditions in result.conditions.items()
            for c in conditions
            if not c.ok
        ]
        if problems and self.store.current is not None:
            self.store.reject("; ".join(problems))
            return None
        emptied = self._emptied(result.table)
        if emptied:
            self.store.reject(emptied)
            return None
        for problem in problems:
            log.warning("serving without %s", problem)
        current = self.store.current
        if current is not None and current.table.sha256 == result.table.sha256:
            self.store.last_error = None  # the folder is back to what is being served
            return result
        siblings, self._siblings = self._siblings, None
        if siblings is not None and siblings.sha256 == result.table.sha256:
            result = CompileResult(
                result.table.model_copy(update={"generation": siblings.generation}), result.conditions
            )
        try:
            self.store.apply(result.table)
        except InvalidTableError:
            return None
        self.generation = result.table.generation
        return result

    def _emptied(self, table: RoutingTable) -> str | None:
        """Why ``table`` is not served though it compiled: it has no route, or none of the served table's
        keys; None if neither, or if the folder holds the empty marker."""
        if (self.directory / EMPTY_MARKER).exists():
            return None
        served = self.store.current.table if self.store.current else None
        if not table.routes:
            lost = "holds no ModelRoute" if served is None else f"would drop every route served ({len(served.routes)})"
        elif served is not None and served.api_key_sha256 and not table.api_key_sha256:
            lost = f"would drop every gateway API key served ({len(served.api_key_sha256)})"
        else:
            return None
        return f"{self.directory} {lost}; add a file named {EMPTY_MARKER} there if that is meant"

    def changed(self) -> bool:
        """Whether the folder differs from what was last compiled and stayed so since the previous check: a
        folder being rewritten file by file, or a file still being written, is compiled once it settles."""
        signature = folder_signature(self.directory)
        settled, self._seen = signature == self._seen, signature
        return settled and signature != self._signature

    def __str__(self) -> str:
        return f"manifests in {self.directory}"


class Reloadable(Protocol):
    """A table source polled for changes: a manifest folder, or the table file mounted from a Secret."""

    def changed(self) -> bool:
        """Whether the source differs from what was last loaded."""
        ...

    def reload(self) -> object:
        """Load the source into the store (keeping the served table if the source is bad)."""
        ...

    def resume(self, handoff: Handoff) -> None:
        """Before the first load: start from where sibling workers are (see :class:`Handoff`)."""
        ...


async def poll_for_changes(source: Reloadable, interval: float) -> None:
    """Poll ``source`` forever, reloading it whenever it changed."""
    while True:
        await asyncio.sleep(interval)
        if source.changed():
            log.info("%s changed, reloading", source)
            source.reload()


def watch_source(source: Reloadable, interval: float = 1.0) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry that polls ``source`` for the app's lifetime."""

    async def context(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(poll_for_changes(source, interval))
        yield
        task.cancel()

    return context
