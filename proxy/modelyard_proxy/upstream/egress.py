"""Egress settings: how upstream calls leave the gateway (which forward proxy, which CAs, which client certificate).

The gateway has one, from its environment (``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``, ``MODELYARD_CA_BUNDLE``);
a credential with egress settings of its own gets another, derived from it once per distinct setting. Each
keeps the parsed form of the URLs it was asked for and one pool key per origin, so the request path costs a
dictionary lookup, whatever the settings.
"""

from __future__ import annotations

import ssl
import weakref
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TypeVar

from modelyard_proxy.upstream import tls
from modelyard_proxy.upstream.errors import InvalidEgress
from modelyard_proxy.upstream.proxies import DIRECT, ForwardProxy, ProxyChoice
from modelyard_proxy.upstream.target import PoolKey, Target

#: Distinct upstream URLs whose parsed form is kept (a handful per credential); past it the cache restarts.
MAX_CACHED_URLS = 4096

Owner = TypeVar("Owner")


class EgressSettings:
    """One way out: the proxy choice, and the TLS context https origins are verified with (built at first use)."""

    __slots__ = ("__weakref__", "_make_tls", "_pools", "_targets", "_tls", "ca_files", "proxies")

    def __init__(
        self,
        proxies: ProxyChoice = DIRECT,
        *,
        ca_files: Sequence[Path] = (),
        tls_context: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.proxies = proxies
        #: PEM files trusted on top of the system's store (the gateway's ``MODELYARD_CA_BUNDLE``).
        self.ca_files = tuple(ca_files)
        self._tls = tls_context if isinstance(tls_context, ssl.SSLContext) else None
        self._make_tls = tls_context if callable(tls_context) else self._default_tls
        self._targets: dict[str, Target] = {}
        self._pools: dict[tuple[str, str, int], PoolKey] = {}

    @classmethod
    def gateway(
        cls, *, https_proxy: str = "", http_proxy: str = "", no_proxy: str = "", ca_bundle: Path | None = None
    ) -> EgressSettings:
        """The gateway-wide settings; an unusable proxy URL or CA bundle is a ``ValueError`` at startup, naming it
        (never a password)."""
        proxies = ProxyChoice.from_values(https_proxy=https_proxy, http_proxy=http_proxy, no_proxy=no_proxy)
        settings = cls(proxies, ca_files=(ca_bundle,) if ca_bundle else ())
        if ca_bundle is not None:
            settings.tls_context()  # a missing or broken bundle fails here, not at the first call
        return settings

    def derive(
        self,
        *,
        proxy_url: str | None = None,
        direct: bool = False,
        ca_pem: str | None = None,
        client_certificate: str | None = None,
        client_key: str | None = None,
    ) -> EgressSettings:
        """Settings of one credential: its own proxy (or none: ``direct``), else these; its CA bundle trusted on
        top of these ones' CAs; its client certificate presented. ``InvalidEgress`` says what cannot be used."""
        proxies = self.proxies
        if proxy_url:
            try:
                proxies = ProxyChoice.always(ForwardProxy.parse(proxy_url))
            except ValueError as exc:
                raise InvalidEgress(f"its proxy URL cannot be used: {exc}") from None
        elif direct:
            proxies = DIRECT
        if ca_pem is None and client_certificate is None and client_key is None:
            return EgressSettings(proxies, ca_files=self.ca_files, tls_context=self.tls_context)
        try:
            context = tls.context(
                ca_files=self.ca_files, ca_pem=ca_pem, client_certificate=client_certificate, client_key=client_key
            )
        except tls.TLSSettingsError as exc:
            raise InvalidEgress(str(exc)) from None
        return EgressSettings(proxies, ca_files=self.ca_files, tls_context=context)

    # -- what a request asks for -----------------------------------------------------------------------------

    def target(self, url: str) -> Target:
        """``url`` parsed, with the way to its origin (``InvalidRequest`` if it is not an http(s) URL)."""
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) >= MAX_CACHED_URLS:
                self._targets.clear()
            target = self._targets[url] = Target(url, self)
        return target

    def proxy_for(self, scheme: str, host: str, port: int) -> ForwardProxy | None:
        return self.proxies.proxy_for(scheme, host, port)

    def tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = self._make_tls()
        return self._tls

    def pool_key(self, scheme: str, host: str, port: int, proxy: ForwardProxy | None) -> PoolKey:
        """The one key of an origin under these settings."""
        key = self._pools.get((scheme, host, port))
        if key is None:
            via = f" via {proxy}" if proxy is not None else ""
            key = self._pools[scheme, host, port] = PoolKey(f"{scheme}://{host}:{port}{via}")
        return key

    def _default_tls(self) -> ssl.SSLContext:
        try:
            return tls.context(ca_files=self.ca_files)
        except tls.TLSSettingsError as exc:
            raise ValueError(f"MODELYARD_CA_BUNDLE cannot be used: {exc}") from None


class EgressCache:
    """Egress settings derived from ``base`` for owner objects (credentials), built once per distinct setting.

    Looked up by the owner object first (no hashing on the request path), then by the value of its setting:
    a new routing table brings new credential objects, and one whose egress is unchanged keeps the settings it
    had, with their TLS context and pooled connections, while a rotated Secret (a changed value) gets new ones.
    Settings that cannot be built are remembered per owner object, so a broken credential costs one attempt to
    build them, not one per request. Entries go with their owners.
    """

    __slots__ = ("_by_owner", "_by_value", "base")

    def __init__(self, base: EgressSettings) -> None:
        self.base = base
        self._by_owner: dict[int, EgressSettings | InvalidEgress] = {}
        self._by_value: weakref.WeakValueDictionary[Hashable, EgressSettings] = weakref.WeakValueDictionary()

    def get(
        self, owner: Owner, value: Hashable, build: Callable[[EgressSettings, Owner], EgressSettings]
    ) -> EgressSettings:
        """The settings for ``owner``, whose egress setting is ``value``: ``build(base, owner)`` made them for it or
        for an owner with an equal ``value`` (``InvalidEgress`` if they cannot be made)."""
        entry = self._by_owner.get(id(owner))
        if entry is None:
            entry = self._by_value.get(value)
            if entry is None:
                try:
                    entry = self._by_value[value] = build(self.base, owner)
                except InvalidEgress as exc:
                    entry = exc
            self._by_owner[id(owner)] = entry
            weakref.finalize(owner, self._by_owner.pop, id(owner), None)
        if isinstance(entry, InvalidEgress):
            raise InvalidEgress(str(entry))
        return entry

    def __len__(self) -> int:
        return len(self._by_owner)
