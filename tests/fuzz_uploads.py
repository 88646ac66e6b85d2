"""Seeded generator of malformed and odd search requests for tests/test_fuzz.py.

Every case is a whole raw HTTP/1.1 request with correct framing (a true Content-Length, or
valid chunking), so a keep-alive client can send them back to back: whatever is wrong is
inside the request (the image, the form, the fields, the content type, the path), which
is what the app, not the HTTP parser, has to refuse. Cases that must succeed (odd but
valid images) are marked.
"""
from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bench.load import multipart, request_bytes


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    raw: bytes
    path: str
    head: bool = False
    must_succeed: bool = False  # an odd but valid upload: 200 with results


# ---------------------------------------------------------------- images

def picture(rng: np.random.Generator, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """A light background with a dark blob: enough of a garment for the model, different every time."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    blob = ((xx - cx) / (0.3 * w)) ** 2 + ((yy - cy) / (0.4 * h)) ** 2 < 1
    grey = np.where(blob, rng.integers(20, 90), rng.integers(180, 250)).astype(np.float32)
    grey += rng.normal(0, 8, grey.shape)
    return np.clip(grey, 0, 255).astype(np.uint8)


def save(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def odd_valid_images(rng: np.random.Generator) -> dict[str, bytes]:
    """Valid uploads in every mode and format the app accepts: all must be searched (200)."""
    grey = Image.fromarray(picture(rng))
    rgb = Image.merge("RGB", (grey, grey.point(lambda v: v * 0.9), grey.point(lambda v: min(255, v + 20))))
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(np.where(np.asarray(grey) < 128, 255, 0).astype(np.uint8)))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    sixteen = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    frames = [rgb, rgb.rotate(90), rgb.rotate(180)]
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    return {
        "png L": save(grey, "PNG"), "png RGB": save(rgb, "PNG"), "png RGBA": save(rgba, "PNG"),
        "png LA": save(grey.convert("LA"), "PNG"), "png 1-bit": save(grey.convert("1"), "PNG"),
        "png I;16": save(sixteen, "PNG"), "png palette": save(palette, "PNG"),
        "png palette+transparency": save(palette, "PNG", transparency=0),
        "jpeg RGB": save(rgb, "JPEG", quality=85), "jpeg L": save(grey, "JPEG"),
        "jpeg CMYK": save(rgb.convert("CMYK"), "JPEG"), "jpeg progressive": save(rgb, "JPEG", progressive=True),
        "jpeg EXIF rotated": save(rgb, "JPEG", exif=exif.tobytes()),
        "jpeg 4:4:4": save(rgb, "JPEG", subsampling=0), "jpeg q5": save(rgb, "JPEG", quality=5),
        "mpo two pictures": save(rgb, "MPO", save_all=True, append_images=[rgb.rotate(90)]),
        "gif": save(palette, "GIF"), "gif animated": save(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "gif transparent": save(palette, "GIF", transparency=0),
        "webp lossy": save(rgb, "WEBP", quality=70), "webp lossless RGBA": save(rgba, "WEBP", lossless=True),
        "webp animated": save(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
        "png 1x1": save(Image.new("L", (1, 1), 128), "PNG"), "png 3000x2": save(Image.new("L", (3000, 2), 90), "PNG"),
        "jpeg 1200x900": save(rgb.resize((1200, 900)), "JPEG"),
    }


def unsupported_images(rng: np.random.Generator) -> dict[str, bytes]:
    """Real images in formats the app does not take (415), and things that are not images at all."""
    rgb = Image.fromarray(picture(rng)).convert("RGB")
    return {
        "bmp": save(rgb, "BMP"), "tiff": save(rgb, "TIFF"), "ico": save(rgb, "ICO"), "ppm": save(rgb, "PPM"),
        "tga": save(rgb, "TGA"), "pdf": save(rgb, "PDF"), "jpeg2000": save(rgb, "JPEG2000"),
        "qoi": save(rgb, "QOI"), "eps-like": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="9" height="9"/></svg>',
        "heic-like": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),
        "html": b"<!doctype html><script>alert(1)</script>", "json": b'{"image": "png"}',
        "zip": b"PK\x03\x04" + bytes(60), "elf": b"\x7fELF" + bytes(60), "text": b"hello",
    }


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int, mode: int = 0, depth: int = 8, rows: int = 4) -> bytes:
    """A PNG whose header declares width x height, with only a few rows of real data."""
    raw = b"".join(b"\x00" + bytes(width * max(1, depth // 8)) for _ in range(min(rows, height)))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, mode, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def png_bomb(width: int, height: int) -> bytes:
    """A real, complete greyscale PNG of zeros: tiny on the wire, width x height pixels decoded."""
    row = b"\x00" + bytes(width)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b""))


def jpeg_declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """A JPEG whose frame header (SOF0/SOF2) is patched to declare width x height."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = jpeg.find(marker)
        if at >= 0:
            return jpeg[:at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9:]
    return jpeg


def gif_declaring(gif: bytes, width: int, height: int) -> bytes:
    return gif[:6] + struct.pack("<HH", width, height) + gif[10:]


def webp_declaring(width: int, height: int) -> bytes:
    """A VP8X WebP header declaring a canvas of width x height and nothing else."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def bombs(rng: np.random.Generator, jpeg: bytes, gif: bytes) -> dict[str, bytes]:
    return {
        "png declares 100000x100000": png_declaring(100_000, 100_000, rows=1),
        "png declares 2^31-1 x 1": png_declaring(2**31 - 1, 1, rows=0),
        "png declares 16-bit RGBA 20000x20000": png_declaring(20_000, 20_000, mode=6, depth=16, rows=1),
        "png zeros 8000x6000 (over the limit)": png_bomb(8000, 6000),
        "png zeros 6000x6000 (under the limit)": png_bomb(6000, 6000),
        "jpeg declares 65500x65500": jpeg_declaring(jpeg, 65500, 65500),
        "jpeg declares 0x0": jpeg_declaring(jpeg, 0, 0),
        "gif declares 65535x65535": gif_declaring(gif, 65535, 65535),
        "webp declares 16384x16384": webp_declaring(16384, 16384),
    }


# ---------------------------------------------------------------- mutations

def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[:int(rng.integers(0, max(1, len(data))))]


def flip_bits(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 24))):
        at = int(rng.integers(0, len(out)))
        out[at] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def flip_header(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        at = int(rng.integers(0, min(64, len(out))))
        out[at] = int(rng.integers(0, 256))
    return bytes(out)


def splice(data: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(0, len(data)))
    return data[:at] + rng.bytes(int(rng.integers(1, 512))) + data[at + int(rng.integers(0, 256)):]


def zero_run(data: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(0, len(data)))
    return data[:at] + bytes(min(len(data) - at, int(rng.integers(1, 2048)))) + data[at + 2048:]


def garbage(data: bytes, rng: np.random.Generator) -> bytes:
    return rng.bytes(len(data))


def doubled(data: bytes, rng: np.random.Generator) -> bytes:
    return data + data


MUTATIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "truncated": truncate, "bit-flipped": flip_bits, "header-flipped": flip_header, "spliced": splice,
    "zero-run": zero_run, "garbage": garbage, "doubled": doubled,
}


# ---------------------------------------------------------------- requests

K_VALUES = ["１０", "1_0", "+5", "-1", "0", "101", "1e2", " 10 ", "", "10\x00", "9" * 60, "0x10", "١٠", "10.0",
            "NaN", "5", "100", "1", "ten", "2 0"]
MODES = ["routed", "direct", "soft", "ROUTED", "fast", "", "routed\n", "../", "soft;", "\u202erouted"]
CATALOGS = ["fashion-mnist", "../x", "..%2Fx", "photos", "FASHION-MNIST", "fashion-mnist\x00", "a" * 300, "%00",
            "/etc/passwd", "fashion_mnist", "", "fashion-mnist/../fashion-mnist", "<script>"]
FILENAMES = ["query.png", "", "../../etc/passwd", "a" * 1000 + ".png", "é.png", "x.png.exe", "C:\\x\\y.png",
             "no-extension", ".png", "q\"uote.png"]
PART_TYPES = ["image/png", "image/jpeg", "text/plain", "application/octet-stream", "", "image/png; charset=utf-8",
              "x/y", "multipart/mixed"]


def pick(rng: np.random.Generator, values: list) -> object:
    return values[int(rng.integers(len(values)))]


def upload(image: bytes, fields: list[tuple[str, str]] = (), filename: str = "query.png", part_type: str = "image/png",
           path: str = "/api/search", query: str = "") -> bytes:
    body, content_type = multipart(fields, [("image", filename, part_type, image)])
    return request_bytes("POST", path + query, body, [("Content-Type", content_type)])


def odd_fields(rng: np.random.Generator) -> list[tuple[str, str]]:
    fields = []
    for name, values in (("k", K_VALUES), ("mode", MODES), ("catalog", CATALOGS)):
        if rng.random() < 0.5:
            fields.append((name, pick(rng, values)))
    if rng.random() < 0.15 and fields:
        fields.append((fields[0][0], pick(rng, K_VALUES + MODES)))  # the same field again, maybe different
    return fields


def raw_multipart(parts: list[bytes], boundary: str, close: bool = True, newline: bytes = b"\r\n") -> bytes:
    body = b"".join(b"--" + boundary.encode() + newline + part + newline for part in parts)
    return body + (b"--" + boundary.encode() + b"--" + newline if close else b"")


def structure_cases(rng: np.random.Generator, image: bytes, heavy: bool = True) -> dict[str, tuple[bytes, str | None]]:
    """(body, Content-Type) pairs with a broken or odd multipart structure (``heavy``: with the 5,000-part and
    600 kB-field forms, which are sent once, not around every image)."""
    part = b'Content-Disposition: form-data; name="image"; filename="q.png"\r\nContent-Type: image/png\r\n\r\n' + image
    lf_part = part.replace(b"\r\n", b"\n")
    many = [b'Content-Disposition: form-data; name="f%d"\r\n\r\nv' % i for i in range(5000 if heavy else 3)]
    return {
        "no boundary parameter": (raw_multipart([part], "b"), "multipart/form-data"),
        "empty boundary": (raw_multipart([part], "b"), "multipart/form-data; boundary="),
        "boundary mismatch": (raw_multipart([part], "b"), "multipart/form-data; boundary=c"),
        "no closing boundary": (raw_multipart([part], "b", close=False), "multipart/form-data; boundary=b"),
        "cut mid-part": (raw_multipart([part], "b")[:len(part) // 2], "multipart/form-data; boundary=b"),
        "LF line endings": (raw_multipart([lf_part], "b", newline=b"\n"), "multipart/form-data; boundary=b"),
        "quoted boundary": (raw_multipart([part], "b b"), 'multipart/form-data; boundary="b b"'),
        "boundary of 300 chars": (raw_multipart([part], "x" * 300), "multipart/form-data; boundary=" + "x" * 300),
        "no Content-Disposition": (raw_multipart([b"Content-Type: image/png\r\n\r\n" + image], "b"),
                                   "multipart/form-data; boundary=b"),
        "Content-Disposition without a name": (raw_multipart([b'Content-Disposition: form-data; filename="q.png"'
                                                              b"\r\n\r\n" + image], "b"),
                                               "multipart/form-data; boundary=b"),
        "part header of 20 kB": (raw_multipart([b"X-Pad: " + b"p" * 20_000 + b"\r\n" + part], "b"),
                                 "multipart/form-data; boundary=b"),
        "5,000 parts": (raw_multipart(many, "b"), "multipart/form-data; boundary=b"),
        "600 kB text field": (raw_multipart([b'Content-Disposition: form-data; name="k"\r\n\r\n' + b"1" * (600_000 if heavy else 10),
                                             part], "b"), "multipart/form-data; boundary=b"),
        "two images": (raw_multipart([part, part], "b"), "multipart/form-data; boundary=b"),
        "image as a plain field": (raw_multipart([b'Content-Disposition: form-data; name="image"\r\n\r\n' + image],
                                                 "b"), "multipart/form-data; boundary=b"),
        "garbage body": (rng.bytes(int(rng.integers(1, 5000))), "multipart/form-data; boundary=b"),
        "preamble and epilogue": (b"preamble\r\n" + raw_multipart([part], "b") + rng.bytes(3000),
                                  "multipart/form-data; boundary=b"),
        "nested multipart/mixed": (raw_multipart([b'Content-Disposition: form-data; name="image"\r\n'
                                                  b"Content-Type: multipart/mixed; boundary=inner\r\n\r\n"
                                                  + raw_multipart([part], "inner")], "outer"),
                                   "multipart/form-data; boundary=outer"),
        "upper-case content type": (raw_multipart([part], "b"), "MULTIPART/FORM-DATA; BOUNDARY=b"),
        "charset parameter": (raw_multipart([part], "b"), "multipart/form-data; charset=utf-16; boundary=b"),
        "raw image body": (image, "image/png"),
        "text/plain body": (image, "text/plain"),
        "json body": (b'{"image": "' + image[:100].hex().encode() + b'"}', "application/json"),
        "urlencoded image": (b"image=" + image[:2000], "application/x-www-form-urlencoded"),
        "no content type": (image, None),
        "multipart/mixed": (raw_multipart([part], "b"), "multipart/mixed; boundary=b"),
        "empty body": (b"", "multipart/form-data; boundary=b"),
        "odd content type": (image, "image/png; boundary=b; ;;=="),
    }


def chunked(body: bytes, rng: np.random.Generator) -> bytes:
    out, at = b"", 0
    while at < len(body):
        n = int(rng.integers(1, 20_000))
        out += b"%x\r\n" % len(body[at:at + n]) + body[at:at + n] + b"\r\n"
        at += n
    return out + b"0\r\n\r\n"


def path_cases() -> list[tuple[str, str, bool]]:
    """(method, path, head) requests to odd places; bodies empty."""
    return [
        ("GET", "/api/search", False), ("PUT", "/api/search", False), ("DELETE", "/api/search", False),
        ("PATCH", "/api/health", False), ("OPTIONS", "/api/search", False), ("HEAD", "/api/health", True),
        ("GET", "/api/search/", False), ("GET", "/api//search", False), ("GET", "/api/%2e%2e/health", False),
        ("GET", "/api/health?k=%ff%fe", False), ("GET", "/api/nope", False), ("GET", "/api", False),
        ("GET", "/images/fashion-mnist/99999999", False), ("GET", "/images/fashion-mnist/-1", False),
        ("GET", "/images/../x", False), ("GET", "/images/photos/1", False), ("GET", "/images/fashion-mnist/1", False),
        ("GET", "/item/fashion-mnist/abc", False), ("GET", "/item/fashion-mnist/1?mode=bad", False),
        ("GET", "/item/fashion-mnist/3?mode=soft", False), ("GET", "/item/nope/1", False),
        ("POST", "/", False), ("GET", "/?catalog=%00", False), ("GET", "/static/../app/settings.py", False),
        ("GET", "/static/%2e%2e/wsgi.py", False), ("GET", "/%00", False), ("TRACE", "/api/health", False),
        ("GET", "/api/health?" + "&".join(f"k{i}=v" for i in range(2000)), False),
    ]


def generate(seed: int, n: int, base: bytes) -> Iterator[Case]:
    """``n`` cases (at least), seeded: the same seed gives the same requests."""
    rng = np.random.default_rng(seed)
    valid = odd_valid_images(rng)
    others = unsupported_images(rng)
    bomb_images = bombs(rng, valid["jpeg RGB"], valid["gif"])
    count = 0

    def case(kind: str, name: str, raw: bytes, path: str = "/api/search", **flags) -> Case:
        nonlocal count
        count += 1
        return Case(kind, name, raw, path, **flags)

    for name, image in valid.items():
        yield case("valid", name, upload(image), must_succeed=True)
        yield case("valid", f"{name}, chunked", request_bytes(
            "POST", "/api/search", chunked(multipart(files=[("image", "q", "image/png", image)], boundary="cb")[0], rng),
            [("Content-Type", "multipart/form-data; boundary=cb"), ("Transfer-Encoding", "chunked")]),
            must_succeed=True)
    for name, image in others.items():
        yield case("unsupported", name, upload(image))
    for name, image in bomb_images.items():
        yield case("bomb", name, upload(image))
    for name, (body, content_type) in structure_cases(rng, base).items():
        headers = [("Content-Type", content_type)] if content_type is not None else []
        yield case("structure", name, request_bytes("POST", "/api/search", body, headers))
        yield case("structure", f"{name} (page form)", request_bytes("POST", "/search", body, headers), "/search")
    for method, path, head in path_cases():
        yield case("path", f"{method} {path[:60]}", request_bytes(method, path), path, head=head)
    images = list(valid.values()) + list(others.values())
    while count < n:
        image = pick(rng, images)
        roll = rng.random()
        if roll < 0.55:  # a damaged image
            mutation = pick(rng, list(MUTATIONS))
            damaged = MUTATIONS[mutation](image, rng)
            page = rng.random() < 0.15
            path = "/search" if page else "/api/search"
            yield case("damaged", f"{mutation} image", upload(damaged, odd_fields(rng) if rng.random() < 0.3 else [],
                                                              path=path), path)
        elif roll < 0.85:  # odd fields, filenames and part types around a valid image
            fields = odd_fields(rng)
            query = "?" + "&".join(f"{k}={v}" for k, v in odd_fields(rng)).replace(" ", "%20") \
                if rng.random() < 0.2 else ""
            query = "".join(c if 32 < ord(c) < 127 else f"%{ord(c) & 0xFF:02X}" for c in query)
            yield case("fields", f"fields {fields!r:.60}", upload(base, fields, pick(rng, FILENAMES),
                                                                  pick(rng, PART_TYPES), query=query))
        else:  # a broken multipart structure around a random image
            name, (body, content_type) = pick(rng, list(structure_cases(rng, image, heavy=False).items()))
            headers = [("Content-Type", content_type)] if content_type is not None else []
            yield case("structure", f"{name} (random image)", request_bytes("POST", "/api/search", body, headers))
