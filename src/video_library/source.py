"""Where a provider's video may be fetched from: never from our own network (``download`` does the fetching).

The policy (``SourcePolicy``), before the first byte:

- the URL parses (with httpx's parser, the one that makes the request; an authority must be plain ASCII, so an
  IDN host is written in its ``xn--`` form), is ``https`` on port 443, carries no credentials, and its host is a
  valid host name in ``ALLOWED_SOURCE_HOSTS`` (exact, or a ``.suffix``);
- every address the host resolves to is globally routable unicast (:func:`is_public_address`). This check runs
  inside the connection itself (``download``'s guarded connect), on the very addresses the socket may connect
  to, so DNS rebinding between check and connect cannot slip through;
- redirects are followed by hand, each hop checked again;
- the one exception is local development: a ``host:port`` in ``DEV_INSECURE_SOURCE_HOSTS`` may be fetched over
  http or https, on exactly that port, without the address check (the settings refuse it on AWS Lambda).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import httpx

from video_library.errors import SourceNotAllowed, SourceUnavailable
from video_library.settings import HostPort, Settings

HTTPS_PORT = 443
_DEFAULT_PORTS = {"https": 443, "http": 80}

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], list[str]]

# An explicit table rather than ``ipaddress``'s ``is_global``: that property has changed across Python versions
# (the runtime is 3.12/3.13, this machine 3.11) and judges none of the IPv6 forms that carry an IPv4 address.
# Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries (tests/data/iana_special_purpose.csv
# holds them and the tests check every entry), the IPv4 multicast space, and RFC 4291's global unicast range.

# Every IPv4 special-purpose block is refused, the few the registry marks globally reachable too (anycast service
# addresses, AS112, AMT relays): no provider serves files from them.
_REFUSED_IPV4 = tuple(
    IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private use
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link local, where cloud metadata services live (169.254.169.254)
        "172.16.0.0/12",  # private use
        "192.0.0.0/24",  # IETF protocol assignments (DS-Lite, NAT64 discovery, PCP and TURN anycast, ...)
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.31.196.0/24",  # AS112-v4
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # deprecated 6to4 relay anycast, 6a44 relay
        "192.168.0.0/16",  # private use
        "192.175.48.0/24",  # AS112 direct delegation
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, including the limited broadcast 255.255.255.255
    )
)

# IPv6 forms that stand for IPv4 addresses: judged by the IPv4 addresses they carry.
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")  # RFC 4291
_IPV4_TRANSLATED = IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
_IPV4_COMPATIBLE = IPv6Network("::/96")  # RFC 4291, deprecated; also holds :: and ::1
_NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")  # RFC 6052
_SIX_TO_FOUR = IPv6Network("2002::/16")  # RFC 3056: the IPv4 address in bits 16-47
_TEREDO = IPv6Network("2001::/32")  # RFC 4380: server in bits 32-63, client (inverted) in the last 32
_LAST_32_BITS = (_IPV4_MAPPED, _IPV4_TRANSLATED, _IPV4_COMPATIBLE, _NAT64_WELL_KNOWN)

# Everything else must be global unicast, the only block IANA allocates from (RFC 4291 2.4). That alone refuses
# the local-use NAT64 prefix 64:ff9b:1::/48 (its layout is the network's own, so it is never judged), 100::/64
# and 100:0:0:1::/64 (discard, dummy), 5f00::/16 (SRv6), fc00::/7 (unique local), fe80::/10 (link local),
# fec0::/10 (site local), ff00::/8 (multicast) and whatever is still unassigned.
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_REFUSED_IPV6 = tuple(
    IPv6Network(block)
    for block in (
        "2001::/23",  # IETF protocol assignments: benchmarking, ORCHID, anycast services (Teredo is judged above)
        "2001:db8::/32",  # documentation
        "2620:4f:8000::/48",  # AS112 direct delegation
        "3fff::/20",  # documentation
    )
)


def embedded_ipv4(address: IPv6Address) -> tuple[IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address stands for (two for Teredo: server and client); () if none."""
    value = int(address)
    if any(address in form for form in _LAST_32_BITS):
        return (IPv4Address(value & 0xFFFFFFFF),)
    if address in _SIX_TO_FOUR:
        return (IPv4Address((value >> 80) & 0xFFFFFFFF),)
    if address in _TEREDO:
        return IPv4Address((value >> 64) & 0xFFFFFFFF), IPv4Address(~value & 0xFFFFFFFF)
    return ()


def is_public_address(address: str | IPAddress) -> bool:
    """True only for globally routable unicast addresses; False for anything else, or for what is no address."""
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
    if isinstance(address, IPv4Address):
        return not any(address in block for block in _REFUSED_IPV4)
    if carried := embedded_ipv4(address):
        return all(is_public_address(ipv4) for ipv4 in carried)
    return address in _GLOBAL_UNICAST and not any(address in block for block in _REFUSED_IPV6)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver; tests replace it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SourceUnavailable(f"the source host {host!r} does not resolve") from exc
    except UnicodeError as exc:  # the idna codec refuses it (an empty or overlong label)
        raise SourceNotAllowed("the video host is not a valid host name", host=host) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A last label that is a number makes a host some resolvers read as an IPv4 address (127.1, 0x7f000001).
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    """One spelling per host: lower case, no trailing dot or brackets, IPv6 compressed."""
    host = host.lower().strip("[]").removesuffix(".")
    literal = _ip_literal(host)
    return str(literal) if literal is not None else host


def _is_valid_host(host: str) -> bool:
    if _ip_literal(host) is not None:
        return True
    labels = host.split(".")
    return (
        len(host) <= 253
        and all(_HOST_LABEL.fullmatch(label) for label in labels)
        and not _NUMERIC_LABEL.fullmatch(labels[-1])
    )


# The authority of a URL written with one: [scheme:]//authority.
_AUTHORITY = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//(?P<authority>[^/?#]*)")
_PORT_TEXT = re.compile(r"(?::[0-9]*)?")


def _plain_authority(url: str) -> bool:
    """False when the authority holds anything but ASCII, or a port not written in ASCII digits.

    httpx reads a port with ``int()``, which takes fullwidth digits, signs, spaces and underscores (``:+443``,
    ``: 443``). Such text is refused rather than normalised, so no other reader of the same URL can take it for
    another port or host.
    """
    match = _AUTHORITY.match(url)
    if match is None:
        return True
    authority = match["authority"]
    if not authority.isascii():
        return False
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        port_text = host_port.partition("]")[2]
    else:
        _, colon, port = host_port.partition(":")
        port_text = colon + port
    return _PORT_TEXT.fullmatch(port_text) is not None


def _parse_url(url: str | httpx.URL) -> tuple[httpx.URL, str, int | None]:
    """The URL, its normalised host and its port (explicit or the scheme's); SourceNotAllowed if it does not parse."""
    try:
        if isinstance(url, str) and not _plain_authority(url):
            raise ValueError("not a plain authority")
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        host = _normal_host(parsed.raw_host.decode("ascii"))
    except (httpx.InvalidURL, ValueError, TypeError):
        raise SourceNotAllowed("the video URL cannot be parsed") from None
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS.get(parsed.scheme)
    return parsed, host, port


@dataclass(frozen=True)
class SourcePolicy:
    """Where videos may be fetched from."""

    allowed_hosts: tuple[str, ...]
    dev_hosts: tuple[HostPort, ...] = ()
    resolver: Resolver | None = field(default=None, compare=False)  # None: the system resolver

    @classmethod
    def from_settings(cls, settings: Settings) -> SourcePolicy:
        return cls(settings.allowed_source_hosts, settings.dev_insecure_source_hosts)

    def is_dev_host(self, host: str, port: int | None) -> bool:
        """True for exactly a ``host:port`` of ``DEV_INSECURE_SOURCE_HOSTS``."""
        return port is not None and HostPort(_normal_host(host), port) in self.dev_hosts

    def host_allowed(self, host: str) -> bool:
        """True when ``host`` is in ``ALLOWED_SOURCE_HOSTS`` (exactly, or under a ``.suffix`` rule)."""
        host = _normal_host(host)
        for rule in self.allowed_hosts:
            if rule.startswith("."):
                if host.endswith(rule.lower()) or host == rule[1:].lower():
                    return True
            elif host == _normal_host(rule):
                return True
        return False

    def allows_plain_http(self, url: str | httpx.URL) -> bool:
        """True only when the URL's host and port (explicit or default) are a development source."""
        try:
            _, host, port = _parse_url(url)
        except SourceNotAllowed:
            return False
        return self.is_dev_host(host, port)

    def check_source_url(self, url: str | httpx.URL) -> httpx.URL:
        """The parsed URL, if the policy allows it by itself (scheme, host, port, credentials, a literal address);
        SourceNotAllowed otherwise, whatever the input. The resolved addresses are checked when connecting."""
        target, host, port = _parse_url(url)
        if target.scheme not in _DEFAULT_PORTS:
            raise SourceNotAllowed("the video URL is not an http(s) URL")
        if not host:
            raise SourceNotAllowed("the video URL has no host")
        if target.userinfo:
            raise SourceNotAllowed("the video URL must not carry credentials")
        if not _is_valid_host(host):
            raise SourceNotAllowed("the video host is not a valid host name")
        if self.is_dev_host(host, port):
            return target
        if target.scheme != "https":
            raise SourceNotAllowed("the video URL must use https", host=host)
        if port != HTTPS_PORT:
            raise SourceNotAllowed(f"the video URL must use port {HTTPS_PORT}", host=host, port=port)
        if not self.host_allowed(host):
            raise SourceNotAllowed("the video host is not an allowed source", host=host)
        if _ip_literal(host) is not None and not is_public_address(host):
            raise SourceNotAllowed("the video host is a non-public address", host=host)
        return target

    def vetted_addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, in order, once every address ``host`` resolves to is known to be public
        (a development source is resolved but not judged)."""
        development = self.is_dev_host(host, port)
        if not development and (port != HTTPS_PORT or not self.host_allowed(host)):
            raise SourceNotAllowed("the video host or port is not an allowed source", host=host)
        literal = _ip_literal(_normal_host(host))
        addresses = [str(literal)] if literal is not None else (self.resolver or resolve_host)(host, port)
        if not addresses:
            raise SourceUnavailable(f"the source host {host!r} does not resolve")
        if not development and not all(is_public_address(address) for address in addresses):
            raise SourceNotAllowed("the video host resolves to a non-public address", host=host)
        return addresses


# Box types a QuickTime file may open with when it has no ftyp box.
_QUICKTIME_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def sniff_video_type(head: bytes) -> str | None:
    """The video type announced by a file's first bytes (MP4, QuickTime or WebM/Matroska), else None."""
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_BOXES:
        return "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def sniff_image_type(head: bytes) -> str | None:
    """The raster image type a file's first 12 bytes announce (JPEG, PNG, WebP, GIF), else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect's ``Location`` leads from ``current``; SourceNotAllowed when it cannot be parsed."""
    try:
        if not _plain_authority(location):
            raise ValueError("not a plain authority")
        return current.join(location)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise SourceNotAllowed("the source redirected to a URL that cannot be parsed") from None
