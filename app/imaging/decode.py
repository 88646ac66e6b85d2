"""Uploaded bytes to an upright image, refusing what is not a usable image before paying for it.

The size is read from the header and checked before any pixel is decoded. JPEGs are
decoded at a reduced scale (DCT scaling, "draft" mode) when the model needs far fewer
pixels than the file has, so a 12-megapixel photo costs little; PNG, WebP and GIF have no
such shortcut and are decoded whole, so they get a quarter of the pixel limit (a
40-megapixel PNG took 0.4-0.7 s and 120 MB to decode here). Animated images give their
first frame; EXIF orientation is applied. Every refusal is an ``ImageRejected`` with the HTTP status that fits and a
message written for the person who uploaded the file, never a decoder's internals.

Cheap to send and slow to decode is refused too: a JPEG's markers are read before Pillow
sees it (app/imaging/jpeg_cost.py: thousands of empty progressive scans cost minutes), and,
for whatever shape nobody thought of, decoding gets a CPU budget it cannot outlive: Pillow
is fed the file in small chunks and the next chunk is refused once this thread has spent
``DECODE_CPU_SECONDS``, which stops the decoder for real (no thread is left running on).
"""
from __future__ import annotations

import io
import time
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from .jpeg_cost import check_jpeg_cost, is_jpeg
from .rejected import ImageRejected

# MPO is the multi-picture JPEG many cameras write: Pillow names it apart, its first picture is a JPEG.
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "GIF"}
SCALABLE_FORMATS = {"JPEG", "MPO"}  # decodable at 1/2, 1/4 or 1/8 scale
MAX_PIXELS = 40_000_000
WHOLE_DECODE_SHARE = 4  # formats decoded whole get max_pixels / 4 (10 megapixels by default)
WORK_SIDE = 512
EXIF_ORIENTATION = 0x0112  # decoded images keep at least this many pixels a side where the file has them
# The slowest upload within every limit here takes 0.4 s (a 10 MB progressive JPEG); 2 s of CPU
# leaves room for slower machines and stays far below the worker timeout (60 s).
DECODE_CPU_SECONDS = 2.0
DECODE_CHUNK = 16_384  # bytes fed to the decoder at a time, the budget checked between (4 KiB slowed PNGs 15%)


class BudgetedFile(io.BytesIO):
    """The upload as a file that refuses to be read further once this thread has spent ``cpu_seconds``.

    Thread CPU time, not wall time: a busy machine slows every request, and must not make
    ordinary uploads fail; only the work this decode does counts.
    """

    def __init__(self, data: bytes, cpu_seconds: float):
        super().__init__(data)
        self.deadline = time.thread_time() + cpu_seconds
        self.cpu_seconds = cpu_seconds

    def read(self, size: int | None = -1) -> bytes:
        if time.thread_time() > self.deadline:
            raise ImageRejected(f"the image takes too long to decode (over {self.cpu_seconds:g} s); "
                                f"send a smaller or simpler picture", 413)
        return super().read(size)


def pixel_limit(fmt: str, max_pixels: int) -> int:
    return max_pixels if fmt in SCALABLE_FORMATS else max_pixels // WHOLE_DECODE_SHARE


def check_size(img: Image.Image, max_pixels: int) -> None:
    """Refuse, from the header alone, an image with more pixels than its format may have."""
    w, h = img.size
    limit = pixel_limit(img.format, max_pixels)
    if w * h > limit:
        others = "" if img.format in SCALABLE_FORMATS else f" ({img.format} images; JPEG {max_pixels / 1e6:.0f})"
        raise ImageRejected(f"the image is {w}x{h} pixels; the limit is {limit / 1e6:.0f} megapixels{others}; "
                            f"send a smaller picture", 413)


def decode(data: bytes, max_pixels: int = MAX_PIXELS, min_side: int = WORK_SIDE,
           cpu_seconds: float = DECODE_CPU_SECONDS) -> Image.Image:
    """Bytes to an upright PIL image (first frame), at least ``min_side`` a side where the file has that much."""
    if not data:
        raise ImageRejected("the file is empty")
    if is_jpeg(data):
        check_jpeg_cost(data)  # before Pillow reads a byte: its JPEG header reader is Python
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(BudgetedFile(data, cpu_seconds))
            if img.format not in ALLOWED_FORMATS:
                raise ImageRejected(f"{img.format} images are not supported; use JPEG, PNG, WebP or GIF", 415)
            check_size(img, max_pixels)
            img.seek(0)
            if img.format in SCALABLE_FORMATS:
                img.draft(img.mode, (min_side, min_side))  # decode at 1/2..1/8 scale: far less time and memory
            img.decodermaxblock = DECODE_CHUNK
            img.load()
            if img.getexif().get(EXIF_ORIENTATION, 1) in (1, None):
                return img  # upright already (exif_transpose would return a full-size copy)
            return ImageOps.exif_transpose(img)
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("the file is not an image (or not one we can read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"the image has far too many pixels; the limit is {max_pixels / 1e6:.0f} megapixels "
                            f"for JPEG, {pixel_limit('PNG', max_pixels) / 1e6:.0f} for other formats; "
                            f"send a smaller picture", 413) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("the image is damaged or truncated") from None
