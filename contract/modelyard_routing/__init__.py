"""The contract shared by the control plane and the data plane: specs, routing table, and compiler.

Depends only on pydantic, PyYAML and orjson, so either side can import it without pulling in the other.
"""

from modelyard_routing.compiler import CompileResult, compile_inventory
from modelyard_routing.conditions import Condition
from modelyard_routing.manifests import (
    Inventory,
    Manifest,
    ManifestError,
    ObjectRef,
    SecretData,
    load_documents,
)
from modelyard_routing.specs import ModelRouteSpec, Provider, ProviderCredentialSpec
from modelyard_routing.table import (
    SCHEMA_VERSION,
    Credential,
    IncompatibleTableError,
    InvalidTableError,
    Policy,
    Profile,
    Route,
    RoutingTable,
    Target,
    hash_api_key,
)

__all__ = [
    "SCHEMA_VERSION",
    "CompileResult",
    "Condition",
    "Credential",
    "IncompatibleTableError",
    "InvalidTableError",
    "Inventory",
    "Manifest",
    "ManifestError",
    "ModelRouteSpec",
    "ObjectRef",
    "Policy",
    "Profile",
    "Provider",
    "ProviderCredentialSpec",
    "Route",
    "RoutingTable",
    "SecretData",
    "Target",
    "compile_inventory",
    "hash_api_key",
    "load_documents",
]
