"""TLS contexts for upstream calls: the system's trust store plus extra CAs, and a client certificate for mTLS.

A context is expensive (the system store is parsed each time), so one is built per egress setting, never per
request. ``ssl`` loads a certificate chain only from a file: the key and chain are written to an anonymous
in-memory file (``memfd_create``, Linux) that no other process can open and that is gone once closed; where
that is missing, to a private 0600 temporary file removed as soon as it is loaded.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path


class TLSSettingsError(ValueError):
    """A CA bundle or client certificate that cannot be used (the message quotes none of it)."""


def context(
    *,
    ca_files: Sequence[Path] = (),
    ca_pem: str | None = None,
    client_certificate: str | None = None,
    client_key: str | None = None,
) -> ssl.SSLContext:
    """A verifying client context trusting the system's store, ``ca_files`` and ``ca_pem`` (PEM certificates),
    presenting ``client_certificate`` (PEM chain, leaf first) with ``client_key`` (PEM, unencrypted) if given."""
    tls = ssl.create_default_context()
    for path in ca_files:
        try:
            tls.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise TLSSettingsError(f"the CA bundle {path} holds no usable PEM certificate ({_reason(exc)})") from None
    if ca_pem is not None:
        try:
            tls.load_verify_locations(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise TLSSettingsError(f"the CA bundle holds no usable PEM certificate ({_reason(exc)})") from None
    if client_certificate is not None or client_key is not None:
        if not (client_certificate and client_key):
            raise TLSSettingsError("a client certificate needs both its certificate and its key")
        _load_client_certificate(tls, client_certificate, client_key)
    return tls


def _reason(exc: BaseException) -> str:
    """What went wrong, without the data (``ssl`` errors carry OpenSSL's reason code, not the input)."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _refuse_password() -> bytes:
    raise TLSSettingsError("the client key is encrypted: give it unencrypted (the Secret protects it)")


def _load_client_certificate(tls: ssl.SSLContext, certificate: str, key: str) -> None:
    pem = f"{key.strip()}\n{certificate.strip()}\n".encode()
    try:
        with _private_file(pem) as path:
            tls.load_cert_chain(path, password=_refuse_password)
    except ssl.SSLError as exc:
        raise TLSSettingsError(f"the client certificate and key cannot be loaded together ({_reason(exc)})") from None


@contextlib.contextmanager
def _private_file(data: bytes) -> Iterator[str]:
    """A path from which ``data`` can be read by this process only, for as long as the block runs."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("modelyard-client-certificate", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(prefix="modelyard-", suffix=".pem")  # created 0600
    try:
        _write_all(fd, data)
        os.close(fd)
        fd = -1
        yield path
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
