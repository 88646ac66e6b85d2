"""Crop boxes: parsed from "x,y,w,h" fractions, refused with a message a user can act on, cropped after decoding."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.imaging.crop import Box


def test_a_box_is_fractions_of_the_picture():
    box = Box.parse("0.25,0.5,0.5,0.5")
    img = Image.fromarray(np.arange(400 * 200, dtype=np.uint32).reshape(200, 400).astype(np.uint8))
    part = box.crop(img)
    assert part.size == (200, 100)
    np.testing.assert_array_equal(np.asarray(part), np.asarray(img)[100:200, 100:300])
    assert str(box) == "0.25,0.5,0.5,0.5" and Box.parse(str(box)) == box
    assert box.zoom == 2.0 and not box.whole and Box.parse("0,0,1,1").whole


def test_rounding_slack_is_forgiven_and_clamped():
    box = Box.parse(" 0.3, 0.1 ,0.70001,0.9 ")
    assert box.x + box.w <= 1 and box.y + box.h <= 1
    assert Box.parse("0.3333,0,0.6667,1").crop(Image.new("L", (3, 1))).size == (2, 1)


def test_a_tiny_picture_still_gives_a_pixel():
    assert Box.parse("0.9,0.9,0.1,0.1").crop(Image.new("RGB", (4, 4))).size == (1, 1)


@pytest.mark.parametrize("raw, says", [
    ("", "box must be four fractions"), ("1,2,3", "box must be four fractions"), ("0,0,1,1,1", "four fractions"),
    ("x,0,1,1", "four fractions"), ("-0.1,0,1,1", "four fractions"), ("0,0,inf,1", "four fractions"),
    ("0,0,nan,1", "four fractions"), ("0,0,1e0,1", "four fractions"), ("０,0,1,1", "four fractions"),
    ("0.5,0,0.6,1", "must lie inside the picture"), ("0,0.99,1,0.5", "must lie inside the picture"),
    ("0,0,0.04,1", "too small"), ("0,0,1,0", "too small"),
])
def test_bad_boxes_are_refused_saying_why(raw, says):
    with pytest.raises(ValueError, match=says):
        Box.parse(raw)


def test_a_cropped_search_keeps_enough_pixels(photo_model, query_photo):
    """A small box over a big JPEG decodes at a finer scale, so the crop still has the model's pixels."""
    big = io.BytesIO()
    Image.open(io.BytesIO(query_photo)).convert("RGB").resize((3000, 4000)).save(big, "JPEG", quality=90)
    box = Box.parse("0.4,0.4,0.2,0.2")
    whole = photo_model.decode(big.getvalue(), 40_000_000)
    zoomed = photo_model.decode(big.getvalue(), 40_000_000, zoom=box.zoom)
    assert min(box.crop(whole).size) < photo_model.input_shape[0] <= min(box.crop(zoomed).size)
