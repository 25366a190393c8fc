"""What each object's status says, computed from the compile and from what the proxies report (pure).

``Programmed`` is the condition no anchor project offers: it turns True only when every ready proxy pod
has acknowledged (or, on resync, reported) a table generation that contains the route as it now stands.

A route's status names only what is about the route: the generation that first carried its current version
(its ``since``), never the newest table. So a change to one route rewrites that route's status and no
other's, and a route stays as it is while the pods move on to tables that carry it unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelyard_operator.inventory import Observed
from modelyard_operator.tables import TableStep
from modelyard_routing import Condition
from modelyard_routing.conditions import ACCEPTED, ConditionStatus

PROGRAMMED = "Programmed"
#: Longest condition message written (the CRD allows 32 KiB; a status is read by people).
MAX_MESSAGE = 4096
#: How many lagging proxies a message names before summarising.
NAMED_PROXIES = 5

Status = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Rollout:
    """Which ready proxies serve which table generation, as the publisher last learned it."""

    generation: int
    ready: tuple[str, ...] = ()
    loaded: Mapping[str, int] = dataclasses.field(default_factory=dict)
    problems: Mapping[str, str] = dataclasses.field(default_factory=dict)
    refused: frozenset[str] = frozenset()
    #: Ready pods that did not answer the last query or push: they count as serving nothing.
    unreachable: frozenset[str] = frozenset()

    def serving(self, since: int) -> list[str]:
        """The ready proxies serving a generation at or after ``since``."""
        return [name for name in self.ready if self.loaded.get(name, -1) >= since]

    def replicas(self, since: int | None) -> str:
        """``serving/ready``, as ``kubectl get`` shows it; a route no table serves (``since`` None) is ``0/ready``."""
        serving = len(self.serving(since)) if since is not None else 0
        return f"{serving}/{len(self.ready)}"

    def lag_reason(self, waiting: Iterable[str]) -> str:
        """Why the ``waiting`` pods do not serve the route yet: the most serious cause among them."""
        lagging = set(waiting)
        if self.refused & lagging:
            return "Refused"
        return "Unreachable" if self.unreachable & lagging else "Pending"


def programmed(
    observed_generation: int,
    *,
    accepted: bool,
    since: int | None,
    retained: bool,
    rollout: Rollout,
    subject: str = "route",
    unresolved: str = "no target resolves",
) -> Condition:
    """The Programmed condition of a route (or another ``subject``, a consumer) the table serves from
    generation ``since`` (None: not served; ``unresolved`` says why when it is accepted)."""

    def condition(status: ConditionStatus, reason: str, message: str) -> Condition:
        return Condition(PROGRAMMED, status, reason, message, observed_generation)

    if since is None:
        if not accepted:
            return condition("False", "NotAccepted", f"the {subject} is not accepted, so no proxy serves it")
        return condition("False", "UnresolvedRefs", f"{unresolved}, so no proxy serves this {subject}")
    serving = rollout.serving(since)
    waiting = [name for name in rollout.ready if name not in serving]
    details = [f"{name}: {rollout.problems.get(name, 'push in progress')}" for name in waiting[:NAMED_PROXIES]]
    if len(waiting) > NAMED_PROXIES:
        details.append(f"and {len(waiting) - NAMED_PROXIES} more")
    lagging = f"; not serving it: {'; '.join(details)}" if waiting else ""
    if retained:
        return condition(
            "False",
            "LastGoodServed",
            f"{rollout.replicas(since)} ready proxy replicas keep serving the last good version of this {subject} "
            f"(from table generation {since}) until the problem above is fixed{lagging}",
        )
    if not rollout.ready:
        return condition("False", "NoReadyReplicas", f"no ready proxy replica was found to serve this {subject}")
    summary = f"{len(serving)}/{len(rollout.ready)} ready proxy replicas serve this {subject} as it now stands"
    summary += f" (from table generation {since})"
    if not waiting:
        return condition("True", PROGRAMMED, summary)
    return condition("False", rollout.lag_reason(waiting), summary + lagging)


def route_status(
    observed: Observed, conditions: Sequence[Condition], step: TableStep, rollout: Rollout
) -> tuple[Status, tuple[Condition, ...]]:
    """The status of a ModelRoute (conditions still without transition times) and its full condition list."""
    generation = observed.manifest.generation
    route_id = f"{observed.ref.namespace}/{observed.ref.name}"
    since = step.since.get(route_id)
    accepted = any(c.type == ACCEPTED and c.ok for c in conditions)
    full = (
        *conditions,
        programmed(generation, accepted=accepted, since=since, retained=observed.ref in step.retained, rollout=rollout),
    )
    status: Status = {
        "observedGeneration": generation,
        "programmedReplicas": rollout.replicas(since),
        "tableGeneration": since,
        "tableHash": step.hashes.get(since) if since is not None else None,
    }
    return status, full


def credential_status(observed: Observed) -> Status:
    """The status of a ProviderCredential besides its conditions."""
    return {"observedGeneration": observed.manifest.generation}


def render_conditions(conditions: Iterable[Condition], current: Sequence[Any], now: str) -> list[dict[str, Any]]:
    """Conditions in the API's shape; ``lastTransitionTime`` moves only when a condition's status does."""
    before = {c.get("type"): c for c in current if isinstance(c, Mapping)}
    rendered = []
    for condition in conditions:
        old = before.get(condition.type)
        unchanged = old is not None and old.get("status") == condition.status and old.get("lastTransitionTime")
        rendered.append(
            {
                "type": condition.type,
                "status": condition.status,
                "observedGeneration": condition.observed_generation,
                "lastTransitionTime": old["lastTransitionTime"] if unchanged and old is not None else now,
                "reason": condition.reason,
                "message": condition.message[:MAX_MESSAGE],
            }
        )
    return rendered


def changed_fields(desired: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether patching ``desired`` would change ``current`` (a missing key equals None)."""
    return any(current.get(key) != value for key, value in desired.items())


def transitions(conditions: Iterable[Condition], current: Sequence[Any]) -> list[tuple[str, Condition]]:
    """The Events to post: (type, condition) for each condition that newly failed, or newly got Programmed.

    Pending is a normal state on the way to Programmed, not a failure, so it posts nothing.
    """
    before = {c.get("type"): c for c in current if isinstance(c, Mapping)}
    events = []
    for condition in conditions:
        old = before.get(condition.type) or {}
        if old.get("status") == condition.status and old.get("reason") == condition.reason:
            continue
        if condition.ok and condition.type == PROGRAMMED:
            events.append(("Normal", condition))
        elif condition.status == "False" and condition.reason not in {"Pending", "NotAccepted", "UnresolvedRefs"}:
            events.append(("Warning", condition))
    return events
