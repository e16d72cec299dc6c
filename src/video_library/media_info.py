"""A video's duration and picture size, read from its container header as the bytes stream past.

A save copies the provider's file to R2 once, chunk by chunk, and never holds it whole. ``MediaProbe`` rides
along: every chunk is fed to it in order and, when the copy ends, ``result()`` tells what the container itself
declares. No decoder, no second download, no dependency:

- MP4 / QuickTime (ISO BMFF boxes): ``moov > mvhd`` gives the duration; the ``moov > trak`` whose
  ``mdia > hdlr`` is ``vide`` gives the picture size from its ``tkhd`` (``mdia > mdhd`` stands in for a
  duration ``mvhd`` leaves unset). ``moov`` may come before or after ``mdat``.
- WebM / Matroska (EBML): ``Segment > Info`` gives Duration (in TimestampScale units); the first enabled
  ``TrackEntry`` of TrackType 1 gives ``Video > PixelWidth/PixelHeight`` (DisplayWidth/DisplayHeight when
  given in pixels). Segments and Clusters of unknown size (live recordings) are understood.

The size reported is the one a player shows: ``tkhd`` already scales for non-square pixels, and a track
rotated by 90° or 270° in its ``tkhd`` matrix has its width and height swapped. (ffprobe's ``width`` and
``height`` are the coded size; its ``sample_aspect_ratio`` and rotation give the same display size.)

The probe is a push parser that walks the structure by counting bytes: payloads it does not need (``mdat``,
``minf`` with its sample tables, Clusters, Cues, ...) are skipped with a counter, whatever their size, so
skipping costs O(1) per chunk. It descends only along the fixed paths to the facts (``moov > trak > mdia``;
``Segment > Tracks > TrackEntry > Video``), so it never holds more than four levels however deep a file
nests, keeps only the first bytes of the few boxes it reads (96 at most), and gives up after ``MAX_ITEMS``
boxes/elements. It never raises: a save must not fail because a header is odd; what could not be read is
simply unknown (``None``), and ``problem`` says why.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, Literal, TypeAlias, TypeVar

Container: TypeAlias = Literal["mp4", "quicktime", "webm", "matroska"]

# Sanity limits: a value outside them is not believed (reported unknown).
MAX_DIMENSION = 16_384
MAX_DURATION_S = 7 * 24 * 3600.0
# Headers examined before giving up: real files reach their facts within a few dozen.
MAX_ITEMS = 10_000
_SNIFF_BYTES = 8


@dataclass(frozen=True)
class MediaInfo:
    """What a video's container declares; ``None`` where it could not be read or is not believable."""

    container: Container
    duration_s: float | None
    width: int | None
    height: int | None


class MediaProbe:
    """Reads duration and picture size from a video's bytes as they pass; one probe per transfer.

    ``feed`` every chunk in order (any sizes); ``result`` at any time gives what is known so far. Memory is a
    few hundred bytes whatever the input, and feeding never raises.
    """

    def __init__(self) -> None:
        self._head = bytearray()
        self._reader: _Mp4Reader | _EbmlReader | None = None
        self._problem: str | None = None

    @property
    def done(self) -> bool:
        """True once no further byte can change the result (the facts are read, or the probe gave up)."""
        return self._problem is not None or (self._reader is not None and self._reader.done)

    @property
    def problem(self) -> str | None:
        """Why the probe stopped early (not a video container, a malformed header, ...), else None."""
        if self._problem is not None:
            return self._problem
        return self._reader.problem if self._reader is not None else None

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """The stream's next bytes. Costs O(len(chunk)) at most, O(1) while skipping or once done."""
        if self.done:
            return
        try:
            self._feed(memoryview(chunk).cast("B"))
        except Exception as exc:  # the transfer must never fail because of the probe: stop reading instead
            self._problem = f"internal error: {type(exc).__name__}"

    def result(self) -> MediaInfo | None:
        """The facts read so far; None when the bytes are not (yet known to be) an MP4, QuickTime or WebM."""
        if self._reader is None or self._problem is not None:  # not a known container, or a bug: trust nothing
            return None
        return self._reader.result()

    def _feed(self, data: memoryview) -> None:
        if self._reader is None:
            taken = min(len(data), _SNIFF_BYTES - len(self._head))
            self._head += data[:taken]
            data = data[taken:]
            if len(self._head) < _SNIFF_BYTES:
                return
            self._reader = _reader_for(bytes(self._head))
            if self._reader is None:
                self._problem = "not an MP4, QuickTime, WebM or Matroska stream"
                return
            self._reader.feed(memoryview(self._head))
            self._head = bytearray()
        self._reader.feed(data)


def _reader_for(head: bytes) -> _Mp4Reader | _EbmlReader | None:
    if head.startswith(_EBML_MAGIC):
        return _EbmlReader()
    if head[4:8] in _MP4_FIRST_BOXES:
        return _Mp4Reader()
    return None


def _believable_duration(seconds: float | None) -> float | None:
    if seconds is None or not math.isfinite(seconds) or not 0 < seconds < MAX_DURATION_S:
        return None
    return seconds


def _believable_size(width: int, height: int) -> tuple[int, int] | None:
    if 1 <= width <= MAX_DIMENSION and 1 <= height <= MAX_DIMENSION:
        return width, height
    return None


Kind = TypeVar("Kind", bytes, int)  # a box type (MP4) or an element ID (EBML)


@dataclass
class _Open(Generic[Kind]):
    """A container being read: its kind and where it ends (None: at the end of the stream)."""

    kind: Kind
    end: int | None
    # An EBML master of unknown size also ends where a sibling or an ancestor-level element begins.
    open_ended: bool = False


class _Reader(ABC, Generic[Kind]):
    """The streaming walk shared by both formats: headers, then a payload to read a prefix of, or to skip.

    Positions are absolute offsets in the stream. Exactly one of three things happens to each byte: it is
    part of a header (at most 16 bytes, buffered), part of a payload prefix being read (at most
    96 bytes, buffered), or skipped (counted). A container's payload is not a step of its own:
    its children's headers follow its header.
    """

    min_header: int

    def __init__(self) -> None:
        self.pos = 0
        self.done = False
        self.problem: str | None = None
        self.stack: list[_Open[Kind]] = []
        self._items = 0
        self._header = bytearray()
        self._skip_to: int | None = None
        self._leaf_kind: Kind | None = None
        self._leaf_need = 0
        self._leaf_end: int | None = None
        self._leaf = bytearray()
        self._reading_leaf = False

    def feed(self, data: memoryview) -> None:
        i, n = 0, len(data)
        while i < n and not self.done:
            if self._skip_to is not None:
                step = min(n - i, self._skip_to - self.pos)
                i += step
                self.pos += step
                if self.pos == self._skip_to:
                    self._skip_to = None
                    self._close_finished()
            elif self._reading_leaf:
                step = min(n - i, self._leaf_need - len(self._leaf))
                self._leaf += data[i : i + step]
                i += step
                self.pos += step
                if len(self._leaf) == self._leaf_need:
                    self._finish_leaf()
            else:
                i = self._read_header(data, i)

    def give_up(self, problem: str) -> None:
        self.problem = problem
        self.done = True

    @abstractmethod
    def result(self) -> MediaInfo | None: ...

    @abstractmethod
    def header_length(self, header: bytearray) -> int | None:
        """How long the header starting with these bytes is (as far as they tell); None if it is invalid."""

    @abstractmethod
    def on_header(self, header: bytes, start: int) -> None:
        """Decide what to do with the box/element whose header (at ``start``) was just read."""

    @abstractmethod
    def on_leaf(self, kind: Kind, payload: bytes) -> None:
        """The first bytes of a payload were read (all of them, or as many as were asked for)."""

    @abstractmethod
    def on_close(self, closed: _Open[Kind]) -> None:
        """A container ended."""

    # What ``on_header`` may decide.

    def descend(self, kind: Kind, end: int | None, *, open_ended: bool = False) -> None:
        self.stack.append(_Open(kind, end, open_ended))
        self._close_finished()

    def read_leaf(self, kind: Kind, end: int | None, need: int) -> None:
        """Read the first ``need`` bytes of a payload running to ``end``, then skip the rest of it."""
        self._leaf_kind, self._leaf_end = kind, end
        self._leaf_need = need if end is None else min(need, end - self.pos)
        self._leaf = bytearray()
        self._reading_leaf = True
        if self._leaf_need == 0:
            self._finish_leaf()

    def skip(self, end: int | None) -> None:
        if end is None:  # runs to the end of the stream: nothing after it can be read
            self.done = True
            return
        self._skip_to = end
        if self.pos == end:
            self._skip_to = None
            self._close_finished()

    def parent_end(self) -> int | None:
        return self.stack[-1].end if self.stack else None

    def _read_header(self, data: memoryview, i: int) -> int:
        if not self._header:
            end = self.parent_end()
            if end is not None and end - self.pos < self.min_header:
                self.skip(end)  # padding too short to be a box or element: the container ends here
                return i
        while (need := self.header_length(self._header)) is not None and len(self._header) < need:
            if i == len(data):
                return i
            step = min(len(data) - i, need - len(self._header))
            self._header += data[i : i + step]
            self.pos += step
            i += step
        if need is None:
            self.give_up(f"invalid header at offset {self.pos - len(self._header)}")
            return i
        header = bytes(self._header)
        self._header = bytearray()
        self._items += 1
        if self._items > MAX_ITEMS:
            self.give_up(f"more than {MAX_ITEMS} boxes or elements before the facts")
            return i
        self.on_header(header, self.pos - len(header))
        return i

    def _finish_leaf(self) -> None:
        self._reading_leaf = False
        payload, self._leaf = bytes(self._leaf), bytearray()
        assert self._leaf_kind is not None
        self.on_leaf(self._leaf_kind, payload)
        if not self.done:
            self.skip(self._leaf_end)

    def _close_finished(self) -> None:
        while self.stack and not self.done:
            end = self.stack[-1].end
            if end is None or self.pos < end:
                return
            self.on_close(self.stack.pop())


# MP4 / QuickTime ------------------------------------------------------------------------------------------

# Box types an MP4 or QuickTime file may open with (old QuickTime files have no ftyp).
_MP4_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
# Where the facts live: (parent, box) -> how many payload bytes to read. Containers are descended into.
_MP4_CONTAINERS = frozenset({(b"", b"moov"), (b"moov", b"trak"), (b"trak", b"mdia")})
_MP4_LEAVES = {
    (b"", b"ftyp"): 4,  # major brand
    (b"moov", b"mvhd"): 32,  # version 1: flags, created, modified (8 + 8), timescale, duration (8)
    (b"trak", b"tkhd"): 96,  # version 1 up to width and height
    (b"mdia", b"mdhd"): 32,
    (b"mdia", b"hdlr"): 12,  # version/flags, pre_defined (QuickTime: component type), handler type
}
_FIXED_16_16 = 1 << 16
_UINT32_UNKNOWN = 0xFFFFFFFF
_UINT64_UNKNOWN = 0xFFFFFFFFFFFFFFFF


@dataclass
class _Mp4Track:
    handler: bytes = b""
    enabled: bool = False
    display_size: tuple[int, int] | None = None
    media_duration_s: float | None = None


class _Mp4Reader(_Reader[bytes]):
    min_header = 8

    def __init__(self) -> None:
        super().__init__()
        self.container: Container | None = None  # from the ftyp's brand; old QuickTime files have no ftyp
        self.movie_duration_s: float | None = None
        self.video: _Mp4Track | None = None
        self.track = _Mp4Track()

    def header_length(self, header: bytearray) -> int | None:
        if len(header) < 8:
            return 8
        return 16 if header[:4] == b"\x00\x00\x00\x01" else 8

    def on_header(self, header: bytes, start: int) -> None:
        size, box = struct.unpack_from(">I4s", header)
        if size == 1:
            (size,) = struct.unpack_from(">Q", header, 8)
        parent_end = self.parent_end()
        if size == 0:  # the box runs to the end of its container (at the top level, of the file)
            end = parent_end
        elif size < len(header):
            self.give_up(f"box {box!r} at offset {start} is smaller than its header")
            return
        else:
            end = start + size
            if parent_end is not None and end > parent_end:
                self.give_up(f"box {box!r} at offset {start} overruns its container")
                return
        parent = self.stack[-1].kind if self.stack else b""
        if start == 0 and box != b"ftyp":
            self.container = "quicktime"
        if (parent, box) in _MP4_CONTAINERS:
            if box == b"trak":
                self.track = _Mp4Track()
            self.descend(box, end)
        elif (need := _MP4_LEAVES.get((parent, box))) is not None and not (box == b"ftyp" and start != 0):
            self.read_leaf(box, end, need)
        else:
            self.skip(end)

    def on_leaf(self, kind: bytes, payload: bytes) -> None:
        if kind == b"ftyp":
            self.container = "quicktime" if payload == b"qt  " else "mp4"
        elif kind == b"mvhd" and self.movie_duration_s is None:
            self.movie_duration_s = _mp4_duration(payload)
        elif kind == b"tkhd":
            self.track.enabled = len(payload) >= 4 and bool(payload[3] & 1)
            self.track.display_size = _tkhd_display_size(payload)
        elif kind == b"mdhd":
            self.track.media_duration_s = _mp4_duration(payload)
        elif kind == b"hdlr" and len(payload) >= 12:
            self.track.handler = payload[8:12]

    def on_close(self, closed: _Open[bytes]) -> None:
        if closed.kind == b"trak" and self._is_better_video(self.track):
            self.video = self.track
        elif closed.kind == b"moov":
            self.done = True

    def _is_better_video(self, track: _Mp4Track) -> bool:
        """The first video track with a size, unless a later one is enabled and it is not (a cover picture)."""
        if track.handler != b"vide" or track.display_size is None:
            return False
        return self.video is None or (track.enabled and not self.video.enabled)

    def result(self) -> MediaInfo | None:
        if self.container is None:
            return None
        duration = _believable_duration(self.movie_duration_s)
        if duration is None and self.video is not None:
            duration = _believable_duration(self.video.media_duration_s)
        size = self.video.display_size if self.video is not None else None
        return MediaInfo(self.container, duration, *(size or (None, None)))


def _mp4_duration(payload: bytes) -> float | None:
    """Duration from an mvhd or mdhd payload: version 0 (32-bit fields) or 1 (64-bit times)."""
    if len(payload) >= 20 and payload[0] == 0:
        timescale, duration = struct.unpack_from(">II", payload, 12)
        unknown = _UINT32_UNKNOWN
    elif len(payload) >= 32 and payload[0] == 1:
        timescale, duration = struct.unpack_from(">IQ", payload, 20)
        unknown = _UINT64_UNKNOWN
    else:
        return None
    if timescale == 0 or duration in (0, unknown):
        return None
    return float(duration / timescale)


def _tkhd_display_size(payload: bytes) -> tuple[int, int] | None:
    """A track's display size: tkhd's 16.16 width and height, swapped when its matrix turns it a quarter."""
    if len(payload) >= 84 and payload[0] == 0:
        matrix_at = 40
    elif len(payload) >= 96 and payload[0] == 1:
        matrix_at = 52
    else:
        return None
    a, b, _, c, d = struct.unpack_from(">iiiii", payload, matrix_at)
    raw_width, raw_height = struct.unpack_from(">II", payload, matrix_at + 36)
    width, height = round(raw_width / _FIXED_16_16), round(raw_height / _FIXED_16_16)
    if abs(b) > abs(a) and abs(c) > abs(d):
        width, height = height, width
    return _believable_size(width, height)


# WebM / Matroska (EBML) -----------------------------------------------------------------------------------

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML = 0x1A45DFA3
_DOC_TYPE = 0x4282
_SEGMENT = 0x18538067
_INFO = 0x1549A966
_TIMESTAMP_SCALE = 0x2AD7B1
_DURATION = 0x4489
_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_TRACK_TYPE = 0x83
_FLAG_ENABLED = 0xB9
_VIDEO = 0xE0
_PIXEL_WIDTH = 0xB0
_PIXEL_HEIGHT = 0xBA
_DISPLAY_WIDTH = 0x54B0
_DISPLAY_HEIGHT = 0x54BA
_DISPLAY_UNIT = 0x54B2
_VIDEO_TRACK_TYPE = 1
_DISPLAY_UNIT_PIXELS = 0
_DEFAULT_TIMESTAMP_SCALE_NS = 1_000_000
_NS_PER_S = 1e9
_KNOWN_DOC_TYPES: dict[bytes, Container] = {b"webm": "webm", b"matroska": "matroska"}
_MAX_DOC_TYPE = 16
_MAX_UINT = 8
# The Segment's children (Cluster, Cues, SeekHead, Tags, Chapters, Attachments, Info, Tracks) and the top
# level: one of them starting ends an element of unknown size (Segment, Cluster) at the same level or below.
_SEGMENT_CHILDREN = frozenset({0x1F43B675, 0x1C53BB6B, 0x114D9B74, 0x1254C367, 0x1043A770, 0x1941A469, _INFO, _TRACKS})
_TOP_LEVEL = frozenset({_EBML, _SEGMENT})
# Where the facts live: (parent, element); 0 is the top level. Masters are descended into; of the leaves,
# at most so many payload bytes are read (a longer one is not believed).
_EBML_MASTERS = frozenset(
    {(0, _EBML), (0, _SEGMENT), (_SEGMENT, _INFO), (_SEGMENT, _TRACKS), (_TRACKS, _TRACK_ENTRY), (_TRACK_ENTRY, _VIDEO)}
)
_EBML_LEAVES = {
    (_EBML, _DOC_TYPE): _MAX_DOC_TYPE,
    (_INFO, _TIMESTAMP_SCALE): _MAX_UINT,
    (_INFO, _DURATION): 8,
    (_TRACK_ENTRY, _TRACK_TYPE): _MAX_UINT,
    (_TRACK_ENTRY, _FLAG_ENABLED): _MAX_UINT,
    (_VIDEO, _PIXEL_WIDTH): _MAX_UINT,
    (_VIDEO, _PIXEL_HEIGHT): _MAX_UINT,
    (_VIDEO, _DISPLAY_WIDTH): _MAX_UINT,
    (_VIDEO, _DISPLAY_HEIGHT): _MAX_UINT,
    (_VIDEO, _DISPLAY_UNIT): _MAX_UINT,
}


def _vint_length(first: int) -> int:
    """The length of an EBML variable-size integer from its first byte (1..8), or 0 if it is invalid."""
    return 9 - first.bit_length() if first else 0


class _EbmlReader(_Reader[int]):
    min_header = 2

    def __init__(self) -> None:
        super().__init__()
        self.container: Container | None = None
        self.doc_type_read = False
        self.info: dict[int, int | float | None] = {}
        self.info_read = False
        self.tracks_read = False
        self.duration_s: float | None = None
        self.entry: dict[int, int] = {}
        self.video_size: tuple[int, int] | None = None

    def header_length(self, header: bytearray) -> int | None:
        if not header:
            return 1
        id_length = _vint_length(header[0])
        if not 1 <= id_length <= 4:  # Matroska IDs are at most 4 bytes long
            return None
        if len(header) <= id_length:
            return id_length + 1
        size_length = _vint_length(header[id_length])
        return id_length + size_length if size_length else None

    def on_header(self, header: bytes, start: int) -> None:
        id_length = _vint_length(header[0])
        element = int.from_bytes(header[:id_length], "big")
        size_bytes = header[id_length:]
        size: int | None = int.from_bytes(size_bytes, "big") & ((1 << (7 * len(size_bytes))) - 1)
        if size == (1 << (7 * len(size_bytes))) - 1:  # all value bits set: unknown size
            size = None
        # A master of unknown size ends where an element that cannot be its child begins.
        while self.stack and self.stack[-1].open_ended and self._ends_open_master(element):
            self.on_close(self.stack.pop())
            if self.done:
                return
        parent_end = self.parent_end()
        end = parent_end if size is None else self.pos + size
        if size is not None and parent_end is not None and end is not None and end > parent_end:
            self.give_up(f"element {element:#x} at offset {start} overruns its parent")
            return
        parent = self.stack[-1].kind if self.stack else 0
        if (parent, element) in _EBML_MASTERS:
            if element == _TRACK_ENTRY:
                self.entry = {}
            self.descend(element, end, open_ended=size is None)
        elif size is None:
            if parent == _SEGMENT:
                # A Cluster (or another Segment child) of unknown size: walk over its children, skipping each.
                self.descend(element, end, open_ended=True)
            else:
                self.give_up(f"element {element:#x} at offset {start} has an unknown size")
        elif (need := _EBML_LEAVES.get((parent, element))) is not None and size <= need:
            self.read_leaf(element, end, need)
        else:
            self.skip(end)

    def _ends_open_master(self, element: int) -> bool:
        kind = self.stack[-1].kind
        if kind == _SEGMENT:
            return element in _TOP_LEVEL
        if kind in _SEGMENT_CHILDREN:
            return element in _SEGMENT_CHILDREN or element in _TOP_LEVEL
        # The EBML header, a TrackEntry or its Video: they end where an element of a level above begins.
        return element in _SEGMENT_CHILDREN or element in _TOP_LEVEL or element == _TRACK_ENTRY

    def on_leaf(self, kind: int, payload: bytes) -> None:
        if kind == _DOC_TYPE:
            self.container = _KNOWN_DOC_TYPES.get(payload.rstrip(b"\x00"))
            self.doc_type_read = True
        elif kind == _DURATION:
            self.info[_DURATION] = _ebml_float(payload)
        elif kind == _TIMESTAMP_SCALE:
            self.info[_TIMESTAMP_SCALE] = int.from_bytes(payload, "big")
        else:  # a TrackEntry's or its Video's unsigned integers
            self.entry[kind] = int.from_bytes(payload, "big")

    def on_close(self, closed: _Open[int]) -> None:
        kind = closed.kind
        if kind == _EBML and (not self.doc_type_read or self.container is None):
            self.give_up("an EBML document that is not WebM or Matroska")
        elif kind == _INFO and not self.info_read:
            self.info_read = True
            self.duration_s = _ebml_duration(self.info)
        elif kind == _TRACK_ENTRY and self.video_size is None:
            self.video_size = _ebml_video_size(self.entry)
        elif kind == _TRACKS:
            self.tracks_read = True
        elif kind == _SEGMENT:
            self.done = True
        if self.info_read and self.tracks_read:
            self.done = True

    def result(self) -> MediaInfo | None:
        if self.container is None:
            return None
        size = self.video_size or (None, None)
        return MediaInfo(self.container, _believable_duration(self.duration_s), *size)


def _ebml_float(payload: bytes) -> float | None:
    if len(payload) == 4:
        return float(struct.unpack(">f", payload)[0])
    if len(payload) == 8:
        return float(struct.unpack(">d", payload)[0])
    return None


def _ebml_duration(info: dict[int, int | float | None]) -> float | None:
    duration = info.get(_DURATION)
    scale = info.get(_TIMESTAMP_SCALE, _DEFAULT_TIMESTAMP_SCALE_NS)
    if duration is None or not scale:
        return None
    return _believable_duration(duration * float(scale) / _NS_PER_S)


def _ebml_video_size(entry: dict[int, int]) -> tuple[int, int] | None:
    """The first enabled video track's size: DisplayWidth/Height when given in pixels, else the coded size."""
    if entry.get(_TRACK_TYPE) != _VIDEO_TRACK_TYPE or entry.get(_FLAG_ENABLED, 1) == 0:
        return None
    width, height = entry.get(_PIXEL_WIDTH), entry.get(_PIXEL_HEIGHT)
    if entry.get(_DISPLAY_UNIT, _DISPLAY_UNIT_PIXELS) == _DISPLAY_UNIT_PIXELS:
        width, height = entry.get(_DISPLAY_WIDTH, width), entry.get(_DISPLAY_HEIGHT, height)
    if width is None or height is None:
        return None
    return _believable_size(width, height)
