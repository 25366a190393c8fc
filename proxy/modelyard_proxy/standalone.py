"""Standalone mode: serve manifests from a folder, recompiling whenever a file in it changes.

The folder is polled (file names, sizes and modification times) rather than watched through inotify, so
it behaves the same on a ConfigMap mount, whose updates arrive as a symlink swap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from modelyard_proxy.store import TableStore
from modelyard_routing import CompileResult, ManifestError, compile_inventory, load_documents
from modelyard_routing.manifests import manifest_files
from modelyard_routing.table import InvalidTableError

log = logging.getLogger(__name__)

Signature = tuple[tuple[str, int, int], ...]


def folder_signature(directory: Path) -> Signature:
    """What changes when any manifest file is added, removed or edited."""
    entries = []
    for path in manifest_files(directory):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


class ManifestFolder:
    """Compiles a folder into the store, keeping the last good table when the folder turns bad."""

    def __init__(self, directory: Path, store: TableStore) -> None:
        self.directory = directory
        self.store = store
        self.generation = 0
        self._signature: Signature | None = None

    def reload(self) -> CompileResult | None:
        """Compile the folder now; returns the result, or None (with the reason logged) if it was refused.

        Once a table is being served, a folder with any invalid object or broken reference is refused as a
        whole, so a typo never takes a working route down; the first load serves whatever compiles.
        """
        self._signature = folder_signature(self.directory)
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
        for problem in problems:
            log.warning("serving without %s", problem)
        current = self.store.current
        if current is not None and current.table.sha256 == result.table.sha256:
            self.store.last_error = None  # the folder is back to what is being served
            return result
        try:
            self.store.apply(result.table)
        except InvalidTableError:
            return None
        self.generation = result.table.generation
        return result

    def changed(self) -> bool:
        """Whether the folder differs from what was last compiled."""
        return folder_signature(self.directory) != self._signature

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
