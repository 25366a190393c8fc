"""Every CRD kind's pydantic spec model, for the tests that hold each CRD against its model.

``specs.KIND_TO_SPEC`` covers the routing kinds; the ModelConsumer spec lives in its own module (it builds on
``specs``, so ``specs`` cannot list it without an import cycle).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from modelyard_routing.consumer_spec import ModelConsumerSpec
from modelyard_routing.specs import KIND_TO_SPEC

SPEC_MODELS: dict[str, type[BaseModel]] = {**KIND_TO_SPEC, "ModelConsumer": ModelConsumerSpec}


def parse_any_spec(kind: str, spec: Any) -> BaseModel:
    """Validate a raw ``spec`` mapping of any CRD kind; raises pydantic's ValidationError."""
    return SPEC_MODELS[kind].model_validate(spec)
