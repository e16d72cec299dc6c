"""The source policy on its own: which addresses count as public (checked against the IANA special-purpose
registries), which URLs it refuses before any connection, which resolved addresses it refuses when connecting,
and the settings behind it (the dev host:port format, and its refusal on AWS Lambda)."""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.save_support import INTERNAL_TARGETS, PUBLIC_IPV4, embedded_forms, url_host
from video_library.errors import SourceNotAllowed
from video_library.settings import HostPort, get_settings
from video_library.source import SourcePolicy, is_public_address, resolve_host

REGISTRY_FILE = Path(__file__).resolve().parent.parent / "data" / "iana_special_purpose.csv"


@dataclass(frozen=True)
class RegistryEntry:
    registry: str
    block: IPv4Network | IPv6Network
    name: str
    globally_reachable: str  # the registry's cell: True, False, N/A or empty

    def __str__(self) -> str:
        return f"{self.block} ({self.name})"


def read_registry() -> list[RegistryEntry]:
    rows = [line for line in REGISTRY_FILE.read_text().splitlines() if not line.startswith("#")]
    return [
        RegistryEntry(
            row["registry"], ipaddress.ip_network(row["address_block"]), row["name"], row["globally_reachable"]
        )
        for row in csv.DictReader(rows)
    ]


REGISTRY = read_registry()


def first_middle_last(block: IPv4Network | IPv6Network) -> list[IPv4Address | IPv6Address]:
    return [block[0], block[block.num_addresses // 2], block[-1]]


def carried_ipv4(address: IPv6Address) -> list[IPv4Address] | None:
    """The IPv4 addresses an IPv6 form stands for, by the RFCs (Python's own readings where it has them)."""
    value = int(address)
    if address.ipv4_mapped is not None:  # ::ffff:0:0/96, RFC 4291
        return [address.ipv4_mapped]
    if address.teredo is not None:  # 2001::/32, RFC 4380: (server, client)
        return list(address.teredo)
    if address.sixtofour is not None:  # 2002::/16, RFC 3056
        return [address.sixtofour]
    if value >> 32 in (0, 0xFFFF << 16) or value >> 32 == int(IPv6Address("64:ff9b::")) >> 32:
        # IPv4-compatible ::/96, IPv4-translated ::ffff:0:0:0/96, NAT64 well-known 64:ff9b::/96 (RFC 6052)
        return [IPv4Address(value & 0xFFFFFFFF)]
    return None


def embedded_forms_in(block: IPv4Network | IPv6Network, ipv4: str) -> list[IPv6Address]:
    return [IPv6Address(form) for form in embedded_forms(ipv4).values() if ":" in form and IPv6Address(form) in block]


# Registry blocks whose addresses stand for IPv4 addresses: issue 11 judges them by the IPv4 address they carry
# (a connection to ::ffff:a.b.c.d reaches a.b.c.d), whatever the registry's column says of the block as a whole.
EMBEDDING_BLOCKS = {ipaddress.ip_network(b) for b in ("::ffff:0:0/96", "64:ff9b::/96", "2001::/32", "2002::/16")}


def test_the_registry_file_holds_every_entry_of_both_registries() -> None:
    # GIVEN the transcription (26 IPv4 rows, one of them split in two; 25 IPv6 rows)
    by_registry = {name: [e for e in REGISTRY if e.registry == name] for name in ("ipv4", "ipv6")}

    # THEN every row is of its registry's family, listed once, with a cell the registry uses
    assert len(by_registry["ipv4"]) == 26
    assert len(by_registry["ipv6"]) == 25
    assert all(e.block.version == 4 for e in by_registry["ipv4"])
    assert all(e.block.version == 6 for e in by_registry["ipv6"])
    assert len({e.block for e in REGISTRY}) == len(REGISTRY)
    assert {e.globally_reachable for e in REGISTRY} == {"True", "False", "N/A", ""}


@pytest.mark.parametrize(
    "entry",
    [e for e in REGISTRY if e.globally_reachable != "True" and e.block not in EMBEDDING_BLOCKS],
    ids=str,
)
def test_an_entry_that_is_not_globally_reachable_is_refused(entry: RegistryEntry) -> None:
    for address in first_middle_last(entry.block):
        assert is_public_address(str(address)) is False, f"{address} in {entry}"


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.globally_reachable == "True"], ids=str)
def test_globally_reachable_special_purpose_blocks_are_refused_too(entry: RegistryEntry) -> None:
    # Stricter than the registry on purpose: anycast service addresses, AS112, AMT relays and ORCHID identifiers
    # are reachable but never serve a provider's files. NAT64's well-known prefix is judged by what it carries.
    for address in first_middle_last(entry.block):
        if entry.block in EMBEDDING_BLOCKS:
            assert isinstance(address, IPv6Address)
            carried = carried_ipv4(address)
            assert carried is not None
            assert is_public_address(str(address)) is all(is_public_address(v4) for v4 in carried), str(address)
        else:
            assert is_public_address(str(address)) is False, f"{address} in {entry}"


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.block in EMBEDDING_BLOCKS], ids=str)
def test_a_block_that_carries_ipv4_addresses_is_judged_by_them(entry: RegistryEntry) -> None:
    # GIVEN the first, middle and last address of the block, and one carrying a public IPv4 address
    addresses = [*first_middle_last(entry.block), embedded_forms_in(entry.block, PUBLIC_IPV4)[0]]
    for address in addresses:
        assert isinstance(address, IPv6Address)
        carried = carried_ipv4(address)
        assert carried is not None, f"{address} carries no IPv4 address"
        expected = all(is_public_address(str(v4)) for v4 in carried)
        # THEN the verdict is the one on the IPv4 addresses it stands for (public ones included)
        assert is_public_address(str(address)) is expected, f"{address} carries {carried}"
    assert is_public_address(str(addresses[-1])) is True


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.registry == "ipv4"], ids=str)
def test_every_ipv6_form_of_a_special_ipv4_address_is_refused(entry: RegistryEntry) -> None:
    for address in first_middle_last(entry.block):
        for form, spelled in embedded_forms(str(address)).items():
            assert is_public_address(spelled) is False, f"{form} of {address}: {spelled}"


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "1.0.0.0",
        "223.255.255.255",
        "100.63.255.255",  # just below 100.64.0.0/10
        "100.128.0.0",  # just above it
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",  # just above 192.0.0.0/24
        "198.20.0.0",  # just above 198.18.0.0/15
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "2001:200::1",  # just above 2001::/23
        "3fff:1000::1",  # just above 3fff::/20
        "2c0f:ffff::1",
        *(form for name, form in embedded_forms(PUBLIC_IPV4).items() if name != "ipv4"),
        "64:ff9b::101:101",  # NAT64 of 1.1.1.1
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address) is True


@pytest.mark.parametrize(
    "address",
    [
        "224.0.0.1",  # multicast (its own registry)
        "239.255.255.255",
        "fec0::1",  # site-local, deprecated (RFC 3879)
        "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "ff02::1",  # multicast
        "ff0e::1",  # global-scope multicast is still multicast
        "4000::1",  # reserved by the IETF, outside global unicast
        "64:ff9b:1::808:808",  # local-use NAT64 never counts, whatever it carries
        "fe80::1%eth0",  # a scope does not change the address
        "fd00:ec2::254",  # the metadata service over IPv6 (unique local)
        "not an address",
        "",
        "127.1",  # not an address to ipaddress; a resolver could read it as 127.0.0.1
    ],
)
def test_addresses_beyond_the_registries_are_refused(address: str) -> None:
    assert is_public_address(address) is False


# ---- URLs, before any connection ----------------------------------------------------------------------------

DEV_PORT = 8002
POLICY = SourcePolicy(
    allowed_hosts=(".theapi.app", "cdn.example.test"),
    dev_hosts=(HostPort("127.0.0.1", DEV_PORT), HostPort("::1", 8443)),
)


@pytest.mark.parametrize(
    "url",
    [
        "https://img.theapi.app/video.mp4",
        "https://IMG.TheAPI.app:443/video.mp4",
        "https://img.theapi.app./video.mp4",
        "https://theapi.app/video.mp4",
        "https://cdn.example.test/a/b.mp4?token=x",
        "http://127.0.0.1:8002/files/task.mp4",
        "https://127.0.0.1:8002/files/task.mp4",
        "http://[::1]:8443/files/task.mp4",
        "http://[0:0::1]:8443/files/task.mp4",
    ],
)
def test_urls_the_policy_allows(url: str) -> None:
    checked = POLICY.check_source_url(url)

    assert isinstance(checked, httpx.URL)
    assert checked == httpx.URL(url)


REFUSED_URLS = {
    # scheme
    "ftp": "ftp://img.theapi.app/video.mp4",
    "file": "file:///etc/passwd",
    "gopher": "gopher://img.theapi.app:443/_GET",
    "javascript": "javascript:alert(1)",
    "no-scheme": "//img.theapi.app/video.mp4",
    "plain-http": "http://img.theapi.app/video.mp4",
    "plain-http-on-443": "http://img.theapi.app:443/video.mp4",
    # credentials
    "credentials": "https://user:pass@img.theapi.app/video.mp4",
    "user-only": "https://user@img.theapi.app/video.mp4",
    "credentials-on-dev-host": "http://user:pass@127.0.0.1:8002/video.mp4",
    # ports
    "port-8443": "https://img.theapi.app:8443/video.mp4",
    "port-80-on-https": "https://img.theapi.app:80/video.mp4",
    "port-0": "https://img.theapi.app:0/video.mp4",
    "port-out-of-range": "https://img.theapi.app:99999/video.mp4",
    "port-negative": "https://img.theapi.app:-443/video.mp4",
    "port-with-sign": "https://img.theapi.app:+443/video.mp4",
    "port-fullwidth-digits": "https://img.theapi.app:\uff14\uff14\uff13/video.mp4",
    "dev-host-other-port": "http://127.0.0.1:8003/video.mp4",
    "dev-host-default-port": "http://127.0.0.1/video.mp4",
    "dev-host-on-443": "https://127.0.0.1/video.mp4",
    "other-dev-entry-port": "http://[::1]:8002/video.mp4",
    "dev-address-by-name": "http://localhost:8002/video.mp4",
    # cannot be parsed
    "fullwidth-digits": "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/video.mp4",
    "fullwidth-letters": "https://\uff49\uff4d\uff47.theapi.app/video.mp4",
    "tab-in-path": "https://img.theapi.app/\tvideo.mp4",
    "tab-in-host": "https://img.the\tapi.app/video.mp4",
    "newline": "https://img.theapi.app/video.mp4\n",
    "broken-ipv6-literal": "https://[::1/video.mp4",
    "ipv6-literal-with-junk": "https://[::1]x/video.mp4",
    "ipv4-in-brackets": "https://[127.0.0.1]/video.mp4",
    "empty": "",
    "words": "not a url",
    "no-host": "https:///video.mp4",
    "idn-host": "https://b\u00fccher.theapi.app/video.mp4",
    "overlong": "https://img.theapi.app/" + "a" * 70_000,
    # host
    "not-allowed": "https://evil.example.org/video.mp4",
    "allowed-name-as-prefix": "https://img.theapi.app.evil.example.org/video.mp4",
    "allowed-suffix-without-dot": "https://eviltheapi.app/video.mp4",
    "percent-encoded-host": "https://a%2fb.theapi.app/video.mp4",
    "empty-label": "https://a..theapi.app/video.mp4",
    "overlong-label": "https://" + "a" * 64 + ".theapi.app/video.mp4",
    "numeric-host": "https://127.1/video.mp4",
    "decimal-host": "https://2130706433/video.mp4",
    "hex-host": "https://0x7f000001/video.mp4",
    "loopback-literal": "https://127.0.0.1/video.mp4",
    "ipv6-loopback-literal": "https://[::1]/video.mp4",
    "metadata-literal": "https://169.254.169.254/latest/meta-data/",
}


@pytest.mark.parametrize("url", REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
def test_urls_the_policy_refuses_by_themselves(url: str) -> None:
    with pytest.raises(SourceNotAllowed) as refused:
        POLICY.check_source_url(url)

    assert refused.value.to_body()["error"]["code"] == "source_not_allowed"


def test_a_refusal_says_why_without_echoing_the_url() -> None:
    with pytest.raises(SourceNotAllowed) as refused:
        POLICY.check_source_url("https://img.theapi.app:8443/video.mp4?token=secret-token")

    body = refused.value.to_body()["error"]
    assert body["message"] == "the video URL must use port 443"
    assert body["port"] == 8443
    assert "secret-token" not in str(body)


URL_LIKE_TEXT = (
    st.text() | st.text().map(lambda text: "https://" + text) | st.text().map("https://img.theapi.app".__add__)
)


@given(URL_LIKE_TEXT)
def test_any_text_is_either_an_allowed_url_or_source_not_allowed(text: str) -> None:
    try:
        checked = POLICY.check_source_url(text)
    except SourceNotAllowed:
        return
    assert checked.scheme in ("https", "http")
    assert checked.port in (None, DEV_PORT, 8443)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8002/files/task.mp4", True),
        ("https://127.0.0.1:8002/files/task.mp4", True),
        ("http://[::1]:8443/files/task.mp4", True),
        ("http://127.0.0.1/files/task.mp4", False),
        ("http://127.0.0.1:8003/files/task.mp4", False),
        ("http://localhost:8002/files/task.mp4", False),
        ("http://img.theapi.app/video.mp4", False),
        ("https://img.theapi.app/video.mp4", False),
        ("http://[::1/files/task.mp4", False),
        ("http://127.0.0.1:\uff18\uff10\uff10\uff12/files/task.mp4", False),
        ("not a url", False),
    ],
)
def test_plain_http_is_allowed_only_for_a_dev_host_and_port(url: str, allowed: bool) -> None:
    assert POLICY.allows_plain_http(url) is allowed


# ---- addresses, when connecting --------------------------------------------------------------------------------

NON_PUBLIC_FORMS = {
    f"{target}-{form}": address
    for target, ipv4 in INTERNAL_TARGETS.items()
    for form, address in embedded_forms(ipv4).items()
}


@pytest.mark.parametrize("address", NON_PUBLIC_FORMS.values(), ids=NON_PUBLIC_FORMS.keys())
def test_an_internal_address_as_a_literal_host_is_refused_even_when_listed(address: str) -> None:
    # GIVEN an allow-list that names the literal itself (a mistaken configuration)
    policy = SourcePolicy(allowed_hosts=(address,))
    url = f"https://{url_host(address)}/video.mp4"

    # THEN the URL is refused by its address, before any connection, and again when connecting
    with pytest.raises(SourceNotAllowed, match="non-public address"):
        policy.check_source_url(url)
    with pytest.raises(SourceNotAllowed, match="non-public address"):
        policy.vetted_addresses(address, 443)


@pytest.mark.parametrize("address", NON_PUBLIC_FORMS.values(), ids=NON_PUBLIC_FORMS.keys())
def test_an_allowed_name_resolving_to_an_internal_address_is_refused_when_connecting(address: str) -> None:
    # GIVEN an allowed host whose DNS answer is an internal address in some spelling
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return [address]

    policy = SourcePolicy(allowed_hosts=("cdn.example.test",), resolver=resolver)

    # WHEN the URL is checked it passes (nothing to judge without DNS) ...
    policy.check_source_url("https://cdn.example.test/video.mp4")
    # ... THEN the connection refuses the address it would connect to
    with pytest.raises(SourceNotAllowed, match="non-public address"):
        policy.vetted_addresses("cdn.example.test", 443)
    assert asked == [("cdn.example.test", 443)]


def test_one_internal_answer_among_public_ones_refuses_the_host() -> None:
    policy = SourcePolicy(
        allowed_hosts=("cdn.example.test",), resolver=lambda host, port: ["93.184.216.34", "::ffff:10.1.2.3"]
    )

    with pytest.raises(SourceNotAllowed):
        policy.vetted_addresses("cdn.example.test", 443)


def test_public_answers_are_returned_in_order_to_connect_to() -> None:
    answers = ["2606:4700::6810:84e5", "104.16.132.229"]
    policy = SourcePolicy(allowed_hosts=("cdn.example.test",), resolver=lambda host, port: answers)

    assert policy.vetted_addresses("cdn.example.test", 443) == answers


@pytest.mark.parametrize(("host", "port"), [("cdn.example.test", 8443), ("cdn.example.test", 80), ("evil.test", 443)])
def test_the_connection_refuses_a_port_or_host_the_policy_does_not_allow(host: str, port: int) -> None:
    # The backend does not rely on the URL check having run: a wrong port or host is refused before resolving.
    policy = SourcePolicy(allowed_hosts=("cdn.example.test",), resolver=lambda host, port: ["93.184.216.34"])

    with pytest.raises(SourceNotAllowed):
        policy.vetted_addresses(host, port)


def test_a_dev_host_is_resolved_but_not_judged_on_its_own_port_only() -> None:
    policy = SourcePolicy(
        allowed_hosts=(), dev_hosts=(HostPort("fake-piapi.test", DEV_PORT),), resolver=lambda host, port: ["127.0.0.1"]
    )

    assert policy.vetted_addresses("fake-piapi.test", DEV_PORT) == ["127.0.0.1"]
    with pytest.raises(SourceNotAllowed):
        policy.vetted_addresses("fake-piapi.test", 443)


def test_a_host_name_the_resolver_cannot_encode_is_refused_not_a_crash() -> None:
    with pytest.raises(SourceNotAllowed):
        resolve_host("a" * 64 + ".theapi.app", 443)


# ---- settings ------------------------------------------------------------------------------------------------


@pytest.fixture
def not_on_lambda(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)
    # On Lambda the settings also refuse a secret in the environment (see test_secrets.py); these tests are not
    # about that one.
    monkeypatch.delenv("PIAPI_WEBHOOK_SECRET", raising=False)
    get_settings.cache_clear()
    return monkeypatch


def test_dev_hosts_are_read_as_host_and_port(not_on_lambda: pytest.MonkeyPatch) -> None:
    not_on_lambda.setenv("DEV_INSECURE_SOURCE_HOSTS", " 127.0.0.1:8002, [::1]:8443,Fake-PiAPI.Local.:80 ,")

    hosts = get_settings().dev_insecure_source_hosts

    assert hosts == (HostPort("127.0.0.1", 8002), HostPort("::1", 8443), HostPort("fake-piapi.local", 80))
    assert [str(host) for host in hosts] == ["127.0.0.1:8002", "[::1]:8443", "fake-piapi.local:80"]


@pytest.mark.parametrize(
    "entry",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "::1:8443",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:80:90",
        "http://127.0.0.1:8002",
        "127.0.0.1:8002/files",
        "user@127.0.0.1:8002",
        "[not-v6]:80",
        "[::1%eth0]:80",
        "a..b:80",
        "-bad-:80",
        "127.0.0.1:\uff18\uff10",
    ],
)
def test_a_malformed_dev_host_entry_stops_start_up(not_on_lambda: pytest.MonkeyPatch, entry: str) -> None:
    not_on_lambda.setenv("DEV_INSECURE_SOURCE_HOSTS", f"127.0.0.1:8002,{entry}")

    with pytest.raises(ValidationError, match="DEV_INSECURE_SOURCE_HOSTS entry") as refused:
        get_settings()

    assert entry.strip() in str(refused.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AWS_LAMBDA_FUNCTION_NAME", "video-library-prod-save"), ("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")],
)
def test_dev_hosts_are_refused_on_lambda(not_on_lambda: pytest.MonkeyPatch, variable: str, value: str) -> None:
    # GIVEN a deployed function whose environment still carries a dev host (and a secret)
    not_on_lambda.setenv(variable, value)
    not_on_lambda.setenv("DEV_INSECURE_SOURCE_HOSTS", "127.0.0.1:8002")
    not_on_lambda.setenv("R2_SECRET_ACCESS_KEY", "r2-secret-value-never-printed")

    # THEN the settings refuse to load, naming the variable, and print nothing of the environment
    with pytest.raises(ValidationError) as refused:
        get_settings()

    message = str(refused.value)
    assert "DEV_INSECURE_SOURCE_HOSTS" in message
    assert "AWS Lambda" in message
    assert "r2-secret-value-never-printed" not in message


@pytest.mark.parametrize(
    ("variable", "value", "dev_hosts"),
    [
        ("AWS_LAMBDA_FUNCTION_NAME", "video-library-prod-save", ""),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_python3.13", ""),
        ("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE", "127.0.0.1:8002"),
    ],
)
def test_settings_load_on_lambda_without_dev_hosts_and_elsewhere_with_them(
    not_on_lambda: pytest.MonkeyPatch, variable: str, value: str, dev_hosts: str
) -> None:
    not_on_lambda.setenv(variable, value)
    not_on_lambda.setenv("DEV_INSECURE_SOURCE_HOSTS", dev_hosts)

    settings = get_settings()

    assert settings.dev_insecure_source_hosts == ((HostPort("127.0.0.1", 8002),) if dev_hosts else ())


def test_the_policy_takes_its_hosts_from_the_settings(not_on_lambda: pytest.MonkeyPatch) -> None:
    not_on_lambda.setenv("ALLOWED_SOURCE_HOSTS", ".theapi.app, CDN.Example.test")
    not_on_lambda.setenv("DEV_INSECURE_SOURCE_HOSTS", "127.0.0.1:8002")

    policy = SourcePolicy.from_settings(get_settings())

    assert policy.check_source_url("https://cdn.example.test/video.mp4")
    assert policy.allows_plain_http("http://127.0.0.1:8002/files/task.mp4")
    assert not policy.allows_plain_http("http://127.0.0.1:8003/files/task.mp4")
