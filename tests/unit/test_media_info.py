"""The streaming header reader: facts from real MP4, QuickTime, WebM and Matroska files, however the bytes
are chunked, and nothing worse than unknown facts from truncated, hostile or random input, in bounded memory.

The real files are in tests/data/media (made by its make_media.sh); the synthetic ones are built here box by
box and element by element, so each test shows exactly the structure it is about.
"""

from __future__ import annotations

import itertools
import random
import struct
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from video_library.media_info import MAX_DIMENSION, MAX_DURATION_S, MAX_ITEMS, Container, MediaInfo, MediaProbe

MEDIA = Path(__file__).resolve().parents[1] / "data" / "media"
MIB = 1024 * 1024
# What the probe may hold whatever it is fed: far below one 8 MiB chunk, so it never copies one.
MEMORY_CAP = 32 * 1024


@dataclass(frozen=True)
class Ffprobe:
    """What ffprobe reports for a file: format duration, coded size, sample aspect ratio, rotation."""

    container: Container
    duration: float | None
    width: int
    height: int
    sample_aspect_ratio: tuple[int, int] = (1, 1)
    rotation: int = 0

    def expected(self) -> MediaInfo:
        """The size a player shows: the coded width stretched by the pixel aspect, turned by the rotation."""
        num, den = self.sample_aspect_ratio
        width, height = round(self.width * num / den), self.height
        if self.rotation % 180 == 90:
            width, height = height, width
        return MediaInfo(self.container, self.duration, width, height)


# ffprobe -show_entries format=duration:stream=width,height,sample_aspect_ratio:stream_side_data=rotation
FFPROBE = {
    "faststart.mp4": Ffprobe("mp4", 1.0, 320, 240),
    "moov_at_end.mp4": Ffprobe("mp4", 2.0, 160, 90),
    "quicktime.mov": Ffprobe("quicktime", 1.5, 128, 72),
    "audio_first.mp4": Ffprobe("mp4", 1.2, 64, 48),  # the audio track (1.2 s) is the longer one
    "rotated.mp4": Ffprobe("mp4", 1.0, 64, 48, rotation=90),
    "anamorphic.mp4": Ffprobe("mp4", 1.0, 64, 48, sample_aspect_ratio=(2, 1)),
    "vp9.webm": Ffprobe("webm", 1.0, 176, 144),
    "vp8_live.webm": Ffprobe("webm", None, 96, 64),  # duration N/A: written to a pipe
    "anamorphic.webm": Ffprobe("webm", 1.0, 64, 48, sample_aspect_ratio=(2, 1)),
    "matroska.mkv": Ffprobe("matroska", 1.008, 80, 60),
}


def read_media(name: str) -> bytes:
    return (MEDIA / name).read_bytes()


def chunks(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    """``data`` cut into pieces of the given sizes (cycled), the last one whatever remains."""
    at = 0
    for size in sizes:
        if at >= len(data):
            return
        yield data[at : at + size]
        at += size


def probe(data: bytes, sizes: Iterable[int] | None = None) -> MediaProbe:
    media_probe = MediaProbe()
    for chunk in chunks(data, sizes if sizes is not None else [len(data) or 1]):
        media_probe.feed(chunk)
    return media_probe


def random_sizes(seed: int, largest: int) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        yield rng.randint(1, largest)


def feed_in_bounded_memory(data_chunks: Iterable[bytes | memoryview]) -> MediaProbe:
    """Feeds the chunks (made before measuring) and checks the probe's peak allocation stays under the cap."""
    media_probe = MediaProbe()
    tracemalloc.start()
    try:
        for chunk in data_chunks:
            media_probe.feed(chunk)
            media_probe.result()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_CAP, f"the probe held {peak} bytes"
    return media_probe


def zeros(total: int, chunk: int = 8 * MIB) -> Iterator[memoryview]:
    """``total`` zero bytes as views of one preallocated chunk: gigabytes cost nothing to produce."""
    block = memoryview(bytes(chunk))
    while total > 0:
        yield block[: min(chunk, total)]
        total -= chunk


def assert_believable(info: MediaInfo | None) -> None:
    if info is None:
        return
    assert info.container in ("mp4", "quicktime", "webm", "matroska")
    assert info.duration_s is None or 0 < info.duration_s < MAX_DURATION_S
    assert (info.width is None) == (info.height is None)
    for side in (info.width, info.height):
        assert side is None or 1 <= side <= MAX_DIMENSION


# MP4 / QuickTime builders ---------------------------------------------------------------------------------

IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
TURN_90 = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
TURN_270 = (0, -0x10000, 0, 0x10000, 0, 0, 0, 0, 0x40000000)
TURN_180 = (-0x10000, 0, 0, 0, -0x10000, 0, 0, 0, 0x40000000)


def box(kind: bytes, *children: bytes) -> bytes:
    payload = b"".join(children)
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, version: int, flags: int, body: bytes) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


def mvhd(timescale: int, duration: int, *, version: int = 0) -> bytes:
    if version == 0:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
    else:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
    return full_box(b"mvhd", version, 0, times + bytes(80))  # rate, volume, matrix, next track: unread


def mdhd(timescale: int, duration: int, *, version: int = 0) -> bytes:
    if version == 0:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
    else:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
    return full_box(b"mdhd", version, 0, times + b"\x55\xc4\x00\x00")


def tkhd(
    width: float, height: float, *, version: int = 0, matrix: tuple[int, ...] = IDENTITY, enabled: bool = True
) -> bytes:
    # created, modified, track id, reserved, duration
    head = struct.pack(">IIIII" if version == 0 else ">QQIIQ", 0, 0, 1, 0, 0)
    body = head + bytes(8) + bytes(8) + struct.pack(">9i", *matrix)  # reserved, layer..volume, matrix
    body += struct.pack(">II", round(width * 0x10000), round(height * 0x10000))
    return full_box(b"tkhd", version, 0x3 if enabled else 0x2, body)


def hdlr(handler: bytes) -> bytes:
    return full_box(b"hdlr", 0, 0, b"\0\0\0\0" + handler + bytes(12) + b"Handler\0")


def trak(track_header: bytes, handler: bytes = b"vide", media_header: bytes | None = None) -> bytes:
    media = box(b"mdia", media_header or mdhd(1000, 0), hdlr(handler), box(b"minf", bytes(300)))
    return box(b"trak", track_header, box(b"edts", bytes(28)), media)


FTYP = box(b"ftyp", b"isom", b"\0\0\x02\0", b"isomiso2avc1mp41")


def mp4(*moov_children: bytes, mdat: bytes = bytes(1000), moov_first: bool = True) -> bytes:
    moov = box(b"moov", *moov_children)
    media = box(b"mdat", mdat)
    return FTYP + (moov + media if moov_first else media + moov)


def box_header(kind: bytes, payload_size: int) -> bytes:
    return struct.pack(">I4s", 8 + payload_size, kind)


def large_box_header(kind: bytes, total_size: int) -> bytes:
    """A box header with a 64-bit size (size field 1, then the real size)."""
    return struct.pack(">I4sQ", 1, kind, total_size)


# WebM / Matroska builders ---------------------------------------------------------------------------------

EBML, DOC_TYPE, SEGMENT, SEEK_HEAD, INFO, TIMESTAMP_SCALE, DURATION = (
    0x1A45DFA3,
    0x4282,
    0x18538067,
    0x114D9B74,
    0x1549A966,
    0x2AD7B1,
    0x4489,
)
TRACKS, TRACK_ENTRY, TRACK_TYPE, FLAG_ENABLED, VIDEO = 0x1654AE6B, 0xAE, 0x83, 0xB9, 0xE0
PIXEL_WIDTH, PIXEL_HEIGHT, DISPLAY_WIDTH, DISPLAY_HEIGHT, DISPLAY_UNIT = 0xB0, 0xBA, 0x54B0, 0x54BA, 0x54B2
CLUSTER, TIMESTAMP, SIMPLE_BLOCK, CUES, VOID = 0x1F43B675, 0xE7, 0xA3, 0x1C53BB6B, 0xEC
UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def element_header(element_id: int, size: int | None) -> bytes:
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    return id_bytes + (UNKNOWN_SIZE if size is None else b"\x01" + size.to_bytes(7, "big"))


def element(element_id: int, *children: bytes, unknown_size: bool = False) -> bytes:
    payload = b"".join(children)
    return element_header(element_id, None if unknown_size else len(payload)) + payload


def uint(element_id: int, value: int) -> bytes:
    return element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def ebml_header(doc_type: bytes = b"webm") -> bytes:
    return element(EBML, uint(0x4286, 1), uint(0x42F7, 1), element(DOC_TYPE, doc_type), uint(0x4285, 2))


def info(duration: float | None, *, scale: int | None = None, float_format: str = ">d") -> bytes:
    children = [uint(TIMESTAMP_SCALE, scale)] if scale is not None else []
    if duration is not None:
        children.append(element(DURATION, struct.pack(float_format, duration)))
    return element(INFO, *children, element(0x4D80, b"Lavf59.27.100"))


def track_entry(track_type: int, *video_children: bytes, enabled: bool = True) -> bytes:
    video = [element(VIDEO, *video_children)] if video_children else []
    flag = [] if enabled else [uint(FLAG_ENABLED, 0)]
    return element(TRACK_ENTRY, uint(0xD7, 1), uint(TRACK_TYPE, track_type), *flag, element(0x86, b"V_VP8"), *video)


def video_size(width: int, height: int) -> tuple[bytes, bytes]:
    return uint(PIXEL_WIDTH, width), uint(PIXEL_HEIGHT, height)


def cluster(block_bytes: int = 500, *, unknown_size: bool = False) -> bytes:
    return element(CLUSTER, uint(TIMESTAMP, 0), element(SIMPLE_BLOCK, bytes(block_bytes)), unknown_size=unknown_size)


def webm(*segment_children: bytes, doc_type: bytes = b"webm", unknown_size: bool = False) -> bytes:
    return ebml_header(doc_type) + element(SEGMENT, *segment_children, unknown_size=unknown_size)


SMALL_WEBM_TRACKS = element(TRACKS, track_entry(1, *video_size(640, 360)))


# Real files ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FFPROBE))
def test_a_real_file_fed_whole_gives_what_ffprobe_reports(name: str) -> None:
    # GIVEN a real file made by ffmpeg  WHEN it is fed in one chunk
    media_probe = probe(read_media(name))
    # THEN the facts are ffprobe's, the probe is done and saw nothing wrong
    expected = FFPROBE[name].expected()
    info = media_probe.result()
    assert info is not None
    assert info.container == expected.container
    assert info.width == expected.width and info.height == expected.height
    if expected.duration_s is None:
        assert info.duration_s is None
    else:
        assert info.duration_s == pytest.approx(expected.duration_s, abs=1e-6)
    assert media_probe.done and media_probe.problem is None


CHUNKINGS: dict[str, Callable[[], Iterator[int]]] = {
    "1-byte": lambda: itertools.cycle([1]),
    "7-byte": lambda: itertools.cycle([7]),
    "64KiB": lambda: itertools.cycle([64 * 1024]),
    "random-1..13": lambda: random_sizes(1, 13),
    "random-1..500": lambda: random_sizes(2, 500),
    "random-1..4096": lambda: random_sizes(3, 4096),
}


@pytest.mark.parametrize("name", sorted(FFPROBE))
@pytest.mark.parametrize("chunking", list(CHUNKINGS))
def test_any_chunking_gives_the_same_facts(name: str, chunking: str) -> None:
    # GIVEN a real file  WHEN it is fed in chunks of other sizes  THEN the result is the one-chunk result
    data = read_media(name)
    chunked = probe(data, CHUNKINGS[chunking]())
    assert chunked.result() == probe(data).result() and chunked.done


@pytest.mark.parametrize("name", sorted(FFPROBE))
def test_a_truncated_file_gives_no_fact_that_is_wrong(name: str) -> None:
    # GIVEN a real file and its facts
    data = read_media(name)
    final = probe(data).result()
    assert final is not None
    # WHEN it is cut after every byte (a prefix is all a probe ever sees of a truncated transfer)
    media_probe = MediaProbe()
    known: set[str] = set()
    for at in range(len(data)):
        media_probe.feed(data[at : at + 1])
        info = media_probe.result()
        # THEN every fact is unknown or the final one, and a fact once known stays known
        if info is None:
            assert not known
            continue
        assert info.container == final.container
        for fact in ("duration_s", "width", "height"):
            value = getattr(info, fact)
            assert value is None or value == getattr(final, fact), (at, fact, value)
            if value is not None:
                known.add(fact)
            assert fact not in known or value is not None
        assert media_probe.problem is None


def top_level_boxes(data: bytes) -> dict[bytes, tuple[int, int]]:
    """Where each top-level box of a (small, 32-bit sized) MP4 starts and ends."""
    boxes, at = {}, 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        boxes[kind] = (at, at + size)
        at += size
    return boxes


@pytest.mark.parametrize("name", ["faststart.mp4", "moov_at_end.mp4", "quicktime.mov", "audio_first.mp4"])
def test_mp4_facts_are_known_exactly_when_moov_has_passed(name: str) -> None:
    # GIVEN a real MP4/QuickTime file and where its moov box lies
    data = read_media(name)
    moov_start, moov_end = top_level_boxes(data)[b"moov"]
    final = probe(data).result()
    # WHEN it is cut just before the moov starts  THEN nothing but the container is known
    before = probe(data[:moov_start]).result()
    assert before is not None and (before.duration_s, before.width, before.height) == (None, None, None)
    # WHEN it is cut just after the moov ends  THEN every fact is known and the probe wants no more bytes
    after = probe(data[:moov_end])
    assert after.result() == final and after.done


def test_after_the_facts_later_bytes_change_nothing() -> None:
    # GIVEN a faststart MP4 whose moov has been read
    data = read_media("faststart.mp4")
    media_probe = probe(data)
    facts = media_probe.result()
    # WHEN anything at all follows (here another file's bytes and garbage)
    media_probe.feed(read_media("vp9.webm"))
    media_probe.feed(b"\x00\x00\x00\x01moov" + bytes(100))
    # THEN the facts stay as they were
    assert media_probe.result() == facts


def test_any_bytes_like_chunk_is_accepted() -> None:
    # GIVEN one file as bytes, bytearray and memoryview chunks  THEN each gives the same facts
    data = read_media("vp9.webm")
    for kind in (bytes, bytearray, memoryview):
        media_probe = MediaProbe()
        for chunk in chunks(data, itertools.cycle([333])):
            media_probe.feed(kind(chunk))
        assert media_probe.result() == FFPROBE["vp9.webm"].expected()


# MP4 / QuickTime structures -------------------------------------------------------------------------------


def test_version_1_boxes_with_64_bit_times() -> None:
    # GIVEN mvhd, tkhd and mdhd of version 1 and a duration beyond 32 bits in a 90 kHz timescale
    data = mp4(mvhd(90_000, 2**32 + 45_000, version=1), trak(tkhd(1920, 1080, version=1), b"vide"))
    # THEN the 64-bit fields are read
    assert probe(data).result() == MediaInfo("mp4", (2**32 + 45_000) / 90_000, 1920, 1080)


def test_tkhd_width_and_height_are_16_16_fixed_point() -> None:
    # GIVEN a track shown 853.33 x 480 (a 640x480 picture with 4:3 pixels)
    data = mp4(mvhd(600, 1200), trak(tkhd(640 * 4 / 3, 480)))
    # THEN the size is rounded to whole pixels
    assert probe(data).result() == MediaInfo("mp4", 2.0, 853, 480)


@pytest.mark.parametrize(
    ("matrix", "shown"), [(TURN_90, (720, 1280)), (TURN_270, (720, 1280)), (TURN_180, (1280, 720))]
)
def test_a_quarter_turn_swaps_width_and_height(matrix: tuple[int, ...], shown: tuple[int, int]) -> None:
    data = mp4(mvhd(1000, 5000), trak(tkhd(1280, 720, matrix=matrix)))
    info = probe(data).result()
    assert info is not None and (info.width, info.height) == shown


def test_the_video_track_gives_the_size_not_the_audio_or_another_track() -> None:
    # GIVEN an audio track, a timecode track and a video track, in that order
    data = mp4(
        mvhd(1000, 3000),
        trak(tkhd(0, 0), b"soun"),
        trak(tkhd(1, 1), b"tmcd"),
        trak(tkhd(1024, 576), b"vide"),
    )
    # THEN the size is the video track's
    assert probe(data).result() == MediaInfo("mp4", 3.0, 1024, 576)


def test_an_enabled_video_track_wins_over_a_disabled_one_before_it() -> None:
    # GIVEN a disabled video track (say, a cover picture) before the enabled one
    data = mp4(mvhd(1000, 3000), trak(tkhd(300, 300, enabled=False)), trak(tkhd(1280, 720)))
    info = probe(data).result()
    assert info is not None and (info.width, info.height) == (1280, 720)


def test_a_file_without_video_has_a_duration_and_no_size() -> None:
    data = mp4(mvhd(44_100, 44_100 * 3), trak(tkhd(0, 0), b"soun"))
    assert probe(data).result() == MediaInfo("mp4", 3.0, None, None)


@pytest.mark.parametrize("unset", [0, 0xFFFFFFFF])
def test_the_video_tracks_mdhd_stands_in_for_an_unset_movie_duration(unset: int) -> None:
    # GIVEN an mvhd whose duration is unset (0, or all ones: "indefinite") and a video track's mdhd of 4 s
    data = mp4(mvhd(1000, unset), trak(tkhd(640, 360), media_header=mdhd(12_800, 51_200, version=1)))
    assert probe(data).result() == MediaInfo("mp4", 4.0, 640, 360)


def test_quicktime_without_ftyp_and_with_wide_and_free_before_mdat() -> None:
    # GIVEN an old QuickTime file: no ftyp, wide and free boxes, mdat, then moov
    data = box(b"wide") + box(b"free", bytes(50)) + box(b"mdat", bytes(2000))
    data += box(b"moov", mvhd(600, 900), trak(tkhd(320, 240)))
    assert probe(data).result() == MediaInfo("quicktime", 1.5, 320, 240)


def test_ftyp_brand_qt_means_quicktime() -> None:
    data = box(b"ftyp", b"qt  ", b"\x20\x05\x03\x00", b"qt  ") + box(b"moov", mvhd(600, 600), trak(tkhd(64, 48)))
    assert probe(data).result() == MediaInfo("quicktime", 1.0, 64, 48)


def test_a_huge_64_bit_mdat_is_skipped_by_counting_and_moov_found_after_it() -> None:
    # GIVEN a 5 GiB mdat with a 64-bit size (size field 1), then the moov
    mdat_size = 5 * 1024 * MIB
    moov = box(b"moov", mvhd(1000, 7_500), trak(tkhd(3840, 2160)))
    # WHEN every byte streams past in 8 MiB chunks (views of one zero buffer)
    pieces: list[bytes | memoryview] = [FTYP, large_box_header(b"mdat", mdat_size), *zeros(mdat_size - 16), moov]
    media_probe = feed_in_bounded_memory(pieces)
    # THEN the moov's facts are read, in memory far below one chunk
    assert media_probe.result() == MediaInfo("mp4", 7.5, 3840, 2160)


def test_a_box_of_size_zero_runs_to_the_end_of_the_file() -> None:
    # GIVEN a faststart file whose mdat has size 0 ("to the end of the file")
    moov = box(b"moov", mvhd(1000, 2000), trak(tkhd(160, 120)))
    media_probe = probe(FTYP + moov + struct.pack(">I4s", 0, b"mdat") + bytes(5000))
    # THEN the facts are read and the probe is done
    assert media_probe.result() == MediaInfo("mp4", 2.0, 160, 120) and media_probe.done
    # GIVEN an mdat of size 0 first  THEN there can be no moov after it: unknown facts, nothing wrong
    media_probe = probe(FTYP + struct.pack(">I4s", 0, b"mdat") + bytes(5000) + moov)
    assert media_probe.result() == MediaInfo("mp4", None, None, None)
    assert media_probe.done and media_probe.problem is None


def test_a_large_moov_is_walked_not_buffered() -> None:
    # GIVEN a 40 MiB moov: a long video's sample tables in minf (30 MiB), then a big udta after the track
    sample_tables, user_data = 30 * MIB, 10 * MIB
    movie_header, track_header, media_head = mvhd(1000, 60_000), tkhd(1280, 720), mdhd(1000, 0) + hdlr(b"vide")
    mdia_size = len(media_head) + 8 + sample_tables
    trak_size = len(track_header) + 8 + mdia_size
    moov_size = len(movie_header) + 8 + trak_size + 8 + user_data
    pieces: list[bytes | memoryview] = [FTYP, box_header(b"moov", moov_size), movie_header]
    pieces += [box_header(b"trak", trak_size), track_header, box_header(b"mdia", mdia_size), media_head]
    pieces += [box_header(b"minf", sample_tables), *zeros(sample_tables), box_header(b"udta", user_data)]
    pieces += zeros(user_data)
    # WHEN it streams past  THEN the facts are read in memory far below the moov's size
    media_probe = feed_in_bounded_memory(pieces)
    assert media_probe.result() == MediaInfo("mp4", 60.0, 1280, 720) and media_probe.done


# MP4 hostile headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        # a box declaring 4 bytes, less than its own 8-byte header
        (FTYP + struct.pack(">I4s", 4, b"moov") + bytes(100), "smaller than its header"),
        # a 64-bit size of 9, less than its own 16-byte header
        (FTYP + large_box_header(b"moov", 9) + bytes(100), "smaller than its header"),
        # an mvhd declaring 4 GiB inside a moov of a few hundred bytes
        (FTYP + box(b"moov", struct.pack(">I4s", 0xFFFFFFFF, b"mvhd") + bytes(200)), "overruns"),
        # a trak whose 64-bit size runs past its moov
        (FTYP + box(b"moov", mvhd(1, 1), large_box_header(b"trak", 2**63) + bytes(50)), "overruns"),
    ],
    ids=["size-below-header", "largesize-below-header", "4GiB-mvhd-in-moov", "trak-past-moov"],
)
def test_a_malformed_box_gives_unknown_facts_and_says_why(data: bytes, problem: str) -> None:
    media_probe = feed_in_bounded_memory(chunks(data, itertools.cycle([5])))
    info = media_probe.result()
    assert info is not None and (info.width, info.height) == (None, None)
    assert media_probe.done and problem in (media_probe.problem or "")


@pytest.mark.parametrize(
    "declared",
    [0xFFFFFFFF, 2**64 - 1, 2**40],
    ids=["4GiB", "64-bit-max", "1TiB"],
)
def test_a_box_declaring_more_than_the_file_holds_is_skipped_in_bounded_memory(declared: int) -> None:
    # GIVEN an mdat declaring far more than the 64 MiB that follow (a lie, or a truncated transfer)
    header = large_box_header(b"mdat", declared) if declared > 0xFFFFFFFF else struct.pack(">I4s", declared, b"mdat")
    pieces: list[bytes | memoryview] = [FTYP, header, *zeros(64 * MIB), box(b"moov", mvhd(1, 5), trak(tkhd(64, 48)))]
    # WHEN it streams past  THEN no memory is spent on it, and a moov inside its declared extent is not read
    media_probe = feed_in_bounded_memory(pieces)
    assert media_probe.result() == MediaInfo("mp4", None, None, None)
    assert not media_probe.done and media_probe.problem is None


def test_deep_nesting_costs_nothing() -> None:
    # GIVEN a moov holding 5,000 traks nested in one another (only moov > trak > mdia is ever descended)
    nested = tkhd(640, 480) + box(b"mdia", mdhd(1, 0), hdlr(b"vide"))
    for _ in range(5_000):
        nested = box(b"trak", nested)
    data = FTYP + box(b"moov", mvhd(1000, 1000), nested)
    # WHEN it streams past  THEN the outer structure is read, the nesting skipped, memory bounded
    media_probe = feed_in_bounded_memory([data[i : i + 4096] for i in range(0, len(data), 4096)])
    assert media_probe.result() == MediaInfo("mp4", 1.0, None, None)
    assert media_probe.done and media_probe.problem is None


def test_countless_tiny_boxes_make_the_probe_give_up() -> None:
    # GIVEN more tiny boxes before the moov than any real file has
    data = FTYP + box(b"free") * (MAX_ITEMS + 10) + box(b"moov", mvhd(1, 1), trak(tkhd(64, 48)))
    media_probe = probe(data, itertools.cycle([65_536]))
    # THEN the probe stops early and says so
    assert media_probe.result() == MediaInfo("mp4", None, None, None)
    assert media_probe.done and f"more than {MAX_ITEMS}" in (media_probe.problem or "")


@pytest.mark.parametrize(
    ("movie_header", "track_header"),
    [
        (mvhd(0, 1000), tkhd(0, 480)),  # timescale 0, width 0
        (mvhd(1, 7 * 86_400), tkhd(MAX_DIMENSION + 1, 480)),  # 7 days, 16385 wide
        (mvhd(1000, 1000, version=7), tkhd(640, 480, version=7)),  # unknown versions
        (full_box(b"mvhd", 0, 0, bytes(8)), full_box(b"tkhd", 0, 0, bytes(40))),  # cut short
    ],
    ids=["zero", "too-large", "unknown-version", "too-short"],
)
def test_unbelievable_values_are_unknown(movie_header: bytes, track_header: bytes) -> None:
    data = mp4(movie_header, trak(track_header, media_header=mdhd(0, 5)))
    media_probe = probe(data)
    assert media_probe.result() == MediaInfo("mp4", None, None, None) and media_probe.problem is None


def test_bytes_that_are_no_video_give_no_result() -> None:
    for data in (b"", b"\x00\x00", b"GIF89a" + bytes(100), b"<html><body>not found</body></html>", bytes(8)):
        media_probe = probe(data)
        assert media_probe.result() is None
        assert media_probe.done == (len(data) >= 8)


# WebM / Matroska structures -------------------------------------------------------------------------------


def test_webm_duration_is_in_timestamp_scale_units() -> None:
    # GIVEN a TimestampScale of 1 µs and a 32-bit float Duration of 2.5 million units
    data = webm(info(2_500_000.0, scale=1000, float_format=">f"), SMALL_WEBM_TRACKS)
    assert probe(data).result() == MediaInfo("webm", 2.5, 640, 360)


def test_webm_default_timestamp_scale_is_a_millisecond() -> None:
    data = webm(info(12_345.0), SMALL_WEBM_TRACKS, doc_type=b"matroska")
    assert probe(data).result() == MediaInfo("matroska", 12.345, 640, 360)


def test_unknown_size_segment_and_cluster_end_where_the_next_top_element_begins() -> None:
    # GIVEN a live-style stream: Segment and Cluster of unknown size, Info and Tracks only after the cluster
    data = webm(
        element(SEEK_HEAD, bytes(30)),
        cluster(2000, unknown_size=True),
        info(3000.0),
        element(TRACKS, track_entry(2), track_entry(1, *video_size(1080, 1920))),
        cluster(500, unknown_size=True),
        unknown_size=True,
    )
    # WHEN it streams in 3-byte chunks  THEN the first cluster's blocks are skipped and the facts are read
    media_probe = probe(data, itertools.cycle([3]))
    assert media_probe.result() == MediaInfo("webm", 3.0, 1080, 1920)
    assert media_probe.done and media_probe.problem is None


def test_unknown_size_tracks_entries_and_video_end_where_a_sibling_or_segment_child_begins() -> None:
    # GIVEN Tracks, TrackEntry and Video all of unknown size, a second entry, then a cluster and Info
    first = element(TRACK_ENTRY, uint(TRACK_TYPE, 2), unknown_size=True)
    second = element(
        TRACK_ENTRY, uint(TRACK_TYPE, 1), element(VIDEO, *video_size(426, 240), unknown_size=True), unknown_size=True
    )
    data = webm(element(TRACKS, first, second, unknown_size=True), cluster(700), info(2000.0), unknown_size=True)
    # THEN each ends where an element that cannot be its child begins, and the facts are read
    media_probe = probe(data, itertools.cycle([2]))
    assert media_probe.result() == MediaInfo("webm", 2.0, 426, 240)
    assert media_probe.done and media_probe.problem is None


def test_clusters_and_cues_before_the_tracks_are_skipped_by_counting() -> None:
    # GIVEN Info, a 256 MiB cluster and 16 MiB of cues, then the Tracks
    cluster_size, cues_size = 256 * MIB, 16 * MIB
    pieces: list[bytes | memoryview] = [ebml_header(), element_header(SEGMENT, None), info(1500.0)]
    pieces += [element_header(CLUSTER, cluster_size), *zeros(cluster_size), element_header(CUES, cues_size)]
    pieces += [*zeros(cues_size), SMALL_WEBM_TRACKS]
    media_probe = feed_in_bounded_memory(pieces)
    assert media_probe.result() == MediaInfo("webm", 1.5, 640, 360) and media_probe.done


def test_display_size_in_pixels_wins_over_the_coded_size() -> None:
    shown = webm(info(1000.0), element(TRACKS, track_entry(1, *video_size(720, 576), uint(DISPLAY_WIDTH, 1024))))
    assert probe(shown).result() == MediaInfo("webm", 1.0, 1024, 576)
    # A display size given as an aspect ratio (DisplayUnit 3) is no pixel size: the coded size stands.
    ratio = webm(
        info(1000.0),
        element(TRACKS, track_entry(1, *video_size(720, 576), uint(DISPLAY_WIDTH, 16), uint(DISPLAY_HEIGHT, 9),
                                    uint(DISPLAY_UNIT, 3))),
    )  # fmt: skip
    assert probe(ratio).result() == MediaInfo("webm", 1.0, 720, 576)


def test_the_first_enabled_video_track_gives_the_size() -> None:
    tracks = element(
        TRACKS,
        track_entry(2),
        track_entry(1, *video_size(100, 100), enabled=False),
        track_entry(1, *video_size(854, 480)),
        track_entry(1, *video_size(1920, 1080)),
    )
    assert probe(webm(info(1000.0), tracks)).result() == MediaInfo("webm", 1.0, 854, 480)


def test_ebml_that_is_not_webm_or_matroska_gives_no_result() -> None:
    media_probe = probe(webm(info(1000.0), SMALL_WEBM_TRACKS, doc_type=b"webvtt"))
    assert media_probe.result() is None and media_probe.done


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        # an element ID whose first byte announces more than 4 bytes
        (ebml_header() + element_header(SEGMENT, None) + b"\x08\x12\x34\x56\x78\x9a\x81\x00", "invalid header"),
        # a size whose first byte is 0 (more than 8 bytes)
        (ebml_header() + element_header(SEGMENT, None) + b"\x15\x49\xa9\x66\x00\x00", "invalid header"),
        # a Tracks element running past its Segment
        (webm(info(1000.0), element_header(TRACKS, 2**56 - 2) + bytes(40)), "overruns"),
        # a Duration of unknown size: only masters may have one
        (webm(element(INFO, element_header(DURATION, None) + bytes(8))), "unknown size"),
    ],
    ids=["id-too-long", "size-too-long", "tracks-past-segment", "unknown-size-leaf"],
)
def test_malformed_ebml_gives_unknown_facts_and_says_why(data: bytes, problem: str) -> None:
    media_probe = feed_in_bounded_memory(chunks(data, itertools.cycle([3])))
    info_ = media_probe.result()
    assert info_ is None or (info_.width, info_.height) == (None, None)
    assert media_probe.done and problem in (media_probe.problem or "")


def test_absurd_ebml_lengths_are_skipped_not_buffered() -> None:
    # GIVEN a DocType declaring 2^56 - 2 bytes, and 32 MiB of it streaming past
    pieces: list[bytes | memoryview] = [
        element_header(EBML, 2**56 - 2),
        element_header(DOC_TYPE, 2**56 - 20),
        *zeros(32 * MIB),
    ]
    media_probe = feed_in_bounded_memory(pieces)
    assert media_probe.result() is None and media_probe.problem is None
    # GIVEN a PixelWidth of 9 bytes (no unsigned integer here is longer than 8)  THEN it is not believed
    data = webm(info(1000.0), element(TRACKS, track_entry(1, element(PIXEL_WIDTH, bytes(9)), uint(PIXEL_HEIGHT, 9))))
    assert probe(data).result() == MediaInfo("webm", 1.0, None, None)


def test_deep_ebml_nesting_costs_nothing() -> None:
    # GIVEN a Video element nested 5,000 deep in itself (only Segment > Tracks > TrackEntry > Video is descended)
    nested = uint(PIXEL_WIDTH, 32) + uint(PIXEL_HEIGHT, 32)
    for _ in range(5_000):
        nested = element(VIDEO, nested)
    data = webm(info(1000.0), element(TRACKS, element(TRACK_ENTRY, uint(TRACK_TYPE, 1), nested)))
    media_probe = feed_in_bounded_memory([data[i : i + 4096] for i in range(0, len(data), 4096)])
    assert media_probe.result() == MediaInfo("webm", 1.0, None, None) and media_probe.done


def test_webm_with_void_and_crc_elements_anywhere() -> None:
    crc, void = element(0xBF, b"\x01\x02\x03\x04"), element(VOID, bytes(3))
    duration = element(DURATION, struct.pack(">d", 800.0))
    data = webm(
        element(VOID, bytes(50)),
        element(INFO, crc, uint(TIMESTAMP_SCALE, 1_000_000), void, duration),
        element(TRACKS, crc, track_entry(1, crc, *video_size(320, 180))),
    )
    assert probe(data).result() == MediaInfo("webm", 0.8, 320, 180)


# Properties -----------------------------------------------------------------------------------------------

REAL_FILES = st.sampled_from(sorted(FFPROBE))
CHUNK_SIZES = st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=40)


def check_chunking_invariant(data: bytes, sizes: list[int]) -> None:
    whole = probe(data)
    pieces = probe(data, itertools.cycle(sizes))
    assert pieces.result() == whole.result()
    assert pieces.problem == whole.problem and pieces.done == whole.done
    assert not (whole.problem or "").startswith("internal error"), whole.problem
    assert_believable(whole.result())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from([b"", b"\x00\x00\x00\x18ftypisom", b"\x1a\x45\xdf\xa3", b"\x00\x00\x00\x10moov"]),
    data=st.binary(max_size=4000),
    sizes=CHUNK_SIZES,
)
def test_random_bytes_never_raise_and_chunking_never_matters(prefix: bytes, data: bytes, sizes: list[int]) -> None:
    check_chunking_invariant(prefix + data, sizes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=REAL_FILES,
    edits=st.lists(st.tuples(st.floats(min_value=0, max_value=1), st.binary(min_size=1, max_size=8)), max_size=6),
    keep=st.floats(min_value=0, max_value=1),
    sizes=CHUNK_SIZES,
)
def test_damaged_real_files_never_raise_and_chunking_never_matters(
    name: str, edits: list[tuple[float, bytes]], keep: float, sizes: list[int]
) -> None:
    # GIVEN a real file with a few bytes overwritten anywhere and its tail cut off
    data = bytearray(read_media(name))
    for where, patch in edits:
        at = int(where * (len(data) - 1))
        data[at : at + len(patch)] = patch
    damaged = bytes(data[: int(keep * len(data)) + 1])
    # THEN the probe never raises, believes nothing unbelievable, and chunking changes nothing
    check_chunking_invariant(damaged, sizes)
