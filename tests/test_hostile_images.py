"""Issue 17: uploads that are cheap to send and slow to decode are refused before they cost anything.

The hostile files are real images Pillow writes, then altered (bench/hostile.py): Pillow and
libjpeg accept every one of them, which is what made them dangerous, and the app refuses
them from their markers with a 4xx and a message for people. Ordinary progressive JPEGs,
the largest the limits allow included, still decode.
"""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from app.imaging.decode import ImageRejected, decode
from app.imaging.jpeg_cost import MAX_BLOCK_VISITS, MAX_SCANS, MAX_SEGMENTS, segments
from app.imaging.model_input import file_input
from app.imaging.photo import photo_input
from bench.hostile import flooded, progressive_jpeg, scan_bomb, strip_jpeg, with_scans

PHOTO = (192, 192, 3)


def refusal(data: bytes, **options) -> ImageRejected:
    with pytest.raises(ImageRejected) as err:
        decode(data, **options)
    return err.value


def pillow_decodes(data: bytes) -> tuple[int, int]:
    """What Pillow alone makes of the file: it decodes (or the file would not be a threat, merely damaged)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img.size


def grain_jpeg(size: tuple[int, int], **options) -> bytes:
    """A photo-like JPEG (smooth colours and sensor grain): what makes real photos big and slow to decode."""
    w, h = size
    rng = np.random.default_rng(0)
    smooth = Image.fromarray(rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8)).resize(size)
    pixels = np.asarray(smooth, np.int16) + rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90, **options)
    return out.getvalue()


@pytest.mark.parametrize("nbytes", [700_000, 3_700_000])
def test_scan_bombs_are_refused_from_their_markers(nbytes):
    bomb = scan_bomb(nbytes)
    assert bomb.count(b"\xff\xda") > 10_000  # thousands of scans, each a whole pass over 12 megapixels
    err = refusal(bomb, min_side=256)
    assert err.status == 413
    assert "would take too long to decode" in str(err) and "baseline (non-progressive) JPEG" in str(err)


def test_many_tiny_scans_are_refused_even_on_a_small_picture():
    data = with_scans(2_000)
    assert pillow_decodes(data) == (256, 256)  # a valid JPEG, just built to be slow
    err = refusal(data)
    assert err.status == 413 and f"more than {MAX_SCANS} scans" in str(err)
    decode(with_scans(MAX_SCANS))  # the limit itself is accepted


@pytest.mark.parametrize("where, segment", [("header", b"\xff\xfe\x00\x02"),          # comments before the frame
                                            ("scans", None)])                         # Huffman tables between scans
def test_marker_floods_are_refused(where, segment):
    jpeg = progressive_jpeg((640, 480))
    if segment is None:
        segment = jpeg[jpeg.rfind(b"\xff\xc4"):jpeg.rfind(b"\xff\xda")]  # the last Huffman table, again and again
    data = flooded(jpeg, 5 * MAX_SEGMENTS, segment, where)
    assert pillow_decodes(data) == (640, 480)
    err = refusal(data)
    assert err.status == 413 and f"more than {MAX_SEGMENTS:,} markers" in str(err)


def test_garbage_between_segments_hides_no_scan():
    """libjpeg skips bytes that are no marker between segments; the walk does too, so scans behind them count."""
    jpeg = with_scans(500)
    first_scan = jpeg.find(b"\xff\xda")
    data = jpeg[:first_scan] + b"\x00junk\x12" + jpeg[first_scan:]
    assert pillow_decodes(data) == (256, 256)
    assert "scans" in str(refusal(data))
    assert sum(marker == 0xDA for marker, _ in segments(data)) == data.count(b"\xff\xda")


def test_lossless_jpegs_are_not_supported():
    out = io.BytesIO()
    Image.new("L", (64, 64), 90).save(out, "JPEG")
    lossless = out.getvalue().replace(b"\xff\xc0", b"\xff\xc3", 1)  # the frame marked lossless
    err = refusal(lossless)
    assert err.status == 415 and "lossless and hierarchical JPEGs are not supported" in str(err)


@pytest.mark.parametrize("make", [progressive_jpeg, lambda: progressive_jpeg(mode="L"),
                                  lambda: progressive_jpeg(subsampling=0),
                                  lambda: grain_jpeg((4032, 3024), progressive=True)],
                         ids=["12 MP", "12 MP grey", "12 MP 4:4:4", "12 MP photo"])
def test_ordinary_progressive_jpegs_still_decode(make):
    assert decode(make(), min_side=256).size == (504, 378)


def test_a_40_megapixel_progressive_jpeg_is_too_slow_but_its_baseline_twin_is_not():
    """Its 10 scans visit 5 million blocks (0.2 s of CPU for a flat picture of 230 kB): over the limit."""
    progressive = progressive_jpeg((7300, 5470))
    assert "would take too long to decode" in str(refusal(progressive))
    baseline = io.BytesIO()
    Image.new("RGB", (7300, 5470), (120, 80, 200)).save(baseline, "JPEG")
    assert decode(baseline.getvalue(), min_side=256).size == (913, 684)


def test_the_largest_progressive_photo_the_limits_allow_decodes():
    """30 megapixels with grain (9 MB, under the 10 MB upload limit): 3.8 million block visits, under 4 million."""
    data = grain_jpeg((6400, 4800), progressive=True)
    assert len(data) < 10 * 2**20
    assert decode(data, min_side=256).size == (800, 600)
    assert 30e6 * 1.5 / 64 * 16 / 3 < MAX_BLOCK_VISITS  # libjpeg's script: 5.33 visits a block (4:2:0)


def test_decoding_stops_once_its_cpu_budget_is_spent():
    """The backstop for shapes nobody thought of: decoding is really stopped, not left running."""
    data = grain_jpeg((6400, 4800), progressive=True)  # about 0.4 s of CPU to decode whole
    started = time.thread_time()
    err = refusal(data, min_side=256, cpu_seconds=0.02)
    spent = time.thread_time() - started
    assert err.status == 413 and "takes too long to decode" in str(err)
    assert spent < 0.2, f"the decoder went on for {spent:.2f} s of CPU after its 0.02 s budget"


@pytest.mark.parametrize("size", [(10_000, 1), (1, 10_000), (10_000, 10), (3_000, 2)])
def test_strips_are_scaled_only_where_the_crop_keeps_them(size):
    """The photo model takes the centre square: a strip has only that part scaled, and gets the same pixels."""
    data = strip_jpeg(*size)
    x = file_input(data, PHOTO)
    assert x.shape == PHOTO
    rgb = decode(data).convert("RGB")
    side = PHOTO[0]
    w, h = (max(side, round(rgb.width * side / min(rgb.size))), max(side, round(rgb.height * side / min(rgb.size))))
    if w * h < 4_000_000:  # the old way (scale whole, then crop) as the reference, where it is affordable
        whole = rgb.resize((w, h), Image.Resampling.BILINEAR)
        left, top = (w - side) // 2, (h - side) // 2
        expected = np.asarray(whole.crop((left, top, left + side, top + side)), np.float32)
        assert np.abs(x - expected).max() <= 1


def test_ordinary_photos_are_scaled_as_before(test_photos):
    """Up to twice as long as wide the photo is scaled whole, then cropped: the model's inputs are unchanged."""
    for i in range(0, len(test_photos), 40):
        img = Image.open(io.BytesIO(test_photos.read(i))).convert("RGB")
        scale = 192 / min(img.size)
        w, h = max(192, round(img.width * scale)), max(192, round(img.height * scale))
        whole = img.resize((w, h), Image.Resampling.BILINEAR)
        left, top = (w - 192) // 2, (h - 192) // 2
        np.testing.assert_array_equal(photo_input(img, 192),
                                      np.asarray(whole.crop((left, top, left + 192, top + 192)), np.float32))
