"""A compiled route to test the relay's pieces with, one OpenAI target per id, in priority order."""

from __future__ import annotations

from modelyard_proxy.table.store import CompiledTable, ResolvedRoute
from modelyard_routing import Credential, Policy, Provider, Route, RoutingTable, Target
from modelyard_routing.table import ModelPrice


def route(policy: Policy, *ids: str, price: ModelPrice | None = None) -> ResolvedRoute:
    """Route ``r`` for model ``m``; ``price`` is every target's."""
    prices = {} if price is None else {f"m-{i}": price for i in ids}
    credential = Credential(id="c", provider=Provider.OPENAI, base_url="http://upstream/v1", prices=prices)
    targets = tuple(Target(id=i, credential="c", model=f"m-{i}", priority=n) for n, i in enumerate(ids))
    table = RoutingTable(routes=(Route(id="r", model="m", targets=targets, policy=policy),), credentials=(credential,))
    return CompiledTable.from_table(table.sealed(1)).routes["m"]
