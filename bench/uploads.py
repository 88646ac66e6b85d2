"""The files the HTTP sections upload, made once per run from the committed data.

- 400-px photos: the clothing test photos (never in the catalog) scaled back to 400 px
  wide and saved as JPEG quality 90, as the original data set had them (the committed
  copies were reduced to 256 px to keep the repository lean).
- a 12-megapixel phone photo: a test photo upscaled to 4032x3024 with sensor-like grain,
  JPEG quality 90, about 3 MB (grain, not a smooth upscale, is what makes a real photo
  that big and that slow to entropy-decode).
- a 6300x6300 PNG of about 150 kB: a flat drawing, tiny on the wire but 40 megapixels
  (120 MB) decoded; the app must refuse it from its header.
- Fashion-MNIST test images as PNG, and bad files (truncated JPEG, text, BMP, empty).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from app.imaging.display import png_bytes
from app.photo_dataset import load_photos

PHOTO_WIDTH = 400
JPEG_QUALITY = 90
TWELVE_MP = (4032, 3024)
GRAIN = 12          # +- grey levels of uniform noise on the 12-MP photo
LARGE_PNG_SIDE = 6300


def jpeg_bytes(img: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def spread(n: int, total: int) -> np.ndarray:
    """``n`` indexes evenly over ``total`` items (every category of a category-ordered list), fixed."""
    return np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))


def test_photo_images(n: int) -> list[Image.Image]:
    """``n`` test photos spread over the categories, decoded."""
    photos = load_photos("test")
    return [Image.open(io.BytesIO(photos.read(int(i)))).convert("RGB") for i in spread(n, len(photos))]


def photo_400px(img: Image.Image) -> bytes:
    """A photo 400 px wide (aspect kept), JPEG quality 90."""
    height = round(img.height * PHOTO_WIDTH / img.width)
    return jpeg_bytes(img.resize((PHOTO_WIDTH, height), Image.Resampling.LANCZOS))


def photo_12mp(img: Image.Image, seed: int = 0) -> bytes:
    """The photo as a 12-megapixel phone picture (4032x3024, portrait if the photo is), grain added."""
    size = TWELVE_MP if img.width >= img.height else TWELVE_MP[::-1]
    big = np.asarray(img.resize(size, Image.Resampling.BICUBIC)).astype(np.int16)
    big += np.random.default_rng(seed).integers(-GRAIN, GRAIN + 1, size=big.shape, dtype=np.int16)
    return jpeg_bytes(Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)))


def large_png(side: int = LARGE_PNG_SIDE) -> bytes:
    """A flat RGB drawing of a garment, ``side`` pixels square: small file, huge decode."""
    img = Image.new("RGB", (side, side), (236, 232, 226))
    draw = ImageDraw.Draw(img)
    s = side / 6300
    draw.ellipse((1200 * s, 900 * s, 5100 * s, 5600 * s), fill=(70, 90, 140))
    draw.rectangle((2500 * s, 400 * s, 3800 * s, 1200 * s), fill=(50, 60, 100))
    draw.ellipse((2600 * s, 2400 * s, 3700 * s, 3500 * s), fill=(200, 40, 40))
    return png_bytes(img, optimize=False)


def fashion_pngs(images: np.ndarray) -> list[bytes]:
    return [png_bytes(x, optimize=False) for x in images]


def bad_uploads(photo: bytes) -> list[bytes]:
    """Files the app must refuse with a 4xx: a truncated JPEG, a text file, a BMP, an empty file."""
    bmp = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 64, 32)).save(bmp, "BMP")
    return [photo[: len(photo) // 2], b"this is not an image\n" * 20, bmp.getvalue(), b""]


@dataclass
class Uploads:
    """Every file the HTTP sections send, encoded once before any clock starts."""

    photos_400px: list[bytes]
    jpeg_12mp: bytes
    jpeg_12mp_size: tuple[int, int]
    large_png: bytes
    fashion: list[bytes]
    bad: list[bytes]

    @classmethod
    def make(cls, photos: int, fashion_images: np.ndarray) -> Uploads:
        images = test_photo_images(photos)
        big = photo_12mp(images[0])
        return cls([photo_400px(img) for img in images], big, Image.open(io.BytesIO(big)).size, large_png(),
                   fashion_pngs(fashion_images), bad_uploads(photo_400px(images[0])))

    @property
    def good(self) -> list[bytes]:
        """What a load test sends as good uploads: the photos and the Fashion-MNIST PNGs."""
        return self.photos_400px + self.fashion

    def describe(self) -> dict:
        return {"photos_400px": len(self.photos_400px),
                "photo_bytes_mean": int(np.mean([len(b) for b in self.photos_400px])),
                "jpeg_12mp_bytes": len(self.jpeg_12mp), "jpeg_12mp_size": list(self.jpeg_12mp_size),
                "large_png_bytes": len(self.large_png), "large_png_size": [LARGE_PNG_SIDE, LARGE_PNG_SIDE],
                "fashion_pngs": len(self.fashion), "fashion_bytes_mean": int(np.mean([len(b) for b in self.fashion])),
                "bad": ["truncated JPEG", "text file", "BMP", "empty file"]}
