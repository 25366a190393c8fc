"""Forward proxies: which one an upstream call goes through, as ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY`` say.

The usual semantics (curl's, Python's ``urllib``): the lowercase variable wins over the uppercase one;
``NO_PROXY`` is a comma (or space) separated list of host names, each matching the name itself and every name
under it (``example.com``, ``.example.com`` and ``*.example.com`` alike), IP addresses and CIDR blocks matching
IP literals in URLs (no name is resolved for it), an optional ``:port`` restricting an entry to that port, and
``*`` matching every host. A proxy is spoken to in HTTP (``http://``) or in HTTP over TLS (``https://``): https
upstreams through an HTTP CONNECT tunnel, plain http ones with the absolute-form request line.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import urllib.parse

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ForwardProxy:
    """An HTTP forward proxy; ``str()`` names it as ``scheme://host:port``, never with its user or password."""

    host: str
    port: int
    #: ``Proxy-Authorization`` for the URL's user and password (``Basic``, percent-decoded), or None.
    authorization: str | None = dataclasses.field(default=None, repr=False)
    #: Spoken to over TLS (an ``https://`` proxy), its certificate checked as an upstream's would be.
    tls: bool = False

    def __str__(self) -> str:
        return f"{'https' if self.tls else 'http'}://{_bracketed(self.host)}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> ForwardProxy:
        """A proxy URL (``http(s)://[user:password@]host[:port]``; a bare ``host:port`` means http).

        ``ValueError`` names what is wrong, never the URL's user or password.
        """
        text = url.strip()
        if "://" not in text:
            text = f"http://{text}"
        parts = urllib.parse.urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"only http:// and https:// forward proxies are supported, not {scheme}://")
        if not parts.hostname:
            raise ValueError("the proxy URL names no host")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError(f"the proxy URL's port is not a number from 0 to 65535 (host {parts.hostname})") from None
        authorization = None
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            authorization = f"Basic {token}"
        return cls(parts.hostname.lower().rstrip("."), port, authorization, tls=scheme == "https")


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    """One host-name entry of ``NO_PROXY``: the name and every name under it, on any port or one."""

    domain: str
    port: int | None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return host == self.domain or host.endswith(f".{self.domain}")


class NoProxy:
    """The hosts ``NO_PROXY`` sends directly (see the module's docstring for the matching rules)."""

    __slots__ = ("_everything", "_names", "_networks")

    def __init__(self, value: str = "") -> None:
        self._everything = False
        self._names: list[_Entry] = []
        self._networks: list[tuple[IPNetwork, int | None]] = []
        for raw in value.replace(",", " ").split():
            self._add(raw.lower())

    def _add(self, entry: str) -> None:
        if entry == "*":
            self._everything = True
            return
        host, port = _split_port(entry)
        try:
            self._networks.append((ipaddress.ip_network(host, strict=False), port))
            return
        except ValueError:
            pass
        domain = host.removeprefix("*").lstrip(".").rstrip(".")
        if domain:
            self._names.append(_Entry(domain, port))

    def __bool__(self) -> bool:
        return self._everything or bool(self._names or self._networks)

    def matches(self, host: str, port: int) -> bool:
        """Whether a call to ``host`` (as in its URL, IPv6 without brackets) on ``port`` goes direct."""
        if self._everything:
            return True
        host = host.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return any(entry.matches(host, port) for entry in self._names)
        return any(address in network and (only is None or only == port) for network, only in self._networks) or any(
            entry.matches(host, port) for entry in self._names
        )


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``[v6]``, a bare IPv6 address or CIDR, or a host alone."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, _port(rest.removeprefix(":"))
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, _port(port)
    return entry, None


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() else None


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyChoice:
    """Which proxy a call to an origin goes through: per scheme, except for the hosts of ``no_proxy``."""

    https: ForwardProxy | None = None
    http: ForwardProxy | None = None
    no_proxy: NoProxy = dataclasses.field(default_factory=NoProxy)

    def proxy_for(self, scheme: str, host: str, port: int) -> ForwardProxy | None:
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self.no_proxy.matches(host, port):
            return None
        return proxy

    @classmethod
    def always(cls, proxy: ForwardProxy) -> ProxyChoice:
        """Every call through ``proxy`` (a credential's own proxy: ``NO_PROXY`` is the gateway's, not its)."""
        return cls(https=proxy, http=proxy)

    @classmethod
    def from_values(cls, *, https_proxy: str = "", http_proxy: str = "", no_proxy: str = "") -> ProxyChoice:
        """The gateway's choice from ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY``'s values.

        ``ValueError`` names the variable that holds an unusable URL (never its password).
        """
        proxies: dict[str, ForwardProxy | None] = {}
        for name, value in (("HTTPS_PROXY", https_proxy), ("HTTP_PROXY", http_proxy)):
            try:
                proxies[name] = ForwardProxy.parse(value) if value.strip() else None
            except ValueError as exc:
                raise ValueError(f"{name} is not a usable proxy URL: {exc}") from None
        return cls(proxies["HTTPS_PROXY"], proxies["HTTP_PROXY"], NoProxy(no_proxy))


#: Every call direct (a credential's ``direct: true``, or a gateway without proxy variables).
DIRECT = ProxyChoice()
