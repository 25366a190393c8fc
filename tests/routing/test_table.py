"""The wire form of the routing table: what proxies accept and what they refuse."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from modelyard_routing import IncompatibleTableError, InvalidTableError, RoutingTable


def test_unknown_schema_version_is_refused() -> None:
    wire = orjson.loads(RoutingTable().sealed(1).to_wire())
    wire["schema_version"] = 99
    with pytest.raises(IncompatibleTableError, match="99"):
        RoutingTable.from_wire(wire)


def test_tampered_content_fails_the_hash_check() -> None:
    wire = orjson.loads(RoutingTable(api_key_sha256=("a",)).sealed(1).to_wire())
    wire["api_key_sha256"] = ["b"]
    with pytest.raises(InvalidTableError, match="hash"):
        RoutingTable.from_wire(wire)


def test_unknown_fields_are_refused() -> None:
    wire = orjson.loads(RoutingTable().sealed(1).to_wire())
    wire["surprise"] = True
    with pytest.raises(ValidationError):
        RoutingTable.from_wire(wire)
