"""Save to Library never fetches from where it must not: checked before the first byte, and on every hop."""

from __future__ import annotations

from typing import Any

import pytest

from tests.save_support import SaveStack, call_save, completed_video
from video_library import source
from video_library.db import get_video

# Addresses a hostile or mistaken URL could lead to inside our own network.
NON_PUBLIC = {
    "loopback": "127.0.0.1",
    "private": "10.0.0.1",
    "metadata-service": "169.254.169.254",
    "ipv6-loopback": "::1",
    "ipv4-mapped-loopback": "::ffff:127.0.0.1",
    "carrier-nat": "100.64.0.1",
    "unspecified": "0.0.0.0",  # noqa: S104 (an address under test, not a bind)
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
    stack: SaveStack, video_id: str, status: int, body: dict[str, Any], connections_before: int
) -> None:
    assert 400 <= status < 500, body
    assert body["error"]["code"] == "source_not_allowed"
    assert stack.source.connections == connections_before, "the refused target was contacted"
    assert stack.keys() == []
    record = get_video(video_id, consistent=True)
    assert record is not None and not record.saved_to_r2 and record.save_lease_id is None
    assert record.save_error


@pytest.mark.parametrize("address", NON_PUBLIC.values(), ids=NON_PUBLIC.keys())
def test_an_allowed_host_resolving_to_a_non_public_address_is_refused(
    stack: SaveStack, dns: dict[str, list[str]], address: str, loopback_only: list[Any]
) -> None:
    dns["cdn.example.test"] = [address]
    video = completed_video(f"https://cdn.example.test:{stack.source.port}/video.mp4")
    before = stack.source.connections

    status, body = call_save({"video_id": video.video_id})

    assert_refused_untouched(stack, video.video_id, status, body, before)
    assert loopback_only == []  # and nothing tried to connect anywhere else


def test_one_non_public_address_among_public_ones_is_enough_to_refuse(
    stack: SaveStack, dns: dict[str, list[str]]
) -> None:
    dns["cdn.example.test"] = ["93.184.216.34", "10.1.2.3"]
    video = completed_video("https://cdn.example.test/video.mp4")
    before = stack.source.connections

    status, body = call_save({"video_id": video.video_id})

    assert_refused_untouched(stack, video.video_id, status, body, before)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:{port}/video.mp4",
        "https://[::1]:{port}/video.mp4",
        "http://127.0.0.1:{port}/video.mp4",
        "https://evil.example.org:{port}/video.mp4",
        "https://img.theapi.app.evil.example.org/video.mp4",
        "ftp://img.theapi.app/video.mp4",
        "https://user:pass@img.theapi.app/video.mp4",
        "http://img.theapi.app/video.mp4",
    ],
    ids=[
        "ip-loopback",
        "ipv6-loopback",
        "plain-http",
        "not-allowed-host",
        "allowed-name-as-prefix",
        "ftp",
        "credentials",
        "http-to-allowed-host",
    ],
)
def test_urls_refused_before_any_connection(stack: SaveStack, url: str) -> None:
    video = completed_video(url.format(port=stack.source.port))
    before = stack.source.connections

    status, body = call_save({"video_id": video.video_id})

    assert_refused_untouched(stack, video.video_id, status, body, before)


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/video.mp4?size=1024",
        "https://127.0.0.1:{port}/video.mp4?size=1024",
        "https://cdn.example.test:{port}/video.mp4?size=1024",
        "https://evil.example.org/video.mp4",
        "http://169.254.169.254/latest/meta-data/",
    ],
    ids=["http-loopback", "https-loopback", "allowed-name-private-address", "outside-allow-list", "metadata"],
)
def test_a_redirect_to_a_refused_target_is_refused(stack: SaveStack, dns: dict[str, list[str]], target: str) -> None:
    dns["cdn.example.test"] = ["10.0.0.1"]
    hop = target.format(port=stack.source.port)
    video = completed_video(stack.source.url(redirect=hop))
    before = stack.source.connections
    paths_before = len(stack.source.paths)

    status, body = call_save({"video_id": video.video_id})

    assert 400 <= status < 500 and body["error"]["code"] == "source_not_allowed"
    # the first hop (an allowed dev host) was fetched; the target never was
    assert stack.source.connections == before + 1
    assert len(stack.source.paths) == paths_before + 1 and "redirect=" in stack.source.paths[-1]
    assert stack.keys() == []


def test_an_allowed_redirect_is_followed(stack: SaveStack) -> None:
    final = stack.source.url(size=2048)
    video = completed_video(stack.source.url(redirect=final))

    status, body = call_save({"video_id": video.video_id})

    assert status == 200
    assert body["size_bytes"] == 2048


def test_a_redirect_loop_is_cut_and_502(stack: SaveStack) -> None:
    loop = stack.source.url(
        redirect=stack.source.url(
            redirect=stack.source.url(
                redirect=stack.source.url(
                    redirect=stack.source.url(redirect=stack.source.url(redirect=stack.source.url(size=10)))
                )
            )
        )
    )
    video = completed_video(loop)

    status, body = call_save({"video_id": video.video_id})

    assert status == 502
    assert "redirected more than" in body["error"]["message"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:0a00:0001::", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 (an address under test)
        ("100.64.0.1", False),
        ("fe80::1%eth0", False),
    ],
)
def test_public_address_classification(address: str, public: bool) -> None:
    assert source.is_public_address(address) is public
