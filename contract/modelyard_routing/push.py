"""The push protocol between the operator and each proxy's admin port, and the Secret both sides share.

The operator writes the sealed table into one Secret (which proxy pods mount, so a new pod serves without
the operator) and PUTs the same bytes to every ready pod. A pod answers with what it now serves, or refuses
with a reason and keeps its last good table. Both sides import these names, so neither can drift.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from modelyard_routing.specs import API_GROUP
from modelyard_routing.table import SCHEMA_VERSION

#: ``GET`` says what a proxy serves (generation and hash, never secrets); ``PUT`` offers it a table.
ADMIN_TABLE_PATH = "/admin/v1/routing-table"
#: The key of the table inside the Secret, hence the file name inside a pod's mount of it.
TABLE_SECRET_KEY = "routing-table.json"  # noqa: S105 - a key name, not a secret
#: Annotations on the table Secret, readable without parsing (or even understanding) the table itself.
GENERATION_ANNOTATION = f"{API_GROUP}/table-generation"
SHA256_ANNOTATION = f"{API_GROUP}/table-sha256"


class Refusal(enum.StrEnum):
    """Why a proxy refused a pushed table; it keeps serving the one it had."""

    #: Older than the served table: a slow retry, or an operator that lost count (it re-numbers and pushes again).
    STALE_GENERATION = "StaleGeneration"
    #: Same generation as the served table but different content.
    GENERATION_CONFLICT = "GenerationConflict"
    #: Written for a schema this proxy cannot read (a rolling upgrade in progress).
    UNSUPPORTED_SCHEMA = "UnsupportedSchemaVersion"
    #: Not a table, or one that contradicts itself.
    INVALID_TABLE = "InvalidTable"


#: HTTP status of each refusal: 409 when the table is fine but not for this proxy now, 422 when it is broken.
REFUSAL_STATUS: dict[Refusal, int] = {
    Refusal.STALE_GENERATION: 409,
    Refusal.GENERATION_CONFLICT: 409,
    Refusal.UNSUPPORTED_SCHEMA: 409,
    Refusal.INVALID_TABLE: 422,
}


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class TableState(_Message):
    """What a proxy serves: the body of a ``GET`` and of a successful ``PUT``. ``None`` before any table."""

    generation: int | None
    sha256: str | None
    schema_version: int = SCHEMA_VERSION


class PushRefused(_Message):
    """The body of a 409 or 422: the reason, and what the proxy keeps serving instead."""

    reason: Refusal
    message: str
    generation: int | None = None
    sha256: str | None = None


class AdminToken:
    """The bearer token guarding the admin port: read from a mounted Secret file, re-read when it changes.

    Re-reading on change lets the token rotate without restarting either side; a fixed ``value`` is for
    tests and for an environment variable. An empty token means the admin port refuses everything.
    """

    def __init__(self, path: Path | None = None, value: str = "") -> None:
        self._path = path
        self._value = value.strip()
        self._stamp: tuple[int, int, int] | None = None

    @classmethod
    def from_env(cls, path: Path | None, env: str) -> AdminToken:
        """The file at ``path`` if given, else the environment variable ``env``."""
        return cls(path) if path is not None else cls(value=os.environ.get(env, ""))

    def value(self) -> str:
        """The current token; a file that cannot be read yields the empty (refuse-all) token."""
        if self._path is None:
            return self._value
        try:
            stat = self._path.stat()
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._value = self._path.read_text(encoding="utf-8").strip()
                self._stamp = stamp
        except OSError:
            self._value, self._stamp = "", None
        return self._value
