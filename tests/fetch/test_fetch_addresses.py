"""The address rules, unit by unit: every spelling of every forbidden range, and the allowlist."""

from __future__ import annotations

import ipaddress

import pytest

from servers.fetch import AddressRefused, FetchSettings, Rule
from servers.fetch.addresses import Allowlist, classify, connect_address, parse_ip_literal, parse_ipv4
from servers.fetch.fetcher import ascii_host, parse_url

SPELLINGS: list[tuple[str, Rule]] = [
    # loopback
    ("127.0.0.1", Rule.LOOPBACK),
    ("127.1", Rule.LOOPBACK),
    ("127.0.1", Rule.LOOPBACK),
    ("127.0.0.1.", Rule.LOOPBACK),
    ("2130706433", Rule.LOOPBACK),
    ("0x7f000001", Rule.LOOPBACK),
    ("0x7f.1", Rule.LOOPBACK),
    ("0X7F.0.0.1", Rule.LOOPBACK),
    ("0177.0.0.1", Rule.LOOPBACK),
    ("0177.1", Rule.LOOPBACK),
    ("017700000001", Rule.LOOPBACK),
    ("127.255.255.254", Rule.LOOPBACK),
    ("::1", Rule.LOOPBACK),
    ("0:0:0:0:0:0:0:1", Rule.LOOPBACK),
    ("::ffff:127.0.0.1", Rule.LOOPBACK),
    ("::ffff:7f00:1", Rule.LOOPBACK),
    ("::127.0.0.1", Rule.LOOPBACK),
    ("64:ff9b::127.0.0.1", Rule.LOOPBACK),
    ("2002:7f00:1::", Rule.LOOPBACK),
    # private networks
    ("10.0.0.1", Rule.PRIVATE),
    ("012.0.0.1", Rule.PRIVATE),
    ("0xa.1", Rule.PRIVATE),
    ("167772161", Rule.PRIVATE),
    ("172.16.0.1", Rule.PRIVATE),
    ("172.31.255.255", Rule.PRIVATE),
    ("192.168.1.1", Rule.PRIVATE),
    ("3232235777", Rule.PRIVATE),
    ("100.64.0.1", Rule.PRIVATE),
    ("fd12:3456::1", Rule.PRIVATE),
    ("::ffff:192.168.0.1", Rule.PRIVATE),
    ("2002:a00:1::1", Rule.PRIVATE),
    # link-local
    ("169.254.1.1", Rule.LINK_LOCAL),
    ("fe80::1", Rule.LINK_LOCAL),
    # cloud metadata, in every spelling
    ("169.254.169.254", Rule.CLOUD_METADATA),
    ("2852039166", Rule.CLOUD_METADATA),
    ("0xa9fea9fe", Rule.CLOUD_METADATA),
    ("0251.0376.0251.0376", Rule.CLOUD_METADATA),
    ("0xa9.0xfe.0xa9.0xfe", Rule.CLOUD_METADATA),
    ("169.254.43518", Rule.CLOUD_METADATA),
    ("::ffff:169.254.169.254", Rule.CLOUD_METADATA),
    ("::ffff:a9fe:a9fe", Rule.CLOUD_METADATA),
    ("fd00:ec2::254", Rule.CLOUD_METADATA),
    ("169.254.170.2", Rule.CLOUD_METADATA),
    ("100.100.100.200", Rule.CLOUD_METADATA),
    # unspecified / this network
    ("0.0.0.0", Rule.UNSPECIFIED),
    ("0", Rule.UNSPECIFIED),
    ("0x0", Rule.UNSPECIFIED),
    ("0.1.2.3", Rule.UNSPECIFIED),
    ("::", Rule.UNSPECIFIED),
    ("::ffff:0.0.0.0", Rule.UNSPECIFIED),
    # multicast
    ("224.0.0.1", Rule.MULTICAST),
    ("239.255.255.250", Rule.MULTICAST),
    ("ff02::1", Rule.MULTICAST),
    # reserved
    ("240.0.0.1", Rule.RESERVED),
    ("255.255.255.255", Rule.RESERVED),
    ("4294967295", Rule.RESERVED),
    ("::8.8.8.8", Rule.RESERVED),
    # other special-purpose ranges
    ("192.0.2.1", Rule.NON_GLOBAL),
    ("198.51.100.7", Rule.NON_GLOBAL),
    ("198.18.0.1", Rule.NON_GLOBAL),
    ("192.0.0.8", Rule.NON_GLOBAL),
    ("2001:db8::1", Rule.NON_GLOBAL),
    ("2001::1", Rule.NON_GLOBAL),
]

PUBLIC = ["8.8.8.8", "134744072", "0x08080808", "010.010.010.010", "93.184.216.34", "2606:4700::1111",
          "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1", "1.1"]  # fmt: skip


@pytest.mark.parametrize(("spelling", "rule"), SPELLINGS)
def test_every_spelling_of_a_forbidden_address_is_refused(spelling: str, rule: Rule) -> None:
    address = parse_ip_literal(spelling)
    assert address is not None
    verdict = classify(address)
    assert verdict is not None
    assert verdict[0] is rule


@pytest.mark.parametrize("spelling", PUBLIC)
def test_public_addresses_pass_in_any_spelling(spelling: str) -> None:
    address = parse_ip_literal(spelling)
    assert address is not None
    assert classify(address) is None


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("0xC0.0xA8.0x01.0x01", "192.168.1.1"),
        ("1.2.3.4.", "1.2.3.4"),
    ],
)
def test_ipv4_parser_reads_what_inet_aton_reads(spelling: str, expected: str) -> None:
    assert parse_ipv4(spelling) == ipaddress.IPv4Address(expected)


@pytest.mark.parametrize("spelling", ["1.2.3.256", "09.1.1.1", "1.2.3.4.5", "4294967296", "0x1g.1", "256.1"])
def test_numeric_hosts_that_are_not_addresses_are_rejected(spelling: str) -> None:
    with pytest.raises(ValueError, match="IPv4"):
        parse_ipv4(spelling)


@pytest.mark.parametrize("name", ["example.com", "1.2.3.example", "0x7f.example", "site.test", "a1b2"])
def test_names_are_not_literals(name: str) -> None:
    assert parse_ip_literal(name) is None


def test_ipv4_mapped_addresses_are_dialled_as_ipv4() -> None:
    assert connect_address(ipaddress.ip_address("::ffff:8.8.8.8")) == ipaddress.ip_address("8.8.8.8")
    assert connect_address(ipaddress.ip_address("2606:4700::1111")) == ipaddress.ip_address("2606:4700::1111")


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("file:///etc/passwd", Rule.SCHEME),
        ("ftp://example.com/x", Rule.SCHEME),
        ("gopher://example.com/", Rule.SCHEME),
        ("javascript:alert(1)", Rule.SCHEME),
        ("data:text/html,<b>hi</b>", Rule.SCHEME),
        ("example.com/no-scheme", Rule.SCHEME),
        ("", Rule.SCHEME),
        ("http://user:secret@example.com/", Rule.CREDENTIALS),
        ("http://example.com@127.0.0.1/", Rule.CREDENTIALS),
        ("http://", Rule.INVALID_URL),
        ("http://example.com:99999/", Rule.INVALID_URL),
        ("http://%31%32%37.0.0.1/", Rule.INVALID_URL),
        ("http://[fe80::1%25eth0]/", Rule.INVALID_URL),
        ("http://1.2.3.256/", Rule.INVALID_URL),
        ("http://exa mple.com/", Rule.INVALID_URL),
        ("http://\uff11\uff12\uff17.0.0.1/", Rule.INVALID_URL),
    ],
)
def test_urls_refused_before_any_lookup(url: str, rule: Rule) -> None:
    with pytest.raises(AddressRefused) as refused:
        parse_url(url)
    assert refused.value.rule is rule
    assert f"'{rule}'" in str(refused.value)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://2130706433:8080/a?b=c", "127.0.0.1"),
        ("HTTP://0177.0.0.1/", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
        ("http://127\u30020\u30020\u30021/", "127.0.0.1"),
        ("https://B\u00fccher.Example/", "xn--bcher-kva.example"),
    ],
)
def test_urls_get_a_canonical_host(url: str, host: str) -> None:
    assert ascii_host(parse_url(url)) == host


def test_fragment_is_dropped_and_path_kept() -> None:
    url = parse_url("https://example.com/a/b?x=1#frag")
    assert str(url) == "https://example.com/a/b?x=1"


def test_allowlist_opens_only_what_it_lists() -> None:
    allow = Allowlist.parse(["127.0.0.1", "10.0.0.0/8", "intranet.example", "::1"])
    loopback, other_loopback = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("127.0.0.2")
    assert allow.permits(loopback, "x")
    assert not allow.permits(other_loopback, "x")
    assert allow.permits(ipaddress.ip_address("10.9.8.7"), "x")
    assert allow.permits(ipaddress.ip_address("::ffff:10.9.8.7"), "x")
    assert allow.permits(ipaddress.ip_address("::1"), "x")
    assert not allow.permits(ipaddress.ip_address("192.168.0.1"), "x")
    assert allow.permits(ipaddress.ip_address("192.168.0.1"), "INTRANET.example.")


def test_allowlist_never_opens_metadata_by_accident() -> None:
    metadata = ipaddress.ip_address("169.254.169.254")
    wide = Allowlist.parse(["169.254.0.0/16", "0.0.0.0/0", "cloud.example"])
    assert not wide.permits(metadata, "cloud.example")
    assert not wide.permits(ipaddress.ip_address("::ffff:169.254.169.254"), "x")
    assert Allowlist.parse(["169.254.169.254"]).permits(metadata, "x")


@pytest.mark.parametrize("entry", ["", "10.0.0.0/33", "not a host", "10.0.0.1/8", "a:b"])
def test_bad_allowlist_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match=r"allowlist|network|empty|host"):
        FetchSettings(allow=(entry,))


def test_settings_reject_unsafe_values() -> None:
    import ssl

    lax = ssl.create_default_context()
    lax.check_hostname = False
    with pytest.raises(ValueError, match="verify"):
        FetchSettings(ssl_context=lax)
    with pytest.raises(ValueError, match="user_agent"):
        FetchSettings(user_agent="bot\r\nX-Injected: 1")
    with pytest.raises(TypeError):
        FetchSettings(allow="127.0.0.1")  # pyright: ignore[reportArgumentType]
