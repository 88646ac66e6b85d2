"""A crop box on an uploaded picture: search one garment of a photo that shows several.

The box is ``x,y,w,h`` in fractions (0-1) of the picture's width and height as it is shown,
after its EXIF orientation is applied: the same numbers whatever size the browser scaled the
photo to before uploading, and whatever scale the decoder chose (JPEGs decode at 1/2-1/8).
The crop is made on the server, after decoding.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import Image

MIN_SIDE = 0.05    # a box narrower or shorter than 5% of the picture has too few pixels to search
SLACK = 1e-4       # rounding in a client's arithmetic: 0.3 + 0.7 may come out as 1.00001
NUMBER = re.compile(r"\s*(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*")
FORMAT = "four fractions of the picture's width and height, x,y,w,h (for example 0.1,0.2,0.5,0.6)"


@dataclass(frozen=True)
class Box:
    """Left, top, width and height as fractions of the picture."""

    x: float
    y: float
    w: float
    h: float

    @classmethod
    def parse(cls, raw: str) -> Box:
        """``"x,y,w,h"``; ValueError with a message a user can act on."""
        parts = raw.split(",")
        if len(parts) != 4 or not all(NUMBER.fullmatch(p) for p in parts):
            raise ValueError(f"box must be {FORMAT}; got {raw!r}")
        x, y, w, h = (float(p) for p in parts)
        if w < MIN_SIDE or h < MIN_SIDE:
            raise ValueError(f"box is too small: its width and height must be at least {MIN_SIDE:g} "
                             f"(a twentieth of the picture); got {raw!r}")
        if x + w > 1 + SLACK or y + h > 1 + SLACK:
            raise ValueError(f"box must lie inside the picture (x + w and y + h at most 1); got {raw!r}")
        return cls(x, y, min(w, 1 - x), min(h, 1 - y))

    @property
    def whole(self) -> bool:
        """The box covers the whole picture (cropping would change nothing)."""
        return self.x <= SLACK and self.y <= SLACK and self.w >= 1 - SLACK and self.h >= 1 - SLACK

    @property
    def zoom(self) -> float:
        """How much larger the picture must be decoded for the crop to keep the pixels the model needs."""
        return 1 / min(self.w, self.h)

    def crop(self, img: Image.Image) -> Image.Image:
        """The part of ``img`` inside the box (at least one pixel a side)."""
        width, height = img.size
        left, top = min(round(self.x * width), width - 1), min(round(self.y * height), height - 1)
        right = max(left + 1, min(width, round((self.x + self.w) * width)))
        bottom = max(top + 1, min(height, round((self.y + self.h) * height)))
        return img.crop((left, top, right, bottom))

    def __str__(self) -> str:
        return ",".join(f"{v:.4f}".rstrip("0").rstrip(".") or "0" for v in (self.x, self.y, self.w, self.h))
