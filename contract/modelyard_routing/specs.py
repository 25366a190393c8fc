"""Pydantic models of the ``ModelRoute`` and ``ProviderCredential`` specs.

These mirror the CRD schemas in ``crds/`` field for field (a test keeps them in step), so a manifest that
``kubectl apply`` accepts is one the compiler accepts, and vice versa.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

API_GROUP = "modelyard.io"
API_VERSION = f"{API_GROUP}/v1alpha1"

#: The public model name a client sends: what OpenAI SDKs accept, plus `/` and `:` for vendor-style names.
#: Every pattern here is plain ASCII classes (no ``\d``/``\s``, which are Unicode-aware in Python and Rust but not in
#: Go's RE2), so the apiserver, pydantic and ``re`` agree on what matches.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$"
#: The pattern already caps a model name at 128; stated as maxLength too, so the CRD's CEL cost estimate is bounded.
MODEL_NAME_MAX_LENGTH = 128
#: An RFC 1123 DNS label, what Kubernetes accepts as a Secret or credential name.
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
#: Headers a credential may never set: the gateway owns authentication and framing.
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
    }
)


class Provider(enum.StrEnum):
    """Every upstream wire dialect and OpenAI-compatible vendor the gateway knows by name."""

    OPENAI = "openai"
    AZURE_OPENAI = "azure-openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    MISTRAL = "mistral"
    DEEPSEEK = "deepseek"
    QWEN = "qwen"
    GROQ = "groq"
    TOGETHER = "together"
    OPENAI_COMPATIBLE = "openai-compatible"
    BEDROCK = "bedrock"
    VERTEX_AI = "vertex-ai"


#: Providers that may authenticate as the pod itself (IRSA, EKS Pod Identity, GKE Workload Identity), so a
#: secretRef is optional for them; openai-compatible may be keyless.
IDENTITY_PROVIDERS = frozenset({Provider.BEDROCK, Provider.VERTEX_AI})
#: Providers whose endpoint is regional: their credential must say which region.
REGIONAL_PROVIDERS = IDENTITY_PROVIDERS
#: A cloud region as AWS and Google name them (``eu-central-1``, ``europe-west4``, ``global``): it becomes part
#: of a host name.
CLOUD_REGION_PATTERN = r"^[a-z0-9-]{1,64}$"


class DataRetention(enum.StrEnum):
    """What the provider keeps of a request, as contracted: a route can require ``none``."""

    NONE = "none"
    LIMITED = "limited"
    STANDARD = "standard"


class _Spec(BaseModel):
    """Shared config: camelCase on the wire, unknown fields refused (the CRD schema is structural too)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class SecretKeyRef(_Spec):
    """A key inside a Secret in the same namespace as the object that references it."""

    name: Annotated[str, Field(pattern=K8S_NAME_PATTERN, max_length=253)]
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = "apiKey"


class SecretNameRef(_Spec):
    """A whole Secret in the same namespace, whose keys are fixed by what it holds (``tls.crt``, ``accessKeyId``)."""

    name: Annotated[str, Field(pattern=K8S_NAME_PATTERN, max_length=253)]


class ProxyURLSecretRef(SecretKeyRef):
    """The Secret key holding a proxy URL that carries ``user:password``."""

    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = "url"


class CABundleSecretRef(SecretKeyRef):
    """The Secret key holding PEM CA certificates."""

    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = "ca.crt"


#: A forward proxy written in a spec: scheme, host and port only (credentials belong in a Secret).
PROXY_URL_PATTERN = r"^https?://[-A-Za-z0-9.:\[\]]+/?$"


class ProxySpec(_Spec):
    """The forward proxy this credential's calls go through, instead of the gateway-wide ``HTTPS_PROXY``."""

    url: Annotated[str | None, Field(pattern=PROXY_URL_PATTERN, max_length=2048)] = None
    url_secret_ref: Annotated[ProxyURLSecretRef | None, Field(alias="urlSecretRef")] = None
    #: Connect directly, whatever the gateway-wide proxy settings say.
    direct: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> ProxySpec:
        if sum((self.url is not None, self.url_secret_ref is not None, self.direct)) != 1:
            msg = "egress.proxy sets exactly one of url, urlSecretRef and direct: true"
            raise ValueError(msg)
        return self


class EgressSpec(_Spec):
    """How this credential's calls leave the cluster: a proxy, a private CA, a client certificate."""

    proxy: ProxySpec | None = None
    ca_bundle_secret_ref: Annotated[CABundleSecretRef | None, Field(alias="caBundleSecretRef")] = None
    #: A ``kubernetes.io/tls`` Secret: ``tls.crt`` and ``tls.key`` are presented for mTLS.
    client_certificate_secret_ref: Annotated[SecretNameRef | None, Field(alias="clientCertificateSecretRef")] = None


class AwsOptions(_Spec):
    """How a bedrock credential signs: static keys from a Secret, else the pod's own AWS identity."""

    #: A Secret with ``accessKeyId``, ``secretAccessKey`` and optionally ``sessionToken``.
    access_key_secret_ref: Annotated[SecretNameRef | None, Field(alias="accessKeySecretRef")] = None


class VertexPublisher(enum.StrEnum):
    """Whose models a Vertex AI credential reaches: Google's Gemini or Anthropic's Claude."""

    GOOGLE = "google"
    ANTHROPIC = "anthropic"


class VertexOptions(_Spec):
    """Vertex AI addressing: the Google Cloud project and the model publisher (the region is ``spec.region``)."""

    project: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$", max_length=30)]
    publisher: VertexPublisher = VertexPublisher.GOOGLE


class AzureOptions(_Spec):
    """Azure OpenAI addressing: the classic deployment path or the v1 path."""

    api: Literal["deployments", "v1"] = "deployments"
    api_version: Annotated[str, Field(alias="apiVersion", pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$")] = (
        "2024-10-21"
    )
    deployment: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = None


#: A price in USD per million tokens, bounded like a target's ``pricePerMTokens``.
PricePerMTokens = Annotated[float, Field(ge=0, le=1_000_000)]


class ModelPriceSpec(_Spec):
    """What one upstream model costs through this credential, in USD per million tokens."""

    input_per_m_tokens: Annotated[PricePerMTokens, Field(alias="inputPerMTokens")]
    output_per_m_tokens: Annotated[PricePerMTokens, Field(alias="outputPerMTokens")]
    #: Prompt tokens served from the provider's cache; the input price when unset.
    cached_input_per_m_tokens: Annotated[PricePerMTokens | None, Field(alias="cachedInputPerMTokens")] = None


class ProviderCredentialSpec(_Spec):
    """Where a provider lives, how to authenticate, and facts a route can filter on."""

    provider: Provider
    base_url: Annotated[str | None, Field(alias="baseURL", pattern=r"^https?://[!-~]+$", max_length=2048)] = None
    secret_ref: Annotated[SecretKeyRef | None, Field(alias="secretRef")] = None
    azure: AzureOptions | None = None
    headers: Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=32)] = Field(
        default_factory=dict
    )
    aws: AwsOptions | None = None
    vertex: VertexOptions | None = None
    egress: EgressSpec | None = None
    region: Annotated[str | None, Field(max_length=64)] = None
    jurisdiction: Annotated[str | None, Field(max_length=64)] = None
    data_retention: Annotated[DataRetention | None, Field(alias="dataRetention")] = None
    #: Prices by upstream model name; they override the built-in defaults (``modelyard_routing.prices``).
    prices: Annotated[dict[str, ModelPriceSpec], Field(max_length=256)] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _headers_are_safe(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if not re.fullmatch(HEADER_NAME_PATTERN, name):
                msg = f"header name {name!r} is not a valid HTTP token"
                raise ValueError(msg)
            if name.lower() in RESERVED_HEADERS:
                msg = f"header {name!r} is reserved: the gateway sets it from the secretRef"
                raise ValueError(msg)
        return headers

    @model_validator(mode="after")
    def _provider_rules(self) -> ProviderCredentialSpec:
        if self.provider in {Provider.AZURE_OPENAI, Provider.OPENAI_COMPATIBLE} and self.base_url is None:
            msg = f"provider {self.provider.value} needs baseURL"
            raise ValueError(msg)
        if self.azure is not None and self.provider is not Provider.AZURE_OPENAI:
            msg = "azure options apply only to provider azure-openai"
            raise ValueError(msg)
        if self.secret_ref is None and self.provider not in {Provider.OPENAI_COMPATIBLE, *IDENTITY_PROVIDERS}:
            msg = (
                f"provider {self.provider.value} needs secretRef"
                " (only openai-compatible may be keyless; bedrock and vertex-ai may use the pod's identity)"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _cloud_rules(self) -> ProviderCredentialSpec:
        if self.provider in REGIONAL_PROVIDERS and self.region is None:
            msg = f"provider {self.provider.value} needs region"
            raise ValueError(msg)
        if self.provider in REGIONAL_PROVIDERS and not re.fullmatch(CLOUD_REGION_PATTERN, self.region or ""):
            msg = "the region of bedrock and vertex-ai is a cloud region name (lowercase letters, digits and dashes)"
            raise ValueError(msg)
        if self.aws is not None and self.provider is not Provider.BEDROCK:
            msg = "aws options apply only to provider bedrock"
            raise ValueError(msg)
        if self.aws is not None and self.aws.access_key_secret_ref is not None and self.secret_ref is not None:
            msg = "aws.accessKeySecretRef (signed calls) and secretRef (a Bedrock API key) are alternatives: set one"
            raise ValueError(msg)
        if self.vertex is not None and self.provider is not Provider.VERTEX_AI:
            msg = "vertex options apply only to provider vertex-ai"
            raise ValueError(msg)
        if self.provider is Provider.VERTEX_AI and self.vertex is None:
            msg = "provider vertex-ai needs vertex.project"
            raise ValueError(msg)
        return self


class CredentialRef(_Spec):
    """A ProviderCredential in the route's own namespace (cross-namespace references are refused)."""

    name: Annotated[str, Field(pattern=K8S_NAME_PATTERN, max_length=253)]


class TargetSpec(_Spec):
    """One upstream a route can send to: a credential and the provider's own model name."""

    credential_ref: Annotated[CredentialRef, Field(alias="credentialRef")]
    model: Annotated[str, Field(min_length=1, max_length=256)]
    weight: Annotated[int, Field(ge=0, le=1000)] = 1
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    context_window: Annotated[int | None, Field(alias="contextWindow", ge=1, le=100_000_000)] = None
    price_per_m_tokens: Annotated[float | None, Field(alias="pricePerMTokens", ge=0, le=1_000_000)] = None


class FallbackTrigger(enum.StrEnum):
    """Failure classes that move a request on to the next target."""

    RATE_LIMIT = "rateLimit"
    QUOTA = "quotaExhausted"
    SERVER_ERROR = "serverError"
    OVERLOADED = "overloaded"
    CONNECT_ERROR = "connectError"
    TIMEOUT = "timeout"
    CONTEXT_LENGTH = "contextLength"
    CONTENT_POLICY = "contentPolicy"


DEFAULT_FALLBACK_ON = [
    FallbackTrigger.RATE_LIMIT,
    FallbackTrigger.QUOTA,
    FallbackTrigger.SERVER_ERROR,
    FallbackTrigger.OVERLOADED,
    FallbackTrigger.CONNECT_ERROR,
    FallbackTrigger.TIMEOUT,
]


class RetryTrigger(enum.StrEnum):
    """Transient failure classes a route may retry on the same target (the others fall back at once)."""

    RATE_LIMIT = "rateLimit"
    SERVER_ERROR = "serverError"
    OVERLOADED = "overloaded"
    CONNECT_ERROR = "connectError"
    TIMEOUT = "timeout"


#: A timeout is not retried on the same target by default: a silent upstream then costs one ``firstToken``
#: before the fallback starts, not ``attempts`` of them.
DEFAULT_RETRY_ON = [
    RetryTrigger.RATE_LIMIT,
    RetryTrigger.SERVER_ERROR,
    RetryTrigger.OVERLOADED,
    RetryTrigger.CONNECT_ERROR,
]


class StrategyType(enum.StrEnum):
    """How a route picks the first target (the others follow as fallbacks)."""

    PRIORITY = "priority"
    WEIGHTED = "weighted"
    LATENCY = "latency"
    HEDGE = "hedge"


#: A Gateway API style duration: ``150ms``, ``30s``, ``1m30s``, ``1h``.
DURATION_PATTERN = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
_DURATION_PART = re.compile(r"([0-9]+)(ms|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def duration_ms(value: str) -> int:
    """Milliseconds in a duration string that matched :data:`DURATION_PATTERN`."""
    return sum(int(amount) * _UNIT_MS[unit] for amount, unit in _DURATION_PART.findall(value))


class StrategySpec(_Spec):
    """Balancing: priority order, weighted split, lowest observed latency, or hedged requests."""

    type: StrategyType = StrategyType.PRIORITY
    hedge_delay: Annotated[Duration | None, Field(alias="hedgeDelay")] = None


class BackoffSpec(_Spec):
    """Exponential backoff with jitter between retries of one target."""

    initial: Duration = "100ms"
    max: Duration = "2s"


class RetrySpec(_Spec):
    """Retries of the same target for the transient failures ``retryOn`` lists (429 rate limits, 5xx, connect
    errors; timeouts only when listed). Spelled as Istio does: a bare ``on`` key is the boolean true in YAML 1.1,
    which PyYAML and Kubernetes' YAML reader both follow."""

    attempts: Annotated[int, Field(ge=1, le=10)] = 1
    max_total_attempts: Annotated[int | None, Field(alias="maxTotalAttempts", ge=1, le=50)] = None
    backoff: BackoffSpec | None = None
    retry_on: Annotated[list[RetryTrigger], Field(alias="retryOn", max_length=5)] = Field(default=DEFAULT_RETRY_ON)


class TimeoutsSpec(_Spec):
    """Deadlines: per attempt (connect, first token, idle between chunks) and for the whole request."""

    connect: Duration | None = None
    first_token: Annotated[Duration | None, Field(alias="firstToken")] = None
    idle: Duration | None = None
    total: Duration | None = None


class RequireSpec(_Spec):
    """Guard rails on where a route may send data and what a target may cost."""

    jurisdictions: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=16)] = Field(
        default_factory=list
    )
    regions: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=32)] = Field(default_factory=list)
    data_retention: Annotated[list[DataRetention], Field(alias="dataRetention", max_length=3)] = Field(
        default_factory=list
    )
    max_price_per_m_tokens: Annotated[float | None, Field(alias="maxPricePerMTokens", ge=0, le=1_000_000)] = None


class CircuitBreakerSpec(_Spec):
    """Per-target breaker: opens at a failure rate over a window, probes again after the cooldown."""

    failure_rate_percent: Annotated[int, Field(alias="failureRatePercent", ge=1, le=100)] = 50
    min_requests: Annotated[int, Field(alias="minRequests", ge=1, le=1000)] = 5
    window: Duration = "30s"
    cooldown: Duration = "10s"


class FaultsSpec(_Spec):
    """Outage rehearsal: fail or slow a share of requests' first attempts as if the upstream had."""

    abort_percent: Annotated[int, Field(alias="abortPercent", ge=0, le=100)] = 0
    abort_status: Annotated[int, Field(alias="abortStatus", ge=400, le=599)] = 503
    delay: Duration | None = None
    delay_percent: Annotated[int, Field(alias="delayPercent", ge=0, le=100)] = 100


PROFILE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
#: A wildcard public name: the model-name alphabet plus ``*``, with at least one ``*``.
MODEL_PATTERN_PATTERN = r"^[A-Za-z0-9._:/@+-]*[*][A-Za-z0-9._:/@+*-]*$"


class ProfileSpec(_Spec):
    """Targets chosen instead of the route's when a request names this profile."""

    name: Annotated[str, Field(pattern=PROFILE_NAME_PATTERN, max_length=63)]
    targets: Annotated[list[TargetSpec], Field(min_length=1, max_length=32)]


class ModelRouteSpec(_Spec):
    """A public model name (plus aliases) and the ordered upstream targets that serve it."""

    model: Annotated[str, Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX_LENGTH)]
    aliases: Annotated[
        list[Annotated[str, Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX_LENGTH)]], Field(max_length=16)
    ] = Field(default_factory=list)
    model_patterns: Annotated[
        list[Annotated[str, Field(pattern=MODEL_PATTERN_PATTERN, max_length=MODEL_NAME_MAX_LENGTH)]],
        Field(alias="modelPatterns", max_length=16),
    ] = Field(default_factory=list)
    targets: Annotated[list[TargetSpec], Field(min_length=1, max_length=32)]
    profiles: Annotated[list[ProfileSpec], Field(max_length=16)] = Field(default_factory=list)
    strategy: StrategySpec | None = None
    retry: RetrySpec | None = None
    timeouts: TimeoutsSpec | None = None
    fallback_on: Annotated[list[FallbackTrigger], Field(alias="fallbackOn", max_length=8)] = Field(
        default=DEFAULT_FALLBACK_ON
    )
    require: RequireSpec | None = None
    circuit_breaker: Annotated[CircuitBreakerSpec | None, Field(alias="circuitBreaker")] = None
    faults: FaultsSpec | None = None

    @model_validator(mode="after")
    def _names_unique(self) -> ModelRouteSpec:
        names = [self.model, *self.aliases]
        if len(set(names)) != len(names):
            msg = "model and aliases must be distinct"
            raise ValueError(msg)
        if len(set(self.model_patterns)) != len(self.model_patterns):
            msg = "modelPatterns must be distinct"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _profiles_unique(self) -> ModelRouteSpec:
        names = [profile.name for profile in self.profiles]
        if len(set(names)) != len(names):
            msg = "profile names must be distinct"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _hedge_needs_delay(self) -> ModelRouteSpec:
        strategy = self.strategy
        if strategy is not None and (strategy.hedge_delay is not None) != (strategy.type is StrategyType.HEDGE):
            msg = "strategy.hedgeDelay is set exactly when strategy.type is hedge"
            raise ValueError(msg)
        return self

    def public_names(self) -> list[str]:
        """Every name a client may send to reach this route."""
        return [self.model, *self.aliases]


KIND_TO_SPEC: dict[str, type[BaseModel]] = {
    "ModelRoute": ModelRouteSpec,
    "ProviderCredential": ProviderCredentialSpec,
}


def parse_spec(kind: str, spec: Any) -> BaseModel:
    """Validate a raw ``spec`` mapping for ``kind``; raises pydantic's ValidationError."""
    return KIND_TO_SPEC[kind].model_validate(spec)
