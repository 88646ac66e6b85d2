"""The default store: one folder per catalog, immutable HDF5 segments and a manifest naming the live ones.

Layout (format 3)::

    index_store/<catalog>/
        manifest.json       what the catalog is (Manifest), its version, next_id, whole-content digest,
                            and the segments that make it up, each with its own content digest
        v000001-base.h5     a full build: hyperplanes and items
        v000004-delta.h5    a later change: items added and ids removed
        .lock               held by the one writer at a time

Every write makes a new version: its segment is written under a new name, synced, then the
manifest is replaced in one rename (app/files.py), so a reader sees the old version or the
new one, never a mix, and a killed writer leaves the old version intact. Adds and removes
append a small delta; ``index compact`` (and every 16th segment) folds them into one base.

Segment datasets are contiguous and unfiltered, so the big columns (embeddings, images) are
memory-mapped: every worker reads one copy through the page cache. Checksums are not per
dataset (HDF5 filters would forbid that) but stronger: the SHA-256 of every column of every
segment is kept in the manifest and checked when a version is opened, and a whole-content
digest ties them to the catalog's identity, hyperplanes, version and next id.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import threading
import time
from pathlib import Path

import h5py
import numpy as np

from ..files import CannotWrite, process_alive, remove_stale_temp_files, write_atomically
from ..hashing import Hasher
from .arrays import ArraySnapshot, Part, check_codes, check_part, content_digest, part_digest, read_rows
from .base import Manifest, NewItems, StoreError, check_name
from .changes import CHUNK_ROWS, Changes, QueuedWriter

FORMAT = 3
MANIFEST = "manifest.json"
LOCK = ".lock"
MAX_SEGMENTS = 16          # more than this and a commit compacts
LOCK_WAIT_SECONDS = 120.0
MAPPED = ("embedding", "image")  # columns read through a memory map, shared by every process


def segment_name(version: int, kind: str) -> str:
    return f"v{version:06d}-{kind}.h5"


# ---------------------------------------------------------------- segment files

def write_segment(path: Path, catalog: str, version: int, kind: str, part: Part, hasher: Hasher | None) -> str:
    """Write one segment (streamed column by column, chunk by chunk) and return its content digest."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format_version"] = FORMAT
            meta = json.dumps({"catalog": catalog, "version": version, "kind": kind}).encode()
            f.create_dataset("segment", data=np.frombuffer(meta, np.uint8))
            if hasher is not None:
                f.create_dataset("hasher/hyperplanes", data=hasher.hyperplanes.astype(np.float32))
                f.create_dataset("hasher/center", data=hasher.center.astype(np.float32))
            items = f.create_group("items")
            for name, arr in part.columns():
                group = f if name == "removed" else items
                ds = group.create_dataset("removed/id" if name == "removed" else name, shape=arr.shape,
                                          dtype=arr.dtype)
                for start in range(0, len(arr), CHUNK_ROWS):
                    ds[start:start + CHUNK_ROWS] = read_rows(arr, start, start + CHUNK_ROWS)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        digest = part_digest(part)
        os.replace(tmp, path)
        return digest
    except OSError as exc:  # h5py's own errors included: a full disk, a read-only folder
        tmp.unlink(missing_ok=True)
        if isinstance(exc, CannotWrite):
            raise
        raise CannotWrite(exc.errno or errno.EIO, f"cannot write {path}: {str(exc).splitlines()[0][:200]}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _column(f: h5py.File, path: Path, name: str) -> np.ndarray:
    ds = f[name]
    offset = ds.id.get_offset() if ds.size else None
    if name.split("/")[-1] in MAPPED and offset is not None and ds.chunks is None:
        return np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
    return ds[()]


def read_segment(path: Path, catalog: str) -> tuple[Part, Hasher | None, dict]:
    """A segment's part (big columns memory-mapped), its hyperplanes if it is a base, and its own record."""
    with h5py.File(path, "r") as f:
        if int(f.attrs.get("format_version", -1)) != FORMAT or set(f.attrs.keys()) != {"format_version"}:
            raise StoreError(f"{path.name} is not a format-{FORMAT} segment")
        meta = json.loads(f["segment"][()].tobytes().decode())
        if meta.get("catalog") != catalog:
            raise StoreError(f"{path.name} belongs to catalog {meta.get('catalog')!r}, not {catalog!r}")
        hasher = Hasher(f["hasher/hyperplanes"][()], f["hasher/center"][()]) if "hasher" in f else None
        items = f["items"]
        part = Part(ids=items["id"][()], categories=items["category"][()], labels=items["label"][()],
                    codes=items["code"][()], embeddings=_column(f, path, "items/embedding"),
                    hashes=items["hash"][()], paths=items["path"][()],
                    images=_column(f, path, "items/image") if "image" in items else None,
                    removed=f["removed/id"][()])
    return part, hasher, meta


# ---------------------------------------------------------------- the store

class Hdf5Writer(QueuedWriter):
    """Holds the catalog's write lock from creation to commit or abort."""

    def __init__(self, store: Hdf5Store, changes: Changes, lock_fd: int, kind: str, seed: int = 0,
                 version: int | None = None):
        self.store, self.changes, self._lock_fd, self.kind, self.seed = store, changes, lock_fd, kind, seed
        self.version = version  # the number the commit gets (a migration keeps its source's); default: the next

    def commit(self, build: dict | None = None) -> int:
        self._record_build(build)
        try:
            version = self.store._commit(self.changes, self.kind, self.seed, self.version)
        finally:
            self.abort()
        if self.kind == "delta" and len(self.store._record()["segments"]) > MAX_SEGMENTS:
            self.store.compact()
        return version

    def abort(self) -> None:
        self.changes.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1


class Hdf5Store:
    """``hdf5:FOLDER`` (a catalog's folder; the default store)."""

    lock_wait = LOCK_WAIT_SECONDS  # how long a writer waits for another to finish

    def __init__(self, folder: str | Path, catalog: str | None = None, engine: str = "auto"):
        self.folder = Path(folder)
        self.catalog = check_name(catalog or self.folder.name)
        self.uri = f"hdf5:{self.folder}"
        self.engine = engine
        self._parts: dict[tuple[str, str], tuple[Part, Hasher | None]] = {}  # verified segments, kept across reloads
        self._lock = threading.Lock()

    # -------------------------------------------------------------- reading

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def _record(self) -> dict:
        try:
            record = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise StoreError(f"catalog {self.catalog}: no store at {self.folder}; "
                             f"{build_hint(self.catalog, 'build')}") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.manifest_path} is unreadable ({exc}); {build_hint(self.catalog)}") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise StoreError(f"{self.manifest_path} is not a format-{FORMAT} store manifest; "
                             f"{build_hint(self.catalog)}")
        return record

    def version(self) -> int | None:
        try:
            return int(json.loads(self.manifest_path.read_text())["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def snapshot(self) -> ArraySnapshot:
        for attempt in range(5):  # a segment may vanish under us when two commits land during our read
            try:
                return self._open(self._record())
            except FileNotFoundError:
                if attempt == 4:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def _open(self, record: dict) -> ArraySnapshot:
        where = self.folder
        try:
            manifest = Manifest.from_dict(record["manifest"])
            version, next_id = int(record["version"]), int(record["next_id"])
            segments = record["segments"]
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{self.manifest_path} is damaged ({exc}); {build_hint(self.catalog)}") from None
        if manifest.catalog != self.catalog:
            raise StoreError(f"{where} holds catalog {manifest.catalog!r}, not {self.catalog!r}: a store was copied "
                             f"or renamed; {build_hint(self.catalog)}")
        parts, hasher, digests, fresh = [], None, [], []
        with self._lock:
            for seg in segments:
                key = (seg["file"], seg["digest"])
                if key not in self._parts:
                    path = self.folder / seg["file"]
                    try:
                        part, seg_hasher, _ = read_segment(path, self.catalog)
                    except FileNotFoundError:
                        raise
                    except StoreError as exc:
                        raise StoreError(f"{where}: {exc}; {build_hint(self.catalog)}") from None
                    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
                        raise StoreError(f"{path} is damaged or incomplete ({str(exc)[:160]}); "
                                         f"{build_hint(self.catalog)}") from None
                    if part_digest(part) != seg["digest"]:
                        raise StoreError(f"{path} does not match the digest its manifest recorded: it was changed "
                                         f"after it was written; {build_hint(self.catalog)}")
                    self._parts[key] = (part, seg_hasher)
                    fresh.append(part)
                part, seg_hasher = self._parts[key]
                hasher = seg_hasher if seg_hasher is not None else hasher
                parts.append(part)
                digests.append(seg["digest"])
            live = {(s["file"], s["digest"]) for s in segments}
            for key in [k for k in self._parts if k not in live]:
                del self._parts[key]
        if hasher is None or (segments and "base" not in segments[0]["file"]):
            raise StoreError(f"{where}: its first segment is not a base; {build_hint(self.catalog)}")
        if content_digest(record["manifest"], hasher, version, next_id, digests) != record.get("digest"):
            raise StoreError(f"{self.manifest_path}: the whole-content digest does not match: the manifest was "
                             f"edited; {build_hint(self.catalog)}")
        try:
            for part in fresh:
                check_part(part, manifest, hasher)
                if len(part.ids) and part.ids.max() >= next_id:
                    raise ValueError("an item id is not below next_id")
            check_codes(fresh, hasher)
        except ValueError as exc:
            raise StoreError(f"{where} failed verification: {exc}; {build_hint(self.catalog)}") from None
        return ArraySnapshot(manifest, hasher, parts, version, next_id, record["digest"], engine=self.engine)

    def verify(self) -> ArraySnapshot:
        """The deep check of ``index verify``: open afresh, then every code against its embedding."""
        snapshot = Hdf5Store(self.folder, self.catalog, self.engine).snapshot()
        try:
            check_codes(snapshot.parts, snapshot.hasher, sample=0)
        except ValueError as exc:
            raise StoreError(f"{self.folder} failed verification: {exc}; {build_hint(self.catalog)}") from None
        return snapshot

    # -------------------------------------------------------------- writing

    def _take_lock(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StoreError(f"catalog {self.catalog} is being changed by another writer; try again later")
                time.sleep(0.1)

    def writer(self) -> Hdf5Writer:
        fd = self._take_lock()
        try:
            base = self.snapshot()
            return Hdf5Writer(self, Changes(base.manifest, base, base.next_id, spool_dir=self.folder), fd, "delta")
        except BaseException:
            os.close(fd)
            raise

    def rebuild(self, manifest: Manifest, seed: int = 0, next_id: int = 0, hasher: Hasher | None = None,
                version: int | None = None) -> Hdf5Writer:
        if manifest.catalog != self.catalog:
            raise StoreError(f"the store at {self.folder} is for catalog {self.catalog}, not {manifest.catalog}")
        fd = self._take_lock()
        current = self.version()
        if current is not None:
            try:
                next_id = max(next_id, int(self._record()["next_id"]))
            except (StoreError, KeyError, ValueError):
                pass
        manifest = manifest.with_(seed=seed, created=manifest.created or time.strftime("%Y-%m-%dT%H:%M:%S"))
        changes = Changes(manifest, None, next_id, spool_dir=self.folder, fixed_hasher=hasher)
        return Hdf5Writer(self, changes, fd, "base", seed, version)

    def compact(self) -> int:
        """Fold every segment into one base (ids, codes and hyperplanes unchanged): a new version."""
        fd = self._take_lock()
        base = self.snapshot()
        changes = Changes(base.manifest, None, base.next_id, spool_dir=self.folder, fixed_hasher=base.hasher)
        for part, rows in base.live_rows():
            for start in range(0, len(part), CHUNK_ROWS):  # a window of rows read from the file, its live ones kept
                r = rows[(rows >= start) & (rows < start + CHUNK_ROWS)]
                if not len(r):
                    continue
                changes.add(NewItems(
                    embeddings=read_rows(part.embeddings, start, start + CHUNK_ROWS)[r - start].astype(np.float32),
                    categories=part.categories[r], labels=part.labels[r],
                    hashes=[h.tobytes().hex() for h in part.hashes[r]], paths=[p.decode() for p in part.paths[r]],
                    images=None if part.images is None else read_rows(part.images, start, start + CHUNK_ROWS)[r - start],
                    ids=part.ids[r]))
        return Hdf5Writer(self, changes, fd, "base").commit()

    def _commit(self, changes: Changes, kind: str, seed: int, version: int | None = None) -> int:
        record = self._record() if self.exists() else None
        if changes.base is not None and (record is None or int(record["version"]) != changes.base.version):
            raise StoreError(f"catalog {self.catalog} changed while this writer held its lock")  # never expected
        current = int(record["version"]) if record else 0
        version = current + 1 if version is None else version
        if version <= current:
            raise StoreError(f"{self.folder} is at version {current} already; cannot write version {version}")
        hasher = changes.hasher(seed)
        manifest = changes.manifest.with_(embedding_dim=int(hasher.hyperplanes.shape[1]))
        part = changes.part(hasher)
        try:
            check_part(part, manifest, hasher)
        except ValueError as exc:
            raise StoreError(f"refusing to write catalog {self.catalog}: {exc}") from None
        name = segment_name(version, kind)
        digest = write_segment(self.folder / name, self.catalog, version, kind, part,
                               hasher if kind == "base" else None)
        segments = ([] if kind == "base" else list(record["segments"])) + [
            {"file": name, "digest": digest, "items": len(part), "removed": len(part.removed)}]
        new = {"format": FORMAT, "manifest": manifest.to_dict(), "version": version, "next_id": changes.next_id,
               "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "segments": segments,
               "digest": content_digest(manifest, hasher, version, changes.next_id, [s["digest"] for s in segments])}
        try:
            write_atomically(self.manifest_path, (json.dumps(new, indent=1) + "\n").encode())
        except BaseException:
            (self.folder / name).unlink(missing_ok=True)  # never named by a manifest: the old version stands alone
            raise
        self._collect_garbage(segments, record["segments"] if record else [])
        return version

    def _collect_garbage(self, live: list[dict], previous: list[dict]) -> None:
        """Delete segments neither this version nor the one before it uses (readers may still be opening that)."""
        keep = {s["file"] for s in live} | {s["file"] for s in previous}
        for path in self.folder.glob("v*.h5"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
        remove_stale_temp_files(self.manifest_path)
        for tmp in [*self.folder.glob(".v*.h5.tmp-*"), *self.folder.glob(".spool-*")]:
            pid = tmp.name.split("-")[1] if tmp.name.startswith(".spool-") else tmp.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)

    def describe(self) -> str:
        return f"{self.uri}: HDF5 segments, memory-mapped embeddings shared by every worker"


def build_hint(catalog: str, verb: str = "rebuild") -> str:
    from ..catalog import BUILTIN  # the built-ins rebuild from the repository; a shop's from its folder

    extra = "" if catalog in BUILTIN else " --gallery DIR"
    return f"{verb} it with `python -m app index build --catalog {catalog}{extra}`"
