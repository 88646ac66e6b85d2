"""Real photos to model input: what Fashion-MNIST looks like.

Fashion-MNIST items are greyscale, light on a black background, trimmed to the garment,
scaled so the longest side fills the frame and centred. Photos of clothes are usually
dark-on-light, colour, rotated by EXIF, and of any size, so each of those is undone here.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
MAX_PIXELS = 40_000_000
BORDER = 0.06        # share of width/height read as "background"
FOREGROUND = 0.12    # share of the brightest level above which a pixel is garment


class ImageRejected(ValueError):
    """An upload that cannot be used; ``status`` is the HTTP code that fits."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Bytes to an upright PIL image (first frame), refusing non-images and pixel bombs before decoding."""
    if not data:
        raise ImageRejected("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise ImageRejected(f"{img.format} images are not supported; use JPEG, PNG, WebP or GIF", 415)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected(f"the image is {w}x{h} pixels; the limit is {max_pixels / 1e6:.0f} megapixels", 413)
            img.seek(0)
            img.load()
            return ImageOps.exif_transpose(img)
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("the file is not an image (or not one we can read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"the image is too large to decode safely ({exc})", 413) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"the image is damaged or truncated ({exc})") from None


def to_grey(img: Image.Image) -> np.ndarray:
    """Any mode (palette, CMYK, 16-bit, transparent) to float greyscale; transparency becomes white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        return 255.0 * arr / max(float(arr.max()), 1.0)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32)


def normalise(grey: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Greyscale array to a Fashion-MNIST-like uint8 image of ``size`` (h, w)."""
    h, w = grey.shape
    bh, bw = max(1, int(h * BORDER)), max(1, int(w * BORDER))
    border = np.concatenate([grey[:bh].ravel(), grey[-bh:].ravel(), grey[:, :bw].ravel(), grey[:, -bw:].ravel()])
    background = float(np.median(border))
    if background > 127:  # light background: negate so the garment is the light part
        grey, background = 255.0 - grey, 255.0 - background
    fg = np.clip(grey - background, 0, None)
    peak = float(np.percentile(fg, 99.5)) if fg.max() > 0 else 0.0
    if peak <= 0:
        return np.zeros(size, np.uint8)
    fg = np.clip(fg * (255.0 / peak), 0, 255)
    rows, cols = np.nonzero(fg > 255.0 * FOREGROUND)
    crop = fg[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1] if len(rows) else fg
    ch, cw = crop.shape
    scale = min(size[0] / ch, size[1] / cw)
    new_h, new_w = max(1, round(ch * scale)), max(1, round(cw * scale))
    resized = Image.fromarray(crop.astype(np.uint8)).resize((new_w, new_h), Image.Resampling.LANCZOS)
    out = np.zeros(size, np.uint8)
    top, left = (size[0] - new_h) // 2, (size[1] - new_w) // 2
    out[top: top + new_h, left: left + new_w] = np.asarray(resized)
    return out


def is_model_ready(grey: np.ndarray, size: tuple[int, int]) -> bool:
    """A catalog image already in Fashion-MNIST form (exact size, dark border) is used as is."""
    if grey.shape != size:
        return False
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(edge)) < 16


def prepare(img: Image.Image | np.ndarray, input_shape: tuple[int, ...] = (28, 28, 1)) -> np.ndarray:
    """A decoded image (PIL or array) to one model input of ``input_shape`` with values 0-255."""
    grey = to_grey(img) if isinstance(img, Image.Image) else np.asarray(img, np.float32)
    if grey.ndim == 3:
        grey = grey @ np.array([0.299, 0.587, 0.114], np.float32)
    size = tuple(input_shape[:2])
    out = grey if is_model_ready(grey, size) else normalise(grey, size)
    out = np.asarray(out, np.float32)[..., None]
    return np.repeat(out, input_shape[2], axis=-1) if input_shape[2] != 1 else out


def load_upload(data: bytes, input_shape: tuple[int, ...] = (28, 28, 1), max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Uploaded bytes to model input; raises ImageRejected for anything unusable."""
    return prepare(decode(data, max_pixels), input_shape)
