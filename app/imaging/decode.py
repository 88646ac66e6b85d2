"""Uploaded bytes to an upright image, refusing what is not a usable image before paying for it.

The size is read from the header and checked before any pixel is decoded. JPEGs are
decoded at a reduced scale (DCT scaling, "draft" mode) when the model needs far fewer
pixels than the file has, so a 12-megapixel photo costs little; PNG, WebP and GIF have no
such shortcut and are decoded whole, so they get a quarter of the pixel limit (a
40-megapixel PNG took 0.4-0.7 s and 120 MB to decode here). Animated images give their
first frame; EXIF orientation is applied. Every refusal is an ``ImageRejected`` with the HTTP status that fits and a
message written for the person who uploaded the file, never a decoder's internals.
"""
from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

# MPO is the multi-picture JPEG many cameras write: Pillow names it apart, its first picture is a JPEG.
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "GIF"}
SCALABLE_FORMATS = {"JPEG", "MPO"}  # decodable at 1/2, 1/4 or 1/8 scale
MAX_PIXELS = 40_000_000
WHOLE_DECODE_SHARE = 4  # formats decoded whole get max_pixels / 4 (10 megapixels by default)
WORK_SIDE = 512
EXIF_ORIENTATION = 0x0112  # decoded images keep at least this many pixels a side where the file has them


class ImageRejected(ValueError):
    """An upload that cannot be used; ``status`` is the HTTP code that fits."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


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


def decode(data: bytes, max_pixels: int = MAX_PIXELS, min_side: int = WORK_SIDE) -> Image.Image:
    """Bytes to an upright PIL image (first frame), at least ``min_side`` a side where the file has that much."""
    if not data:
        raise ImageRejected("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise ImageRejected(f"{img.format} images are not supported; use JPEG, PNG, WebP or GIF", 415)
            check_size(img, max_pixels)
            img.seek(0)
            if img.format in SCALABLE_FORMATS:
                img.draft(img.mode, (min_side, min_side))  # decode at 1/2..1/8 scale: far less time and memory
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
