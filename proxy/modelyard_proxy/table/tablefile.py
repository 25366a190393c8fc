"""Operator mode's bootstrap: the routing table the operator wrote into a Secret, mounted into the pod as a file.

A new pod serves from it without waiting for (or even needing) the operator, and keeps following it, so a
missed push still arrives with the kubelet's next sync of the mount. Pushes are usually faster, so the
file often holds an older generation than the one served; that is expected and ignored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
from pydantic import ValidationError

from modelyard_proxy.table.standalone import Handoff
from modelyard_proxy.table.store import StaleTableError, TableStore
from modelyard_routing import InvalidTableError, RoutingTable
from modelyard_routing.conditions import describe_validation_error

log = logging.getLogger(__name__)

Stamp = tuple[int, int, int]


class TableFile:
    """Loads the mounted table into the store whenever the file changes, never moving back a generation."""

    def __init__(self, path: Path, store: TableStore) -> None:
        self.path = path
        self.store = store
        self._stamp: Stamp | None = None

    def _read_stamp(self) -> Stamp | None:
        # A Secret mount updates by swapping a symlink, so follow it: the inode changes on every update.
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def changed(self) -> bool:
        """Whether the file differs from what was last read."""
        return self._read_stamp() != self._stamp

    def resume(self, handoff: Handoff) -> None:
        """Serve the table the supervisor handed over, if any: the last one pushed to the sibling workers, which
        may be newer than the file (the file is still read next, and wins if newer)."""
        if handoff.table is not None:
            self._load(handoff.table, "the table handed over by the supervisor")

    def reload(self) -> bool:
        """Read the file and apply it if newer; True if the served table changed."""
        self._stamp = self._read_stamp()
        if self._stamp is None:
            log.info("no routing table at %s yet; waiting for it or for a push", self.path)
            return False
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            self.store.reject(f"{self.path}: {exc}")
            return False
        return self._load(data, str(self.path))

    def _load(self, data: bytes, where: str) -> bool:
        """Apply the table in ``data`` if it is valid and newer; True if the served table changed."""
        try:
            table = RoutingTable.from_wire(orjson.loads(data))
        except ValidationError as exc:
            self.store.reject(f"{where}: {describe_validation_error(exc, prefix='table')}")
            return False
        except ValueError as exc:  # not JSON, unknown schema version, hash mismatch
            self.store.reject(f"{where}: {exc}")
            return False
        try:
            return self.store.apply_newer(table)
        except StaleTableError as exc:
            log.debug("%s: %s", where, exc)
        except InvalidTableError:
            pass  # the store recorded why
        return False

    def __str__(self) -> str:
        return f"routing table file {self.path}"
