"""The cloud SDKs load only in a process that serves a credential needing them."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from modelyard_proxy.table.store import TableStore
import modelyard_proxy.api.app
{load}
sdks = ("google.auth", "google.oauth2", "botocore.session", "botocore.credentials", "requests")
print(sorted(name for name in sdks if name in sys.modules))
"""

SERVE_BEDROCK = """
from modelyard_routing.table import Credential
from modelyard_proxy.cloudauth import Authorizers
Authorizers().for_credential(
    Credential(id="a/b", provider="bedrock", base_url="http://x", region="us-east-1", api_key="k")
)
"""


def loaded(load: str = "") -> str:
    probe = PROBE.format(load=load)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return result.stdout.strip()


def test_a_gateway_without_bedrock_or_vertex_credentials_never_loads_botocore_or_google_auth() -> None:
    """botocore's session and google-auth cost a process about 15 MB and 0.4 s of start-up."""
    assert loaded() == "[]"


def test_a_bedrock_credential_loads_botocore_when_its_authoriser_is_made() -> None:
    assert "botocore.credentials" in loaded(SERVE_BEDROCK)
