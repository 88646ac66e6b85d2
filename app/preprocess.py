"""Real photos to model input: what Fashion-MNIST looks like.

Fashion-MNIST items are greyscale, light on a black background, trimmed to the garment,
scaled so the longest side fills the frame and centred. Photos of clothes are usually
dark-on-light, colour, rotated by EXIF, shaded, noisy and of any size, so each of those
is undone here. Colour models (3-channel input, the VGG-16 option) get the photo itself,
letterboxed to their input size.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
MAX_PIXELS = 40_000_000
WORK_SIDE = 512      # photos are shrunk to this before any float work: 28 px out needs no more
BORDER = 0.06        # share of width/height along the edges read as "background"
FOREGROUND = 0.12    # share of the garment's brightest level above which a pixel is garment
OUTLIER = 40.0       # grey levels: a border pixel this far from the background fit is garment
MIN_CONTRAST = 12.0  # grey levels: weaker "garments" are JPEG ringing or noise on a blank photo


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
            if img.format == "JPEG":
                img.draft(img.mode, (WORK_SIDE, WORK_SIDE))  # decode big JPEGs at 1/2..1/8 scale: far less memory
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


def flatten(img: Image.Image) -> Image.Image:
    """Any mode (palette, CMYK, 16-bit, transparent) to 8-bit "L" or "RGB", at most WORK_SIDE a side.

    Transparency becomes white, the usual background of a product cut-out.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        img = Image.fromarray(np.rint(255.0 * arr / max(float(arr.max()), 1.0)).astype(np.uint8))
    elif img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    img = img.convert("L" if img.mode in ("L", "1") else "RGB")
    img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    return img


def to_grey(img: Image.Image) -> np.ndarray:
    """A decoded image as a float greyscale array (0-255)."""
    return np.asarray(flatten(img).convert("L"), dtype=np.float32)


def corner_level(grey: np.ndarray) -> float:
    """The median of the four corner patches' medians: the first guess at the background.

    Corners, not whole borders: a garment often touches an edge (trousers top to bottom)
    but rarely fills a corner, let alone two.
    """
    h, w = grey.shape
    ch, cw = max(1, round(h * BORDER)), max(1, round(w * BORDER))
    return float(np.median([np.median(grey[rows, cols]) for rows in (slice(0, ch), slice(h - ch, h))
                            for cols in (slice(0, cw), slice(w - cw, w))]))


def border_pixels(grey: np.ndarray, most: int = 5_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of an even sample of the pixels in the BORDER-wide frame of the image."""
    h, w = grey.shape
    bh, bw = max(1, round(h * BORDER)), max(1, round(w * BORDER))
    frame = np.ones((h, w), bool)
    frame[bh: h - bh, bw: w - bw] = False
    rows, cols = np.nonzero(frame)
    step = max(1, len(rows) // most)
    rows, cols = rows[::step], cols[::step]
    return rows, cols, grey[rows, cols]


def background(grey: np.ndarray) -> np.ndarray:
    """The background as a plane fitted to the border, so uneven lighting is subtracted too.

    Border pixels far from the corners' level, then far from the first fit, are garment
    touching the edge and are left out of the fit.
    """
    h, w = grey.shape
    rows, cols, values = border_pixels(grey)
    design = np.stack([np.ones(len(values)), rows / h, cols / w], axis=1)
    coef = np.array([corner_level(grey), 0.0, 0.0])
    for tolerance in (OUTLIER, OUTLIER / 2):
        keep = np.abs(design @ coef - values) < tolerance
        if keep.sum() >= 3:
            coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
    y = np.arange(h, dtype=np.float32)[:, None] / h
    x = np.arange(w, dtype=np.float32)[None, :] / w
    return (coef[0] + coef[1] * y + coef[2] * x).astype(np.float32)


def foreground(grey: np.ndarray) -> np.ndarray:
    """Garment light on black, its brightest (99.5th percentile) level stretched to 255; all zero if none."""
    bg = background(grey)
    if float(np.median(bg)) > 127:  # light background: negate so the garment is the light part
        grey, bg = 255.0 - grey, 255.0 - bg
    fg = np.clip(grey - bg, 0, None)
    peak = float(np.percentile(fg, 99.5))
    return np.clip(fg * (255.0 / peak), 0, 255) if peak >= MIN_CONTRAST else np.zeros_like(fg)


def garment_box(fg: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of the garment pixels; a pixel counts only if its blurred neighbourhood does too,
    so specks of noise and JPEG ringing do not widen the box, and the blur does not either."""
    radius = max(1.0, max(fg.shape) / 200)
    smooth = np.asarray(Image.fromarray(fg.astype(np.uint8)).filter(ImageFilter.BoxBlur(radius)))
    mask = (fg > 255.0 * FOREGROUND) & (smooth > 255.0 * FOREGROUND)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return slice(None), slice(None)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def fit(img: Image.Image, size: tuple[int, int], fill: int | tuple[int, ...] = 0) -> Image.Image:
    """Resize so the longest side fills ``size`` (h, w), aspect kept, centred on ``fill``."""
    scale = min(size[0] / img.height, size[1] / img.width)
    new_w, new_h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    out = Image.new(img.mode, (size[1], size[0]), fill)
    out.paste(img.resize((new_w, new_h), Image.Resampling.LANCZOS), ((size[1] - new_w) // 2, (size[0] - new_h) // 2))
    return out


def normalise(grey: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Greyscale array to a Fashion-MNIST-like uint8 image of ``size`` (h, w)."""
    fg = foreground(grey)
    if not fg.any():
        return np.zeros(size, np.uint8)
    crop = fg[garment_box(fg)]
    return np.asarray(fit(Image.fromarray(crop.astype(np.uint8)), size))


def is_model_ready(grey: np.ndarray, size: tuple[int, int]) -> bool:
    """A catalog image already in Fashion-MNIST form (exact size, dark border) is used as is."""
    if grey.shape != size:
        return False
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(edge)) < 16


def as_image(img: Image.Image | np.ndarray) -> Image.Image:
    """Arrays (h, w), (h, w, 1), (h, w, 3) or (h, w, 4) with values 0-255 as a PIL image (rounded to 8 bits)."""
    if isinstance(img, Image.Image):
        return img
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return Image.fromarray(np.rint(np.clip(arr, 0, 255)).astype(np.uint8))


def letterbox(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Colour input for 3-channel models: the whole RGB photo, aspect kept, padded with its corner colour."""
    rgb = flatten(img).convert("RGB")
    corner = np.asarray(rgb)[:max(1, rgb.height // 16), :max(1, rgb.width // 16)].reshape(-1, 3)
    fill = tuple(int(v) for v in np.median(corner, axis=0))
    return np.asarray(fit(rgb, size, fill), np.float32)


def prepare(img: Image.Image | np.ndarray, input_shape: tuple[int, ...] = (28, 28, 1)) -> np.ndarray:
    """A decoded image (PIL or array) to one model input of ``input_shape`` with values 0-255."""
    size = tuple(input_shape[:2])
    if input_shape[2] == 3:
        return letterbox(as_image(img), size)
    if isinstance(img, np.ndarray) and img.shape[:2] == size and img.size == size[0] * size[1]:
        grey = img.reshape(size).astype(np.float32)  # model-sized grey (gallery items): no PIL round trip
    else:
        grey = to_grey(as_image(img))
    out = grey if is_model_ready(grey, size) else normalise(grey, size)
    out = np.asarray(out, np.float32)[..., None]
    return np.repeat(out, input_shape[2], axis=-1) if input_shape[2] != 1 else out


def load_upload(data: bytes, input_shape: tuple[int, ...] = (28, 28, 1), max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Uploaded bytes to model input; raises ImageRejected for anything unusable."""
    return prepare(decode(data, max_pixels), input_shape)
