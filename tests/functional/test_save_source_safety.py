"""Save to Library never fetches from where it must not: checked before the first byte, and on every hop.

A URL the policy refuses by itself (scheme, host, port, credentials, a literal address, unparseable) is refused by
the save request at once (422, nothing queued). What only connecting can tell (the addresses a name resolves to,
where a redirect leads) is refused by the worker, where the connection is made: the save ends failed with
``source_not_allowed`` and nothing fetched. Through the real handlers, against moto and the local source (a
development host:port). The `loopback_only` guard fails a test whose code connects anywhere but loopback, and the
source counts the connections it accepts, so "refused before any connection" is observed, not assumed. The
policy's own tables are in tests/unit/test_source_policy.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.save_support import INTERNAL_TARGETS, SaveStack, call_save, completed_video, embedded_forms, url_host
from video_library import db, source
from video_library.db import get_video
from video_library.settings import get_settings

# What an allowed host name may resolve to inside our own network, by group: every spelling of the loopback,
# private and metadata addresses, and the ranges the address check used to miss. Each test takes a group and
# saves one video per address (the stack's set-up, not the save, is what costs time here).
NON_PUBLIC_GROUPS = {
    **{target: list(embedded_forms(ipv4).values()) for target, ipv4 in INTERNAL_TARGETS.items()},
    "other-ranges": [
        "::1",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",  # noqa: S104 (an address under test, not a bind)
        "192.0.0.1",  # IETF protocol assignments
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
        "fec0::1",  # site-local
        "fd00:ec2::254",  # unique local (the metadata service over IPv6)
    ],
}

UNPARSEABLE = {
    "fullwidth-digits": "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/video.mp4",
    "tab": "https://img.theapi.app/\tvideo.mp4",
    "broken-ipv6-literal": "https://[::1/video.mp4",
}


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A resolver the test controls: host name → addresses (the local source's name included)."""
    table: dict[str, list[str]] = {"localhost": ["127.0.0.1"]}

    def resolve(host: str, port: int) -> list[str]:
        return table[host]

    monkeypatch.setattr(source, "resolve_host", resolve)
    return table


def assert_refused_untouched(
    stack: SaveStack, video_id: str, status: int, body: dict[str, Any], connections_before: int, case: str = ""
) -> None:
    """Refused by the request itself: 422, nothing queued, nothing fetched, the record as it was."""
    assert status == 422, (case, body)
    assert body["error"]["code"] == "source_not_allowed", case
    assert stack.source.connections == connections_before, f"the refused target was contacted: {case}"
    assert stack.queued() == 0, case
    record = get_video(video_id, consistent=True)
    assert record is not None and not record.saved_to_r2 and record.save_state is None, case
    assert record.save_error is None, case


def save_refused_by_the_worker(stack: SaveStack, video_id: str, case: str = "") -> db.VideoRecord:
    """Queued by the request (the URL is fine by itself), refused where the worker connects: failed at once."""
    status, body = call_save({"video_id": video_id})
    assert status == 202, (case, body)
    stack.run_worker()
    record = get_video(video_id, consistent=True)
    assert record is not None, case
    assert (record.save_state, record.save_error_code, record.save_attempts) == ("failed", "source_not_allowed", 1), (
        case,
        record.save_error,
    )
    assert record.save_lease_id is None and not record.saved_to_r2, case
    assert stack.keys() == [] and stack.unfinished_uploads() == [] and stack.queued() == 0, case
    return record


@pytest.mark.parametrize("addresses", NON_PUBLIC_GROUPS.values(), ids=NON_PUBLIC_GROUPS.keys())
def test_an_allowed_host_resolving_to_a_non_public_address_is_refused(
    stack: SaveStack, dns: dict[str, list[str]], addresses: list[str], loopback_only: list[Any]
) -> None:
    for address in addresses:
        # GIVEN an allowed host, on the only port allowed, whose DNS answer is inside our network
        dns["cdn.example.test"] = [address]
        video = completed_video(f"https://cdn.example.test/video.mp4?answer={address}")
        before = stack.source.connections

        # WHEN the owner saves it
        save_refused_by_the_worker(stack, video.video_id, case=address)

        # THEN nothing was fetched, nothing stored, and nothing tried to connect anywhere
        assert stack.source.connections == before, address
    assert loopback_only == []


def test_one_non_public_address_among_public_ones_is_enough_to_refuse(
    stack: SaveStack, dns: dict[str, list[str]], loopback_only: list[Any]
) -> None:
    dns["cdn.example.test"] = ["93.184.216.34", "::ffff:10.1.2.3"]
    video = completed_video("https://cdn.example.test/video.mp4")
    before = stack.source.connections

    save_refused_by_the_worker(stack, video.video_id)

    assert stack.source.connections == before
    assert loopback_only == []


REFUSED_URLS = {
    "ip-loopback-source-port": "https://127.0.0.1:{port}/video.mp4",
    "ipv6-loopback-source-port": "https://[::1]:{port}/video.mp4",
    "plain-http-to-loopback": "http://127.0.0.1:{port}/video.mp4",
    "dev-host-other-port": "http://localhost:{other_port}/video.mp4",
    "dev-host-default-port": "http://localhost/video.mp4",
    "not-allowed-host": "https://evil.example.org/video.mp4",
    "allowed-name-as-prefix": "https://img.theapi.app.evil.example.org/video.mp4",
    "ftp": "ftp://img.theapi.app/video.mp4",
    "credentials": "https://user:pass@img.theapi.app/video.mp4",
    "http-to-allowed-host": "http://img.theapi.app/video.mp4",
    "port-8443": "https://img.theapi.app:8443/video.mp4",
    "port-80-on-https": "https://img.theapi.app:80/video.mp4",
}


@pytest.mark.parametrize("url", REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
def test_urls_refused_before_any_connection(stack: SaveStack, url: str, loopback_only: list[Any]) -> None:
    video = completed_video(url.format(port=stack.source.port, other_port=stack.source.port + 1))
    before = stack.source.connections

    status, body = call_save({"video_id": video.video_id})

    assert_refused_untouched(stack, video.video_id, status, body, before)
    assert loopback_only == []


@pytest.mark.parametrize("addresses", NON_PUBLIC_GROUPS.values(), ids=NON_PUBLIC_GROUPS.keys())
def test_a_non_public_literal_host_is_refused_even_when_allowed(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch, addresses: list[str], loopback_only: list[Any]
) -> None:
    # GIVEN an allow-list naming the literals themselves (a mistaken configuration)
    monkeypatch.setenv("ALLOWED_SOURCE_HOSTS", ",".join(addresses))
    get_settings.cache_clear()
    for address in addresses:
        video = completed_video(f"https://{url_host(address)}/video.mp4")
        before = stack.source.connections

        # WHEN the owner saves a video at one of them
        status, body = call_save({"video_id": video.video_id})

        # THEN the address itself refuses it, before any connection
        assert_refused_untouched(stack, video.video_id, status, body, before, case=address)
        assert body["error"]["message"] == "the video host is a non-public address", address
    assert loopback_only == []


@pytest.mark.parametrize("url", UNPARSEABLE.values(), ids=UNPARSEABLE.keys())
def test_an_unparseable_url_on_the_record_answers_422_and_writes_nothing(
    stack: SaveStack, url: str, loopback_only: list[Any]
) -> None:
    # GIVEN a completed video whose provider URL httpx cannot parse (it used to make the save answer 500)
    video = completed_video(url)
    before = stack.source.connections

    # WHEN the owner saves it
    status, body = call_save({"video_id": video.video_id})

    # THEN 422 source_not_allowed, the bucket empty, the record unsaved and free for another try
    assert_refused_untouched(stack, video.video_id, status, body, before)
    assert body["error"]["message"] == "the video URL cannot be parsed"
    assert loopback_only == []


REDIRECT_TARGETS = {
    "http-loopback": "http://127.0.0.1:{port}/video.mp4?size=1024",
    "https-loopback": "https://127.0.0.1:{port}/video.mp4?size=1024",
    "allowed-name-other-port": "https://cdn.example.test:{port}/video.mp4?size=1024",
    "dev-host-other-port": "http://localhost:{other_port}/video.mp4?size=1024",
    "outside-allow-list": "https://evil.example.org/video.mp4",
    "metadata": "http://169.254.169.254/latest/meta-data/",
    "port-8443": "https://img.theapi.app:8443/video.mp4",
    "credentials": "https://user:pass@img.theapi.app/video.mp4",
    "broken-ipv6-literal": "https://[::1/video.mp4",
    "tab": "https://img.theapi.app/\tvideo.mp4",
    "port-with-sign": "https://img.theapi.app:+443/video.mp4",
    "space-in-host": "https://img theapi.app/video.mp4",
}


def redirect_through_the_source(stack: SaveStack, target: str, loopback_only: list[Any], case: str) -> None:
    """Save a video whose URL, on the local source, redirects to ``target``; it must be refused unfetched."""
    video = completed_video(stack.source.url(redirect=quote(target, safe="")))
    before = stack.source.connections
    paths_before = len(stack.source.paths)

    save_refused_by_the_worker(stack, video.video_id, case)

    # the first hop (the allowed dev host) was fetched; the target never was, nor anything beyond loopback
    assert stack.source.connections == before + 1, case
    assert len(stack.source.paths) == paths_before + 1 and "redirect=" in stack.source.paths[-1], case
    assert loopback_only == [], case
    assert stack.keys() == [], case


@pytest.mark.parametrize("target", REDIRECT_TARGETS.values(), ids=REDIRECT_TARGETS.keys())
def test_a_redirect_to_a_refused_target_is_refused(
    stack: SaveStack, dns: dict[str, list[str]], target: str, loopback_only: list[Any]
) -> None:
    dns["cdn.example.test"] = ["10.0.0.1"]
    hop = target.format(port=stack.source.port, other_port=stack.source.port + 1)

    redirect_through_the_source(stack, hop, loopback_only, hop)


@pytest.mark.parametrize("addresses", NON_PUBLIC_GROUPS.values(), ids=NON_PUBLIC_GROUPS.keys())
def test_a_redirect_to_an_internal_address_is_refused_in_every_spelling(
    stack: SaveStack, dns: dict[str, list[str]], addresses: list[str], loopback_only: list[Any]
) -> None:
    # GIVEN each address as a literal URL host, and as the DNS answer of an allowed name on port 443 (refused when
    # connecting, before any socket is opened)
    for address in addresses:
        dns["cdn.example.test"] = [address]
        for target in (f"https://{url_host(address)}/video.mp4", "https://cdn.example.test/video.mp4"):
            redirect_through_the_source(stack, target, loopback_only, f"{target} ({address})")


def test_an_allowed_redirect_is_followed(stack: SaveStack) -> None:
    final = stack.source.url(size=2048)
    video = completed_video(stack.source.url(redirect=quote(final, safe="")))

    record = stack.save_and_run(video.video_id)

    assert record.save_state == "saved" and record.size_bytes == 2048


def test_a_relative_redirect_stays_on_the_dev_host_and_is_followed(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(redirect=quote("/video.mp4?size=3000", safe="")))

    record = stack.save_and_run(video.video_id)

    assert record.save_state == "saved" and record.size_bytes == 3000


def test_a_redirect_loop_is_cut_and_fails_for_good(stack: SaveStack) -> None:
    loop = stack.source.url(size=10)
    for _hop in range(6):
        loop = stack.source.url(redirect=quote(loop, safe=""))
    video = completed_video(loop)

    record = stack.save_and_run(video.video_id)

    assert (record.save_state, record.save_error_code, record.save_attempts) == ("failed", "source_refused", 1)
    assert "redirected more than" in (record.save_error or "")
    assert stack.keys() == [] and stack.queued() == 0
