"""Which addresses a fetch may connect to: the SSRF rules, pure functions, no I/O.

A host is judged by the addresses it resolves to, never by its spelling: the URL's host is
either an IP literal (in any spelling the C library or a browser accepts) or a name that the
resolver turns into addresses, and every one of them must pass `classify`. The caller then
connects to exactly the address that passed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from servers.fetch.errors import Rule

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, OpenStack instance metadata
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "169.254.169.253",  # AWS VPC DNS
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
    )
)
METADATA_HOSTS: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)

_PRIVATE: Final = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
"""RFC 1918, carrier-grade NAT (RFC 6598) and IPv6 unique-local: somebody's internal network."""

_THIS_NETWORK: Final = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST: Final = ipaddress.ip_address("255.255.255.255")
_SPECIAL: Final = tuple(
    ipaddress.ip_network(n) for n in ("192.0.0.0/24", "198.18.0.0/15", "2001::/23", "64:ff9b:1::/48")
)
"""Special-purpose ranges (RFC 6890) that Python's `is_global` does not cover in every version."""
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.ip_network("::/96")
_IPV4_PART: Final = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_ENDS_IN_NUMBER: Final = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any spelling `inet_aton` and the WHATWG URL parser accept, or None.

    `2130706433`, `0x7f000001`, `0177.0.0.1`, `0x7f.1`, `127.1`, `127.0.0.1.` are all
    127.0.0.1. Raises ValueError for a host that looks numeric but is not a valid address
    (`1.2.3.256`, `09.1.1.1`): browsers reject those, and a resolver might not.
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not parts or not _ENDS_IN_NUMBER.fullmatch(parts[-1]):
        return None
    if len(parts) > 4 or not all(_IPV4_PART.fullmatch(p) for p in parts):
        raise ValueError(f"{host!r} looks like an IPv4 address but is not one")
    numbers = [_ipv4_number(p) for p in parts]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r}: IPv4 part out of range")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host spells, or None for a name. `host` is without brackets."""
    if ":" in host:
        if "%" in host:
            raise ValueError(f"{host!r}: IPv6 zone identifiers are not accepted")
        return ipaddress.IPv6Address(host)
    return parse_ipv4(host)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches or carries: mapped, compatible, NAT64, 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> tuple[Rule, str] | None:
    """The rule that forbids connecting to `address` and why, or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            verdict = classify(inner)
            if verdict is not None:
                rule, why = verdict
                return rule, f"{why} (embedded in IPv6 {address})"
            if address.ipv4_mapped is not None or address in _NAT64:
                # Dialled as (mapped) or translated to (NAT64, DNS64 networks) a public IPv4 address.
                return None
    if address in METADATA_ADDRESSES:
        return Rule.CLOUD_METADATA, f"{address} is a cloud instance-metadata endpoint"
    if address.is_unspecified or (address.version == 4 and address in _THIS_NETWORK):
        return Rule.UNSPECIFIED, f"{address} is an unspecified ('this host') address"
    if address.is_loopback:
        return Rule.LOOPBACK, f"{address} is a loopback address"
    if address.is_link_local:
        return Rule.LINK_LOCAL, f"{address} is a link-local address"
    if address.is_multicast:
        return Rule.MULTICAST, f"{address} is a multicast address"
    if address.is_reserved or address == _BROADCAST:
        return Rule.RESERVED, f"{address} is a reserved address"
    if any(address in net for net in _PRIVATE):
        return Rule.PRIVATE, f"{address} is a private-network address"
    if not address.is_global or any(address in net for net in _SPECIAL):
        return Rule.NON_GLOBAL, f"{address} is not a public internet address (special-purpose range)"
    return None


def connect_address(address: IPAddress) -> IPAddress:
    """The address to dial: an IPv4-mapped IPv6 address is dialled as the IPv4 address it maps."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalise_host(host: str) -> str:
    return host.lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Networks and host names a trusted deployment (or a test) may fetch despite the rules.

    An address inside an allowed network passes every address rule, except that a cloud
    metadata address passes only when it is listed on its own (allowing `169.254.0.0/16`
    does not open the metadata service). An allowed host name passes whatever it resolves
    to, again except metadata addresses.
    """

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            text = entry.strip()
            if not text:
                raise ValueError("empty allowlist entry")
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=True))
            except ValueError:
                if "/" in text or ":" in text or not re.fullmatch(r"[A-Za-z0-9._-]+", text):
                    raise ValueError(f"allowlist entry {entry!r}: not a network or host name") from None
                hosts.add(normalise_host(text))
        return cls(tuple(networks), frozenset(hosts))

    def permits(self, address: IPAddress, host: str) -> bool:
        """Whether `address` (which `host` resolved to, or spelt) is allowed despite `classify`."""
        unwrapped = connect_address(address)
        if unwrapped in METADATA_ADDRESSES:
            return any(net.num_addresses == 1 and unwrapped in net for net in self.networks)
        if normalise_host(host) in self.hosts:
            return True
        return any(unwrapped in net for net in self.networks)
