"""The two AWS endpoints a pod without static keys gets its keys from: STS ``AssumeRoleWithWebIdentity`` (IRSA) and
the EKS Pod Identity agent. Both hand out temporary keys and put them in the keyring, so Bedrock calls signed with
them verify, until they expire.

botocore reaches them through ``AWS_ENDPOINT_URL_STS=<simulator>/`` and
``AWS_CONTAINER_CREDENTIALS_FULL_URI=<simulator>/v1/credentials`` (plain http is allowed to a loopback address).
Tokens are checked against the issuer's sets (real AWS verifies the projected service-account JWT); wrong or
missing ones are refused with AWS's own status, code and wording. ``IdentityIssuer.lifetime`` is how long issued
keys live: tests shorten it to see refreshes.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import string
import uuid
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import orjson
from aiohttp import web

from modelyard_simulator.aws_keys import AwsKeyring, IssuedKey

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
ACCOUNT_ID = "123456789012"
#: The tokens the simulated STS and Pod Identity agent accept unless a test says otherwise (``modelyard simulate``
#: users write these into the token files their gateway reads).
WEB_IDENTITY_TOKEN = "simulator-irsa-service-account-token"  # noqa: S105 - a well-known test token
POD_IDENTITY_TOKEN = "simulator-eks-pod-identity-token"  # noqa: S105 - a well-known test token

_ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclasses.dataclass(frozen=True, slots=True)
class TemporaryKey:
    """Keys as STS and the Pod Identity agent hand them out."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


@dataclasses.dataclass(slots=True)
class IdentityIssuer:
    """What the simulated STS and Pod Identity agent accept, how long the keys they issue live, and the keyring
    they put them in (the one Bedrock checks signatures against)."""

    keyring: AwsKeyring
    web_identity_tokens: set[str] = dataclasses.field(default_factory=lambda: {WEB_IDENTITY_TOKEN})
    pod_identity_tokens: set[str] = dataclasses.field(default_factory=lambda: {POD_IDENTITY_TOKEN})
    lifetime: timedelta = timedelta(hours=1)
    #: How many keys were handed out so far.
    issued: int = 0

    def issue(self) -> TemporaryKey:
        """New temporary keys, accepted by the keyring until they expire: in whole seconds, as AWS sends them,
        rounded up so that they never live less than ``lifetime``."""
        expiration = datetime.now(UTC) + self.lifetime
        if expiration.microsecond:
            expiration = expiration.replace(microsecond=0) + timedelta(seconds=1)
        key = TemporaryKey(
            access_key_id="ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
            secret_access_key=secrets.token_urlsafe(30)[:40],
            session_token=secrets.token_urlsafe(120),
            expiration=expiration,
        )
        issued = IssuedKey(key.secret_access_key, key.session_token, key.expiration.timestamp())
        self.keyring.add(key.access_key_id, issued)
        self.issued += 1
        return key


AWS_IDENTITY = web.AppKey("modelyard_simulator.aws_identity", IdentityIssuer)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- STS ------------------------------------------------------------------------------------------------------------


def _sts_error(status: int, code: str, message: str) -> web.Response:
    """STS's query-protocol error document."""
    root = ET.Element("ErrorResponse", xmlns=STS_NAMESPACE)
    error = ET.SubElement(root, "Error")
    ET.SubElement(error, "Type").text = "Sender" if status < 500 else "Receiver"
    ET.SubElement(error, "Code").text = code
    ET.SubElement(error, "Message").text = message
    ET.SubElement(root, "RequestId").text = str(uuid.uuid4())
    return web.Response(status=status, body=ET.tostring(root, xml_declaration=False), content_type="text/xml")


def _child(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


async def sts(request: web.Request) -> web.Response:
    """``POST /`` with ``Action=AssumeRoleWithWebIdentity``: temporary keys for a trusted web identity token."""
    form = await request.post()
    action = str(form.get("Action", ""))
    if action != "AssumeRoleWithWebIdentity":
        return _sts_error(400, "InvalidAction", f"Could not find operation {action} for version 2011-06-15")
    role_arn, token = str(form.get("RoleArn", "")), str(form.get("WebIdentityToken", ""))
    session_name = str(form.get("RoleSessionName", ""))
    for field, value in (("roleArn", role_arn), ("roleSessionName", session_name), ("webIdentityToken", token)):
        if not value:
            return _sts_error(
                400,
                "ValidationError",
                f"1 validation error detected: Value null at '{field}' failed to satisfy constraint: "
                "Member must not be null",
            )
    role = _ROLE_ARN.fullmatch(role_arn)
    if role is None:
        return _sts_error(400, "ValidationError", f"{role_arn} is invalid")
    if not _SESSION_NAME.fullmatch(session_name):
        return _sts_error(
            400,
            "ValidationError",
            "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        )
    issuer = request.app[AWS_IDENTITY]
    if token not in issuer.web_identity_tokens:
        return _sts_error(
            400,
            "InvalidIdentityToken",
            "The web identity token that was passed could not be validated by AWS. "
            "Get a new identity token from the identity provider and then retry the request.",
        )
    key = issuer.issue()
    account, role_name = role.group(1), role.group(2)
    root = ET.Element("AssumeRoleWithWebIdentityResponse", xmlns=STS_NAMESPACE)
    result = _child(root, "AssumeRoleWithWebIdentityResult")
    _child(result, "SubjectFromWebIdentityToken", "system:serviceaccount:modelyard:modelyard-proxy")
    _child(result, "Audience", "sts.amazonaws.com")
    user = _child(result, "AssumedRoleUser")
    _child(user, "Arn", f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}")
    _child(user, "AssumedRoleId", f"AROA{key.access_key_id[4:]}:{session_name}")
    credentials = _child(result, "Credentials")
    _child(credentials, "AccessKeyId", key.access_key_id)
    _child(credentials, "SecretAccessKey", key.secret_access_key)
    _child(credentials, "SessionToken", key.session_token)
    _child(credentials, "Expiration", _iso(key.expiration))
    _child(result, "Provider", "oidc.eks.us-east-1.amazonaws.com/id/SIMULATOR")
    _child(_child(root, "ResponseMetadata"), "RequestId", str(uuid.uuid4()))
    return web.Response(body=ET.tostring(root, xml_declaration=False), content_type="text/xml")


# -- EKS Pod Identity agent -----------------------------------------------------------------------------------------


async def pod_identity_credentials(request: web.Request) -> web.Response:
    """``GET /v1/credentials`` with the projected token as ``Authorization``, as the node's agent serves it."""
    token = request.headers.get("Authorization", "")
    if not token:
        return web.Response(status=400, text="Service account token cannot be empty\n")
    issuer = request.app[AWS_IDENTITY]
    if token not in issuer.pod_identity_tokens:
        return web.Response(
            status=400,
            text=f"[{uuid.uuid4()}]: (InvalidTokenException): The specified Kubernetes service account token is "
            "invalid., fault: client\n",
        )
    key = issuer.issue()
    body = {
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret_access_key,
        "Token": key.session_token,
        "AccountId": ACCOUNT_ID,
        "Expiration": _iso(key.expiration),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_routes(app: web.Application, keyring: AwsKeyring) -> None:
    """Serve STS at ``/`` and the Pod Identity agent at ``/v1/credentials``, issuing keys into ``keyring``.

    ``app[AWS_IDENTITY]`` stays mutable: tests change the tokens it accepts and the lifetime of its keys.
    """
    app[AWS_IDENTITY] = IdentityIssuer(keyring)
    app.router.add_post("/", sts)
    app.router.add_get("/v1/credentials", pod_identity_credentials)
