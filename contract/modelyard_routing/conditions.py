"""Status conditions the compiler reports per object, in the Kubernetes condition shape."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import ValidationError

ConditionStatus = Literal["True", "False", "Unknown"]
#: The condition types the compiler sets (the operator adds Programmed).
ACCEPTED = "Accepted"
RESOLVED_REFS = "ResolvedRefs"


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    """One condition: ``type`` is Accepted, ResolvedRefs or Programmed; ``reason`` is CamelCase."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    observed_generation: int

    @property
    def ok(self) -> bool:
        """Whether the condition holds."""
        return self.status == "True"


def describe_validation_error(exc: ValidationError, prefix: str = "spec") -> str:
    """pydantic's errors as one line a kubectl user can act on (paths in manifest field names)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join([prefix, *(str(p) if not isinstance(p, int) else f"[{p}]" for p in error["loc"])])
        parts.append(f"{path.replace('.[', '[')}: {error['msg']}")
    return "; ".join(parts)


def invalid_spec(exc: ValidationError, generation: int) -> tuple[Condition, Condition]:
    """The conditions of an object whose spec does not validate: not accepted, references not looked at."""
    return (
        Condition(ACCEPTED, "False", "InvalidSpec", describe_validation_error(exc), generation),
        Condition(RESOLVED_REFS, "Unknown", "InvalidSpec", "spec is not valid", generation),
    )
