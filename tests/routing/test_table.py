"""The wire form of the routing table: what proxies accept and what they refuse."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from modelyard_routing import IncompatibleTableError, InvalidTableError, Policy, Route, RoutingTable
from modelyard_routing.table import DEFAULT_RETRY_ON


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


def test_a_default_retry_policy_is_left_out_of_the_wire_so_older_proxies_read_the_table() -> None:
    default = RoutingTable(routes=(Route(id="r", model="m", targets=()),))
    assert b"retry_on" not in default.to_wire()
    assert RoutingTable.from_wire(default.sealed(1).to_wire()).routes[0].policy.retry_on == DEFAULT_RETRY_ON
    custom = Route(id="r", model="m", targets=(), policy=Policy(retry_on=("timeout",)))
    wire = RoutingTable(routes=(custom,)).sealed(2).to_wire()
    assert RoutingTable.from_wire(wire).routes[0].policy.retry_on == ("timeout",)
    assert RoutingTable(routes=(custom,)).content_hash() != default.content_hash()
