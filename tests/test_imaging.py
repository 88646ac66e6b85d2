"""Uploads of every odd kind: decoded upright and cheaply, then drawn as the model needs, or refused with a status.

Grey models get the garment as Fashion-MNIST draws it (most tests here); colour models get
the whole photo in colour.
"""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.imaging.decode import ImageRejected, decode
from app.imaging.model_input import file_input, model_input
from app.settings import ROOT

GREY = (28, 28, 1)


def load_upload(data: bytes, input_shape: tuple[int, int, int] = GREY, max_pixels: int | None = None) -> np.ndarray:
    return file_input(data, input_shape, max_pixels)


def prepare(img, input_shape: tuple[int, int, int] = GREY) -> np.ndarray:
    return model_input(img, input_shape)

NAVY = (30, 40, 110)


def garment(size: tuple[int, int] = (320, 192), bg=(255, 255, 255), fg=NAVY, mode: str = "RGB",
            at: tuple[float, float] = (0.3, 0.1)) -> Image.Image:
    """An L-shaped garment (a body and one sleeve: asymmetric, so turns and flips show) on a plain ground.

    Its box is 25.2 px tall once 28 px wide: far from a rounding edge, so sizes compare exactly.
    """
    w, h = size
    x, y = at
    img = Image.new(mode, size, bg)
    draw = ImageDraw.Draw(img)
    draw.rectangle([w * x, h * y, w * (x + 0.3), h * (y + 0.75)], fill=fg)
    draw.rectangle([w * (x + 0.3), h * y, w * (x + 0.5), h * (y + 0.2)], fill=fg)
    return img


def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


def shifted_diff(a: np.ndarray, b: np.ndarray) -> float:
    """``diff`` up to a one-pixel shift: trimming and centring may round half a pixel either way."""
    return min(diff(a, np.roll(b, (dy, dx), axis=(0, 1))) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def on_canvas(img: Image.Image, size: tuple[int, int], at: tuple[int, int], colour="white") -> Image.Image:
    canvas = Image.new(img.mode, size, colour)
    canvas.paste(img, at)
    return canvas


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The navy garment on white as a lossless PNG: what the variants below must match."""
    return load_upload(encode(garment()))


def check_contract(x: np.ndarray) -> None:
    assert x.shape == (28, 28, 1) and x.dtype == np.float32
    assert np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 255


def palette_with_transparency() -> bytes:
    """Palette PNG: index 0 is transparent black, so ignoring transparency would lose the garment."""
    img = garment(bg=(0, 0, 0)).quantize(colors=4)
    black = img.getpixel((0, 0))
    return encode(img, transparency=black)


def rgba_cutout(mode: str = "RGBA") -> bytes:
    img = garment(bg=(0, 0, 0)).convert(mode)
    alpha = garment(bg=0, fg=255, mode="L")
    img.putalpha(alpha)
    return encode(img)


def sixteen_bit() -> bytes:
    arr = (np.asarray(garment(bg=0, fg=255, mode="L"), np.uint16) * 200).astype(np.uint16)  # 0 and 51,000
    return encode(Image.fromarray(arr))


def cmyk_jpeg() -> bytes:
    return encode(garment(bg=(0, 0, 0, 0), fg=(200, 150, 50, 80), mode="CMYK"), "JPEG", quality=95)


def with_orientation(orientation: int) -> bytes:
    """JPEG whose pixels are stored turned, with the EXIF tag that turns them upright again."""
    turn = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(garment().transpose(turn), "JPEG", quality=95, exif=exif)


def animated_gif() -> bytes:
    first = garment(bg=(255, 255, 255), fg=(0, 0, 0)).convert("P")
    second = Image.new("RGB", first.size, "white")
    ImageDraw.Draw(second).rectangle([10, 80, 300, 110], fill="black")
    out = io.BytesIO()
    first.save(out, "GIF", save_all=True, append_images=[second.convert("P")], duration=100, loop=0)
    return out.getvalue()


VALID = {
    "1x1": lambda: encode(Image.new("RGB", (1, 1), (200, 10, 10))),
    "2x3 jpeg": lambda: encode(Image.new("L", (2, 3), 90), "JPEG"),
    "grey jpeg": lambda: encode(garment().convert("L"), "JPEG"),
    "cmyk jpeg": cmyk_jpeg,
    "palette transparency": palette_with_transparency,
    "rgba": rgba_cutout,
    "la": lambda: rgba_cutout("LA"),
    "16-bit": sixteen_bit,
    "exif 6": lambda: with_orientation(6),
    "exif 8": lambda: with_orientation(8),
    "gif": animated_gif,
    "webp lossless": lambda: encode(garment(), "WEBP", lossless=True),
    "webp": lambda: encode(garment(), "WEBP", quality=80),
    "fully transparent": lambda: encode(Image.new("RGBA", (50, 40), (0, 0, 0, 0))),
}


@pytest.mark.parametrize("name", VALID)
def test_every_readable_upload_becomes_a_28x28_grey_image(name):
    check_contract(load_upload(VALID[name]()))


def test_dark_garment_on_white_becomes_light_on_black_filling_the_frame_centred(reference):
    x = reference[..., 0]
    assert x.max() > 200 and np.all(x[[0, -1], :] < 1)  # light garment, black top and bottom margins
    rows, cols = np.nonzero(x > 30)
    assert cols.min() == 0 and cols.max() == 27  # the longest side (width) fills the frame
    assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 1  # centred on the short side


@pytest.mark.parametrize("name", ["cmyk jpeg", "palette transparency", "rgba", "la", "16-bit", "webp",
                                  "exif 6", "exif 8"])
def test_odd_encodings_of_the_same_garment_give_the_same_input(name, reference):
    assert diff(load_upload(VALID[name]()), reference) < 3


def test_lossless_webp_equals_png(reference):
    np.testing.assert_array_equal(load_upload(VALID["webp lossless"]()), reference)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_is_applied(orientation):
    upright = load_upload(encode(garment(), "JPEG", quality=95))
    turned = load_upload(with_orientation(orientation))
    stored = load_upload(encode(Image.open(io.BytesIO(with_orientation(orientation))).copy(), "PNG"))
    assert diff(turned, upright) < 3
    assert diff(stored, upright) > 20  # without the tag the garment lies on its side: the test can tell


def test_gif_uses_the_first_frame():
    first = load_upload(encode(garment(bg=(255, 255, 255), fg=(0, 0, 0))))
    result = load_upload(animated_gif())
    assert diff(result, first) < 1


def test_light_on_dark_and_dark_on_light_agree(reference):
    negative = Image.fromarray(255 - np.asarray(garment().convert("L")))
    assert diff(load_upload(encode(negative)), reference) < 3


def test_size_position_and_padding_do_not_matter(reference):
    bigger = garment(size=(960, 576))
    off_centre = on_canvas(garment(), (900, 700), (20, 480))
    for img in (bigger, off_centre):
        assert diff(load_upload(encode(img)), reference) < 3


def test_uneven_lighting_and_noise_are_not_taken_for_garment(reference):
    """Light falling off by a fifth across a noisy JPEG: the garment is still found, trimmed and centred."""
    rng = np.random.default_rng(0)
    grey = np.asarray(on_canvas(garment(), (640, 480), (290, 30)).convert("L"), np.float32)
    light = 1 - 0.15 * np.linspace(0, 1, grey.shape[1])[None, :] - 0.05 * np.linspace(0, 1, grey.shape[0])[:, None]
    photo = np.clip(grey * light + rng.normal(0, 6, grey.shape), 0, 255).astype(np.uint8)
    x = load_upload(encode(Image.fromarray(photo), "JPEG", quality=80))
    assert shifted_diff(x, reference) < 10  # the old flat-median background scored 140 here
    assert np.all(x[0] < 30) and np.all(x[-1] < 30)


def nonzero_box(x: np.ndarray, level: float = 60) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(x > level)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_garment_touching_the_edges_is_kept_whole():
    """Trousers photographed top to bottom: the frame edge is garment, the corners still background."""
    tall = Image.new("L", (200, 400), 255)
    legs = [(60, 0), (140, 0), (180, 399), (110, 399), (100, 120), (90, 399), (20, 399)]
    ImageDraw.Draw(tall).polygon(legs, fill=40)
    x = load_upload(encode(tall))[..., 0]
    padded = load_upload(encode(on_canvas(tall, (400, 600), (100, 100))))[..., 0]
    top, bottom, left, right = nonzero_box(x)
    assert (top, bottom) == (0, 27) and abs((left + right) / 2 - 13.5) <= 1  # full height, centred
    assert np.allclose(nonzero_box(padded), nonzero_box(x), atol=1)
    assert diff(x, padded) < 2


PEAK_PROBE = """
import io, json, sys
from PIL import Image
from app.imaging.model_input import file_input

def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024

data = open(sys.argv[1], "rb").read()
small = io.BytesIO(); Image.new("RGB", (64, 64), "white").save(small, "PNG")
file_input(small.getvalue(), (28, 28, 1))  # every code path warmed up and imported
before = peak_mb()
file_input(data, (28, 28, 1))
print(json.dumps({"before": before, "after": peak_mb()}))
"""


@pytest.mark.parametrize("fmt, size, limit_mb", [("JPEG", (6000, 3600), 24), ("PNG", (4000, 2400), 60)])
def test_huge_photo_costs_little_memory(fmt, size, limit_mb, reference, tmp_path):
    """Large photos: the result matches the small photo, and the process's peak memory (Pillow's
    buffers included: the kernel's VmHWM, not a Python-level tracer) grows by little. A 21.6-megapixel
    JPEG decodes at 1/8 scale; a 9.6-megapixel PNG must be decoded whole (29 MB of RGB), then shrinks."""
    data = encode(garment(size=size), fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 1}))
    assert diff(load_upload(data), reference) < 4
    (tmp_path / "huge").write_bytes(data)
    done = subprocess.run([sys.executable, "-c", PEAK_PROBE, str(tmp_path / "huge")], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    peak = json.loads(done.stdout)
    growth = peak["after"] - peak["before"]
    assert growth < limit_mb, f"decoding peaked {growth:.0f} MB above the warmed-up process"


def test_blank_images_give_a_blank_input():
    for img in (Image.new("RGB", (6000, 4000), "white"), Image.new("L", (30, 30), 0), Image.new("RGB", (1, 1))):
        assert not load_upload(encode(img, "JPEG" if img.width > 1000 else "PNG")).any()


def test_fashion_mnist_images_pass_through_unchanged(fmnist):
    image = fmnist.x_test[7]
    np.testing.assert_array_equal(prepare(image)[..., 0], image)
    np.testing.assert_array_equal(load_upload(encode(Image.fromarray(image)))[..., 0], image)


def test_colour_models_get_the_centre_of_the_rgb_photo():
    red = garment(size=(300, 150), fg=(220, 20, 20))
    x = prepare(red, (64, 64, 3))
    assert x.shape == (64, 64, 3) and x.dtype == np.float32
    scaled = red.resize((128, 64), Image.Resampling.BILINEAR)  # shorter side to 64, then the centre square
    expected = np.asarray(scaled.crop((32, 0, 96, 64)), np.float32)
    assert np.abs(x - expected).mean() < 3
    garment_px = x[(x[..., 0] - x[..., 1]) > 100]
    assert len(garment_px) > 200 and np.all(garment_px[:, 0] > 150)  # still red: colour is kept
    grey = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    g = prepare(grey, (32, 32, 3))
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])


def png_claiming(width: int, height: int) -> bytes:
    """A PNG that is a header only: its IHDR claims width x height; decoding would need the pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, status, says", [
    (b"", 400, "empty"),
    (b"hello, this is text", 400, "not an image"),
    (encode(garment(), "JPEG")[:2000], 400, "damaged or truncated"),
    (encode(garment(), "BMP"), 415, "BMP images are not supported"),
    (encode(garment(), "TIFF"), 415, "TIFF images are not supported"),
    (png_claiming(8000, 8000), 413, "8000x8000 pixels; the limit is 10 megapixels \\(PNG images; JPEG 40\\)"),
    (png_claiming(6300, 6300), 413, "6300x6300 pixels; the limit is 10 megapixels"),
    (png_claiming(30000, 30000), 413, "far too many pixels; the limit is 40 megapixels for JPEG, 10 for"),
    (encode(Image.new("L", (8000, 5001)), "JPEG"), 413, "8000x5001 pixels; the limit is 40 megapixels; send"),
])
def test_unusable_uploads_are_refused_with_a_status(data, status, says):
    with pytest.raises(ImageRejected, match=says) as err:
        load_upload(data)
    assert err.value.status == status


def png_with_huge_text() -> bytes:
    """A valid PNG plus a compressed text chunk that inflates past Pillow's safety limit."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    data = encode(garment())
    ztxt = chunk(b"zTXt", b"note\0\0" + zlib.compress(b"x" * 20_000_000, 9))
    return data[:-12] + ztxt + data[-12:]


@pytest.mark.parametrize("data", [png_with_huge_text(), png_claiming(30000, 30000), png_claiming(8000, 8000),
                                  encode(garment(), "JPEG")[:300]])
def test_refusals_speak_to_people_not_in_decoder_internals(data):
    """Pillow's own wording ("decompression bomb DOS attack", "MAX_TEXT_CHUNK") never reaches a user."""
    try:
        load_upload(data)
    except ImageRejected as err:
        message = str(err)
    else:
        return  # a decoder that reads it is fine too
    for internal in ("DOS", "decompression bomb", "MAX_TEXT_CHUNK", "Decompressed", "PIL", "Pillow"):
        assert internal not in message, message


def mpo() -> bytes:
    """A multi-picture JPEG as cameras write them (Pillow reads it as MPO, not JPEG)."""
    out = io.BytesIO()
    garment().save(out, "MPO", save_all=True, append_images=[garment(fg=(0, 0, 0))], quality=95)
    return out.getvalue()


def test_mpo_camera_jpegs_are_read_like_jpegs(reference):
    data = mpo()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert diff(load_upload(data), reference) < 3
    assert decode(data).size == (320, 192)


@pytest.mark.parametrize("fmt, fits", [("PNG", 4 * 20_000), ("JPEG", 20_000)])
def test_pixel_limit_is_a_parameter(fmt, fits):
    """JPEGs may have max_pixels; formats decoded whole a quarter of it."""
    data = encode(garment(size=(200, 100)), fmt)
    with pytest.raises(ImageRejected) as err:
        load_upload(data, max_pixels=fits - 1)
    assert err.value.status == 413
    check_contract(load_upload(data, max_pixels=fits))


def test_arrays_of_any_layout_are_accepted(reference):
    rgb = np.asarray(garment())
    layouts = (rgb, rgb.astype(np.float64), np.asarray(garment().convert("RGBA")),
               np.asarray(garment().convert("L")), np.asarray(garment().convert("L"))[..., None])
    for arr in layouts:
        assert diff(prepare(arr), reference) < 1
