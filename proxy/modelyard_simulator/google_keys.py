"""Throwaway Google service-account keys, for trying out Vertex AI against the simulator: its token endpoint
verifies their JWTs against the public certificate it is given (:meth:`ServiceAccountKey.trusted_by`)."""

from __future__ import annotations

import dataclasses
import datetime
from typing import cast

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.oauth2 import service_account

from modelyard_simulator.google_auth import CLOUD_PLATFORM, GoogleAuthority

#: The Google Cloud project the keys belong to.
PROJECT = "modelyard-test"


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """A key file's content and the certificate Google would publish for it."""

    email: str
    info: dict[str, str]
    certificate: str

    @property
    def json(self) -> str:
        """The key file, as a Secret holds it."""
        return orjson.dumps(self.info).decode()

    def credentials(self) -> service_account.Credentials:
        """google-auth's credentials for the key, not yet refreshed."""
        made = service_account.Credentials.from_service_account_info(self.info, scopes=[CLOUD_PLATFORM])  # type: ignore[no-untyped-call]
        return cast("service_account.Credentials", made)

    def trusted_by(self, authority: GoogleAuthority) -> ServiceAccountKey:
        """Register the certificate with a simulator's token endpoint; returns the key."""
        authority.trust(self.email, self.certificate)
        return self


def service_account_key(token_uri: str, name: str = "vertex-gateway") -> ServiceAccountKey:
    """A fresh RSA key for ``name``'s service account, its tokens to be had at ``token_uri``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = f"{name}@{PROJECT}.iam.gserviceaccount.com"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, email)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": f"{name}-key-1",
        "private_key": pem,
        "client_email": email,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    return ServiceAccountKey(email, info, certificate.public_bytes(serialization.Encoding.PEM).decode())
