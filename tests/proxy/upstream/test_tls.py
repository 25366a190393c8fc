"""https upstreams: the default context verifies certificates against the system's trust store."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.proxy.upstream.scripted import ClientFactory, Upstream, answering, response

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - the openssl CLI stands in
    HAVE_CRYPTOGRAPHY = False
else:
    HAVE_CRYPTOGRAPHY = True


def _with_cryptography(cert: Path, key: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _with_openssl(openssl: str, cert: Path, key: Path) -> None:
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    if HAVE_CRYPTOGRAPHY:
        _with_cryptography(cert, key)
    elif openssl := shutil.which("openssl"):
        _with_openssl(openssl, cert, key)
    else:
        pytest.skip("neither the cryptography package nor the openssl CLI is available to make a certificate")
    return cert, key


@pytest.fixture
async def tls_upstream(certificate: tuple[Path, Path]) -> AsyncIterator[Upstream]:
    """A keep-alive https server answering ``ok``, presenting the self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = await Upstream(answering(lambda _: response()), tls=context).start()
    yield server
    await server.close()


async def test_self_signed_certificate_is_refused(tls_upstream: Upstream, clients: ClientFactory) -> None:
    """The default context verifies the chain: a self-signed certificate fails with an ssl error (an OSError)."""
    client = clients(limit=1)
    with pytest.raises(ssl.SSLCertVerificationError) as failure:
        await client.request("GET", tls_upstream.url(), {}, b"", connect_timeout=5.0, read_timeout=5.0)
    assert isinstance(failure.value, OSError)
    assert client.in_use == 0
    assert tls_upstream.requests == []


async def test_certificate_in_the_trust_store_is_accepted(
    tls_upstream: Upstream, clients: ClientFactory, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trusted through the system store (``SSL_CERT_FILE``), the server's certificate and address check out:
    requests succeed over TLS and share one keep-alive connection."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    client = clients()
    for _ in range(2):
        answer = await client.request("GET", tls_upstream.url("/x"), {}, b"", connect_timeout=5.0, read_timeout=5.0)
        assert (answer.status, await answer.read()) == (200, b"ok")
    assert tls_upstream.accepted == 1
    assert client.idle_connections() == 1
