"""The routing table: the one contract between the control plane and every proxy pod.

It is compiled from manifests, carries the resolved provider keys, and is hashed over its content so two
compilations of the same inputs agree on the hash whatever their generation.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic_core.core_schema import SerializationInfo

from modelyard_routing import specs
from modelyard_routing.consumer_spec import BudgetPeriod, StoreFailure, UnpricedModels
from modelyard_routing.specs import AzureOptions, DataRetention, Provider, VertexOptions

#: Bumped on any change a proxy of the previous version could misread; proxies refuse unknown versions.
SCHEMA_VERSION = 1
#: Context flag that reveals secrets in a dump; without it, they stay masked (logs, reprs, status).
REVEAL_SECRETS = "reveal_secrets"


def _without_empty(data: Any, *fields: str) -> Any:
    """A dump without ``fields`` that are empty: fields added later leave older tables' hashes unchanged."""
    if isinstance(data, dict):
        for field in fields:
            if not data.get(field):
                data.pop(field, None)
    return data


def _dump_secret(value: SecretStr, info: SerializationInfo) -> str:
    """The secret itself only in a dump that asks for it (the pushed table, its hash); masked anywhere else."""
    context = info.context or {}
    return value.get_secret_value() if context.get(REVEAL_SECRETS) else str(value)


#: A secret value of the table: masked in reprs, logs and status; revealed only with :data:`REVEAL_SECRETS`.
Secret = Annotated[SecretStr, PlainSerializer(_dump_secret, return_type=str)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelPrice(_Frozen):
    """USD per million tokens for one upstream model; cached prompt tokens cost ``cached_input`` when set."""

    input: float
    output: float
    cached_input: float | None = None


class AwsKeys(_Frozen):
    """Static AWS keys from a Secret, for SigV4-signed Bedrock calls."""

    access_key_id: Secret
    secret_access_key: Secret
    session_token: Secret | None = None


class Egress(_Frozen):
    """How a credential's calls leave the cluster, when it says more than the gateway-wide settings."""

    #: A proxy URL (it may carry ``user:password``, hence secret) used instead of the gateway-wide one.
    proxy_url: Secret | None = None
    #: Connect directly, whatever the gateway-wide proxy settings say.
    direct: bool = False
    #: PEM CA certificates trusted beside the system's, for an upstream behind a private CA.
    ca_bundle: str | None = None
    #: PEM client certificate chain and key presented to the upstream (mTLS).
    client_certificate: str | None = None
    client_key: Secret | None = None


class Credential(_Frozen):
    """A resolved ProviderCredential: where to call and with which key."""

    id: str
    provider: Provider
    base_url: str
    api_key: Secret | None = None
    azure: AzureOptions | None = None
    #: Bedrock: static keys; None signs with the pod's own AWS identity (or sends ``api_key`` as a bearer token).
    aws_keys: AwsKeys | None = None
    #: Vertex AI: project and publisher (the region is ``region``).
    vertex: VertexOptions | None = None
    #: Vertex AI: a service-account key (JSON); None uses the pod's application default credentials.
    service_account: Secret | None = None
    egress: Egress | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    region: str | None = None
    jurisdiction: str | None = None
    data_retention: DataRetention | None = None
    #: The credential's own prices by upstream model (built-in defaults are the proxy's, not the table's).
    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _omit_empty_fields(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A credential without the later fields serialises (and hashes) exactly as before they existed."""
        return _without_empty(handler(self), "prices", "aws_keys", "vertex", "service_account", "egress")


class Target(_Frozen):
    """One upstream of a route, with the stable id health state is keyed by."""

    id: str
    credential: str
    model: str
    weight: Annotated[int, Field(ge=0)] = 1
    priority: Annotated[int, Field(ge=0)] = 0
    #: Tokens the model accepts; a prompt estimated larger is not sent here.
    context_window: int | None = None


class Profile(_Frozen):
    """Targets a request gets instead of the route's when it names this profile."""

    name: str
    targets: tuple[Target, ...]


class Faults(_Frozen):
    """Injected failures and latency, per attempt (outage rehearsal)."""

    abort_percent: int = 0
    abort_status: int = 503
    delay_ms: int = 0
    delay_percent: int = 100


#: Failure classes retried on the same target unless a route says otherwise (``retry.retryOn``).
DEFAULT_RETRY_ON = tuple(trigger.value for trigger in specs.DEFAULT_RETRY_ON)


class Policy(_Frozen):
    """How the proxy spends a request on a route's targets: order, retries, deadlines, fallbacks, health."""

    strategy: str = "priority"
    hedge_delay_ms: int | None = None
    attempts: int = 1
    retry_on: tuple[str, ...] = DEFAULT_RETRY_ON
    max_total_attempts: int | None = None
    backoff_initial_ms: int = 100
    backoff_max_ms: int = 2000
    connect_ms: int | None = None
    first_token_ms: int | None = None
    idle_ms: int | None = None
    total_ms: int | None = None
    fallback_on: tuple[str, ...] = (
        "rateLimit",
        "quotaExhausted",
        "serverError",
        "overloaded",
        "connectError",
        "timeout",
    )
    breaker_failure_rate_percent: int = 50
    breaker_min_requests: int = 5
    breaker_window_ms: int = 30_000
    breaker_cooldown_ms: int = 10_000
    faults: Faults | None = None

    @model_serializer(mode="wrap")
    def _omit_default_retry_on(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A policy with the default ``retry_on`` serialises (and hashes) as before the field existed, so a
        proxy of the previous version still reads the table; one that sets it is refused by such a proxy."""
        data = handler(self)
        if isinstance(data, dict) and tuple(data.get("retry_on", ())) == DEFAULT_RETRY_ON:
            data.pop("retry_on")
        return data


class Route(_Frozen):
    """A public model name, its aliases, and its targets in the order the manifest gave them."""

    id: str
    model: str
    aliases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    targets: tuple[Target, ...]
    profiles: tuple[Profile, ...] = ()
    policy: Policy = Field(default_factory=Policy)


class ConsumerLimits(_Frozen):
    """Per-minute rates and a concurrency cap; None is no limit."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_requests: int | None = None


class Budget(_Frozen):
    """At most ``usd`` of spend per calendar ``period`` in UTC."""

    period: BudgetPeriod
    usd: float


class Consumer(_Frozen):
    """A compiled ModelConsumer: the hashes of its keys and what they may do (never a key itself)."""

    #: ``namespace/name``: the label in metrics, the audit line and spans, and the store's key prefix.
    name: str
    key_sha256: tuple[str, ...]
    #: Public model names, aliases or wildcard patterns (``*`` is every route).
    models: tuple[str, ...]
    default_profile: str | None = None
    limits: ConsumerLimits = Field(default_factory=ConsumerLimits)
    budgets: tuple[Budget, ...] = ()
    unpriced_models: UnpricedModels = UnpricedModels.ALLOW
    on_store_failure: StoreFailure = StoreFailure.FAIL_OPEN
    labels: dict[str, str] = Field(default_factory=dict)


class RoutingTable(_Frozen):
    """Everything a proxy pod needs to serve: routes, credentials, consumers, and hashes of the gateway API keys.

    ``api_key_sha256`` are the keys of labelled Secrets that belong to no consumer: unlimited, every model.
    """

    schema_version: int = SCHEMA_VERSION
    generation: int = 0
    sha256: str = ""
    routes: tuple[Route, ...] = ()
    credentials: tuple[Credential, ...] = ()
    api_key_sha256: tuple[str, ...] = ()
    consumers: tuple[Consumer, ...] = ()

    @model_serializer(mode="wrap")
    def _omit_no_consumers(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A table without consumers serialises (and hashes) exactly as before consumers existed."""
        return _without_empty(handler(self), "consumers")

    def content_hash(self) -> str:
        """sha256 over the canonical content, secrets included, generation and hash excluded."""
        content = self.model_dump(mode="json", exclude={"generation", "sha256"}, context={REVEAL_SECRETS: True})
        return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def sealed(self, generation: int) -> RoutingTable:
        """This table stamped with a generation and its content hash."""
        return self.model_copy(update={"generation": generation, "sha256": self.content_hash()})

    def to_wire(self) -> bytes:
        """The full serialisation (secrets revealed) for the proxy push and the mounted Secret only."""
        return orjson.dumps(self.model_dump(mode="json", context={REVEAL_SECRETS: True}))

    @classmethod
    def from_wire(cls, data: bytes | str | dict[str, Any]) -> RoutingTable:
        """Parse a wire table; raises IncompatibleTableError or pydantic's ValidationError."""
        raw = data if isinstance(data, dict) else orjson.loads(data)
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        if version != SCHEMA_VERSION:
            raise IncompatibleTableError(version)
        table = cls.model_validate(raw)
        if table.sha256 and table.sha256 != table.content_hash():
            msg = "routing table hash does not match its content"
            raise InvalidTableError(msg)
        return table


class InvalidTableError(ValueError):
    """A table that parses but cannot be served as it stands."""


class IncompatibleTableError(InvalidTableError):
    """A table written for a schema version this proxy does not understand."""

    def __init__(self, version: object) -> None:
        super().__init__(
            f"routing table schema version {version!r} is not supported (this proxy reads {SCHEMA_VERSION})"
        )
        self.version = version


def hash_api_key(key: str) -> str:
    """The form gateway API keys take in a table: plaintext keys never leave the Secret they came from."""
    return hashlib.sha256(key.encode()).hexdigest()
