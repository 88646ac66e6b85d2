"""What a JPEG will cost to decode, read from its markers alone, and the refusal of one that costs too much.

A progressive JPEG is decoded scan by scan, and every scan visits every 8x8 block of the
components it covers, whatever it holds: a scan of nothing but end-of-band runs is about
40 bytes on the wire and a whole pass over the image in the decoder (measured here: 9 ms
a scan on a 12-megapixel photo, so the 14,000 scans of a 700 kB file cost two minutes).
Walking the markers needs no pixel and stops at the first limit passed, so even a 10 MB
file is judged in about a millisecond. The limits:

- at most ``MAX_SCANS`` scans (64): libjpeg's progressive script writes 10 (6 for grey),
  the most thorough optimisers (mozjpeg, jpegrescan) about 20;
- at most ``MAX_BLOCK_VISITS`` (4 million) 8x8 blocks visited by all scans together:
  libjpeg's script visits each block 5.3 times on average, so a 24-megapixel progressive
  photo needs 3 million (a 12-megapixel one 1.5 million, decoded here in 0.15 s); a
  baseline JPEG of the 40-megapixel limit needs 1.9 million at most (one visit a block);
- at most ``MAX_SEGMENTS`` (1,000) marker segments: cameras write 10 to 40, and Pillow
  reads those before the first scan one by one in Python (200,000 took 0.3 s);
- no lossless or hierarchical frames: rare, and decoded at full size, never at 1/8 scale.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from math import ceil

from .rejected import ImageRejected

MAX_SCANS = 64
MAX_BLOCK_VISITS = 4_000_000
MAX_SEGMENTS = 1_000

# A marker: 0xFF and a code that is none of: a stuffed zero (0x00, entropy-coded data), a fill
# byte (0xFF) or a restart marker (RST0-7, inside entropy-coded data). libjpeg skips anything
# else between segments the same way, so this walk reads the segments libjpeg reads.
MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
SOI, EOI, SOS, TEM = 0xD8, 0xD9, 0xDA, 0x01
FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0-15 less DHT, JPG and DAC
UNSUPPORTED_FRAMES = {0xC3, 0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF}  # lossless or hierarchical


def is_jpeg(data: bytes) -> bool:
    """The signature Pillow reads as JPEG (or MPO, whose first picture is a JPEG)."""
    return data[:3] == b"\xff\xd8\xff"


def segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) of each marker segment of the first picture, in file order, up to its end (EOI)."""
    pos = 2  # after SOI
    while (found := MARKER.search(data, pos)) is not None:
        code, pos = data[found.start() + 1], found.end()
        if code == EOI:
            return
        if code in (SOI, TEM):  # no payload
            yield code, b""
            continue
        length = int.from_bytes(data[pos:pos + 2], "big")
        yield code, data[pos + 2:pos + length]
        pos += max(length, 2)  # after SOS, the entropy-coded data: skipped by the next search


@dataclass(frozen=True)
class Frame:
    """A frame header (SOFn): its kind and how many 8x8 blocks each component has."""

    marker: int
    blocks: dict[int, int]  # component id -> blocks


def read_frame(marker: int, payload: bytes) -> Frame:
    if len(payload) < 6:
        return Frame(marker, {})
    height, width, count = int.from_bytes(payload[1:3], "big"), int.from_bytes(payload[3:5], "big"), payload[5]
    components = [payload[6 + 3 * i: 9 + 3 * i] for i in range(count) if len(payload) >= 9 + 3 * i]
    sampling = {c[0]: (c[1] >> 4, c[1] & 15) for c in components}
    h_max = max((h for h, _ in sampling.values()), default=1) or 1
    v_max = max((v for _, v in sampling.values()), default=1) or 1
    return Frame(marker, {cid: ceil(ceil(width * h / h_max) / 8) * ceil(ceil(height * v / v_max) / 8)
                          for cid, (h, v) in sampling.items()})


def scan_components(payload: bytes) -> list[int]:
    """The component ids a scan header (SOS) names."""
    count = payload[0] if payload else 0
    return [payload[1 + 2 * i] for i in range(count) if len(payload) > 1 + 2 * i]


def check_jpeg_cost(data: bytes) -> None:
    """Refuse (ImageRejected) a JPEG whose markers say decoding it would cost far more than its pixels need."""
    frame: Frame | None = None
    scans = visits = 0
    for count, (marker, payload) in enumerate(segments(data), 1):
        if count > MAX_SEGMENTS:
            raise ImageRejected(f"the JPEG has more than {MAX_SEGMENTS:,} markers (a photo has a few dozen); "
                                f"save it again as a standard JPEG", 413)
        if marker in FRAMES and frame is None:
            if marker in UNSUPPORTED_FRAMES:
                raise ImageRejected("lossless and hierarchical JPEGs are not supported; "
                                    "save it as a standard JPEG", 415)
            frame = read_frame(marker, payload)
        elif marker == SOS:
            scans += 1
            if scans > MAX_SCANS:
                raise ImageRejected(f"the JPEG has more than {MAX_SCANS} scans (a progressive JPEG has about 10), "
                                    f"which would only make it slow to decode; save it again as a standard JPEG",
                                    413)
            visits += sum(frame.blocks.get(cid, 0) for cid in scan_components(payload)) if frame else 0
            if visits > MAX_BLOCK_VISITS:
                raise ImageRejected(f"the JPEG's {scans} scans would take too long to decode (over "
                                    f"{MAX_BLOCK_VISITS / 1e6:.0f} million 8x8 blocks); save it as a baseline "
                                    f"(non-progressive) JPEG or send a smaller picture", 413)
