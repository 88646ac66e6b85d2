"""Uploads built to be cheap to send and slow to decode (issue 17), made from scratch for tests and benchmarks.

Every file is a real image Pillow writes, then altered the way an attacker would: nothing
is committed, so no large binary lives in the repository.

- a scan bomb: a progressive JPEG whose last scan (a Huffman table and an AC refinement
  scan of a flat picture: about 50 bytes) is repeated until the file has the size asked
  for; libjpeg decodes every copy as a whole pass over the picture (on 4032x3024 pixels,
  9 ms each);
- a strip: a JPEG 10000x1 (or 1x10000) pixels, which the photo model's scaling once turned
  into a 147,456x192 image;
- marker floods: thousands of comment or Huffman-table segments.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

PHONE = (4032, 3024)
EOI = b"\xff\xd9"


def progressive_jpeg(size: tuple[int, int] = PHONE, mode: str = "RGB", colour=(120, 80, 200), **options) -> bytes:
    """A flat picture as a progressive JPEG (libjpeg's 10-scan script; 6 scans for grey)."""
    out = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(out, "JPEG", progressive=True, **options)
    return out.getvalue()


def last_scan(jpeg: bytes) -> bytes:
    """The last Huffman table and scan of a progressive JPEG, its entropy-coded data included (no EOI)."""
    return jpeg[jpeg.rfind(b"\xff\xc4"):-len(EOI)]


def scan_bomb(nbytes: int, size: tuple[int, int] = PHONE) -> bytes:
    """A valid progressive JPEG of about ``nbytes``: its last scan repeated over and over."""
    jpeg = progressive_jpeg(size)
    unit = last_scan(jpeg)
    copies = max(1, (nbytes - len(jpeg)) // len(unit))
    return jpeg[:-len(EOI)] + unit * copies + EOI


def with_scans(scans: int, size: tuple[int, int] = (256, 256)) -> bytes:
    """A progressive JPEG with about ``scans`` scans (its last one repeated)."""
    jpeg = progressive_jpeg(size)
    extra = max(0, scans - jpeg.count(b"\xff\xda"))
    return jpeg[:-len(EOI)] + last_scan(jpeg) * extra + EOI


def flooded(jpeg: bytes, segments: int, segment: bytes = b"\xff\xfe\x00\x02", where: str = "header") -> bytes:
    """``segments`` extra marker segments (comments by default): after SOI, or before the last scan."""
    if where == "header":
        return jpeg[:2] + segment * segments + jpeg[2:]
    at = jpeg.rfind(b"\xff\xc4")
    return jpeg[:at] + segment * segments + jpeg[at:]


def strip_jpeg(width: int = 10_000, height: int = 1, seed: int = 0) -> bytes:
    """A JPEG of noise ``width`` x ``height`` pixels: a few kB, the extreme aspect ratio is what matters."""
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise).save(out, "JPEG", quality=75)
    return out.getvalue()
