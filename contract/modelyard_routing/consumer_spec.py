"""Pydantic model of the ``ModelConsumer`` spec: one team or application, its keys, models, limits and budgets.

It mirrors ``crds/modelyard.io_modelconsumers.yaml`` field for field. A consumer grants spend, so where one
may live is the operator's decision (trusted namespaces), not the spec's.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from modelyard_routing.specs import (
    K8S_NAME_PATTERN,
    MODEL_NAME_MAX_LENGTH,
    PROFILE_NAME_PATTERN,
    _Spec,
)

#: A model name, alias or wildcard pattern a consumer may call (``*`` alone allows every route).
ALLOWED_MODEL_PATTERN = r"^[A-Za-z0-9._:/@+*-]{1,128}$"
#: Attribution labels become metric label values: Prometheus-safe names, short values.
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]{0,62}$"
#: Label names the gateway's own metrics use; an attribution label may not shadow them.
RESERVED_LABELS = frozenset({"consumer", "route", "provider", "model", "code", "outcome", "worker", "le", "period"})
#: Upper bounds that catch typos (an extra three zeros) without limiting any real deployment.
MAX_REQUESTS_PER_MINUTE = 10_000_000
MAX_TOKENS_PER_MINUTE = 10_000_000_000
MAX_CONCURRENT = 100_000
MAX_BUDGET_USD = 10_000_000


class BudgetPeriod(enum.StrEnum):
    """A calendar period in UTC; a budget's spend starts again at zero when the next one begins."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class UnpricedModels(enum.StrEnum):
    """What a consumer with a budget does with a model that has no price anywhere (it would cost 0)."""

    ALLOW = "Allow"
    REFUSE = "Refuse"


class StoreFailure(enum.StrEnum):
    """When the shared counter store cannot be reached: count per pod (open) or refuse (closed)."""

    FAIL_OPEN = "FailOpen"
    FAIL_CLOSED = "FailClosed"


class ConsumerSecretRef(_Spec):
    """A Secret in the consumer's namespace; every non-empty value in it is one of the consumer's keys."""

    name: Annotated[str, Field(pattern=K8S_NAME_PATTERN, max_length=253)]


class KeySource(_Spec):
    """Where the consumer's gateway keys come from: named Secrets, Secrets matching labels, or both."""

    secret_refs: Annotated[list[ConsumerSecretRef], Field(alias="secretRefs", max_length=16)] = Field(
        default_factory=list
    )
    selector: Annotated[
        dict[Annotated[str, Field(max_length=317)], Annotated[str, Field(max_length=63)]] | None,
        Field(alias="matchLabels", max_length=8),
    ] = None

    @model_validator(mode="after")
    def _names_some_secret(self) -> KeySource:
        if not self.secret_refs and not self.selector:
            msg = "keys needs secretRefs or matchLabels"
            raise ValueError(msg)
        return self


class LimitsSpec(_Spec):
    """Rates shared by every key, pod and worker of the consumer; an omitted limit is no limit."""

    requests_per_minute: Annotated[int | None, Field(alias="requestsPerMinute", ge=1, le=MAX_REQUESTS_PER_MINUTE)] = (
        None
    )
    tokens_per_minute: Annotated[int | None, Field(alias="tokensPerMinute", ge=1, le=MAX_TOKENS_PER_MINUTE)] = None
    concurrent_requests: Annotated[int | None, Field(alias="concurrentRequests", ge=1, le=MAX_CONCURRENT)] = None


class BudgetSpec(_Spec):
    """At most ``usd`` of spend in each calendar ``period`` (UTC)."""

    period: BudgetPeriod
    usd: Annotated[float, Field(gt=0, le=MAX_BUDGET_USD)]


class ModelConsumerSpec(_Spec):
    """A team or application: the keys that identify it and what those keys may do."""

    keys: KeySource
    models: Annotated[
        list[Annotated[str, Field(pattern=ALLOWED_MODEL_PATTERN, max_length=MODEL_NAME_MAX_LENGTH)]],
        Field(min_length=1, max_length=64),
    ]
    default_profile: Annotated[str | None, Field(alias="defaultProfile", pattern=PROFILE_NAME_PATTERN)] = None
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    budgets: Annotated[list[BudgetSpec], Field(max_length=3)] = Field(default_factory=list)
    unpriced_models: Annotated[UnpricedModels, Field(alias="unpricedModels")] = UnpricedModels.ALLOW
    on_store_failure: Annotated[StoreFailure, Field(alias="onStoreFailure")] = StoreFailure.FAIL_OPEN
    labels: Annotated[dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=8)] = Field(
        default_factory=dict
    )

    @field_validator("labels")
    @classmethod
    def _labels_are_metric_safe(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            if not re.fullmatch(LABEL_NAME_PATTERN, name):
                msg = f"label name {name!r} must match {LABEL_NAME_PATTERN}"
                raise ValueError(msg)
            if name in RESERVED_LABELS:
                msg = f"label name {name!r} is reserved for the gateway's own metric labels"
                raise ValueError(msg)
        return labels

    @model_validator(mode="after")
    def _one_budget_per_period(self) -> ModelConsumerSpec:
        periods = [budget.period for budget in self.budgets]
        if len(set(periods)) != len(periods):
            msg = "budgets must name each period at most once"
            raise ValueError(msg)
        return self
