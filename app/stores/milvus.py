"""Catalog stores in Milvus: Milvus Lite files (one process) and Milvus servers (any number of workers).

Same behaviour as the HDF5 store (app/stores/hdf5.py): ids given once and never reused,
versions 1, 2, 3, ..., ``next_id``, digests computed the same way (a catalog built and
changed the same way has the same digest in both), and a commit that fails leaves the old
version. The items stay in Milvus: a worker holds a client and one version's filter, not
the catalog, so its memory does not grow with the catalog.

How a version is made (app/stores/milvus_rows.py has the layout): the writer spools what it
is given to disk (bounded memory, as HDF5's), then at commit
1. undoes what a writer that died before its commit left (rows of versions that never were);
2. writes the new rows (a rebuild: a new base) and restamps the removed ones;
3. checks that Milvus holds exactly the items the new version must have;
4. writes the version record: the commit, one row (readers see the old version or the new);
5. deletes rows and collections no version still kept (the last ``KEEP_VERSIONS``) uses.
One writer at a time per catalog: Lite files are one process's; on a server, the commit
refuses when another writer committed since this one started.
"""
from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..hashing import Hasher
from .arrays import check_part, content_digest, part_digest
from .base import Manifest, StoreError, check_name
from .changes import Changes, QueuedWriter
from .milvus_client import WRITE_TIMEOUT_S, Location, client, milvus_errors, parse_uri
from .milvus_rows import (ALL_FIELDS, ID_LIMIT, LIVE, QUERY_CAP, VARCHAR_LIMIT, check_fits, entity_columns,
                          items_collection, items_schema, pack, part_columns, versions_collection, versions_schema)
from .milvus_snapshot import FORMAT, ID_PAGE, MilvusSnapshot, VersionRecord, read_kwargs

KEEP_VERSIONS = 3          # versions whose rows stay readable (a worker may still be answering from an older one)
MAX_SEGMENTS = 16          # digests of changes since the base kept apart; more are folded into one
INSERT_BYTES = 8 << 20     # per insert call (a server takes 64 MB at most)
FLUSH_BYTES = 512 << 20    # a big build seals what it wrote every so often: a 2.3 server held 5.2 GB for 150k
                           # photo items while they were growing segments, 2.6 GB once sealed
UNDO_PAGE = 1_024          # rows of an unfinished commit put right per round (whole rows: embeddings too)
OPEN_SAMPLE = 64           # items whose codes are re-hashed when a version is opened
SERVER_PARTITIONS = 16     # a server hashes the category partition key into this many partitions


def open_milvus(uri: str, catalog: str | None) -> MilvusStore:
    if not catalog:
        raise ValueError(f"{uri} may hold many catalogs: name the one you mean with --catalog NAME")
    return MilvusStore(uri, catalog)


def build_hint(catalog: str, uri: str) -> str:
    return f"build it with `python -m app index build --catalog {catalog} --store {uri}`"


class MilvusWriter(QueuedWriter):
    """Changes queued on the local disk until ``commit`` writes them to Milvus as one new version."""

    def __init__(self, store: MilvusStore, changes: Changes, kind: str, seed: int = 0, version: int | None = None):
        self.store, self.changes, self.kind, self.seed, self.version = store, changes, kind, seed, version

    def remove(self, ids: Sequence[int]) -> None:
        """Queue removals, checked in one query (KeyError for an id the version does not hold)."""
        if self.base is None:
            raise ValueError("a rebuild replaces everything; there is nothing to remove")
        ids = [int(i) for i in ids]
        held = self.base.present(ids)
        for i in ids:
            if i not in held or i in self.changes.removed:
                raise KeyError(i)
            self.changes.removed.append(i)

    def commit(self, build: dict | None = None) -> int:
        self._record_build(build)
        try:
            return self.store._commit(self)
        finally:
            self.abort()

    def abort(self) -> None:
        self.changes.close()


class MilvusStore:
    """``milvus-lite:PATH.db[/PREFIX]`` or ``milvus://HOST:PORT[/PREFIX]``: one catalog in Milvus."""

    def __init__(self, uri: str, catalog: str):
        self.where: Location = parse_uri(uri)
        self.catalog = check_name(catalog)
        self.uri = self.where.uri
        self.versions_name = versions_collection(self.where.prefix, self.catalog)

    @property
    def _client(self):
        return client(self.where)

    # -------------------------------------------------------------- reading

    def _records(self, fields: tuple[str, ...] = ("version", "record")) -> list[dict]:
        """Every kept version's row, newest first ([] when the catalog was never built here)."""
        with milvus_errors(self.where, "reading versions"):
            if not self._client.has_collection(self.versions_name):
                return []
            rows = self._client.query(self.versions_name, filter="version >= 0", output_fields=list(fields),
                                      consistency_level="Strong")
        return sorted(rows, key=lambda r: -r["version"])

    def _latest(self) -> VersionRecord | None:
        rows = self._records()
        return VersionRecord.parse(rows[0]["record"], self.uri, self.catalog) if rows else None

    def exists(self) -> bool:
        return bool(self._records(("version",)))

    def version(self) -> int | None:
        try:
            rows = self._records(("version",))
        except StoreError:
            return None
        return int(rows[0]["version"]) if rows else None

    def snapshot(self) -> MilvusSnapshot:
        record = self._latest()
        if record is None:
            raise StoreError(f"catalog {self.catalog}: no store in {self.uri}{self._others()}; "
                             f"{build_hint(self.catalog, self.uri)}")
        snapshot = MilvusSnapshot(self.where, self.catalog, record)
        held = snapshot.live_count()
        if held != len(snapshot):
            raise StoreError(f"{self.uri}: catalog {self.catalog} version {snapshot.version} should hold "
                             f"{len(snapshot)} items, Milvus has {held}: its collections were changed outside "
                             f"Fashion-16; {build_hint(self.catalog, self.uri)}")
        rows = self._sample(snapshot)
        if snapshot.check_codes(rows) > max(1, len(rows) // 100):
            raise StoreError(f"{self.uri}: catalog {self.catalog}'s stored codes do not match their embeddings; "
                             f"{build_hint(self.catalog, self.uri)}")
        return snapshot

    def _sample(self, snapshot: MilvusSnapshot) -> list[dict]:
        with milvus_errors(self.where, "reading items"):
            return self._client.query(snapshot.record.items, filter=snapshot._filter(None), limit=OPEN_SAMPLE,
                                      output_fields=["code", "embedding"], **snapshot._read)

    def _others(self) -> str:
        """", which holds catalogs a, b" when the place has other catalogs (a wrong --catalog or URI)."""
        try:
            with milvus_errors(self.where, "listing collections"):
                names = self._client.list_collections()
        except StoreError:
            return ""
        start, end = f"{self.where.prefix}_", "_versions"
        others = sorted(n[len(start):-len(end)].replace("_", "-") for n in names
                        if n.startswith(start) and n.endswith(end))
        return f" (it holds {', '.join(others)})" if others else ""

    def verify(self) -> MilvusSnapshot:
        """The deep check of ``index verify``: every item read back, its code re-hashed, ids, fields and counts."""
        snapshot = self.snapshot()
        counts = np.zeros(len(snapshot.manifest.class_names), np.int64)
        bad, seen, last = 0, 0, -1
        for rows in snapshot.pages(["code", "embedding", "category", "label", "path"], page=ID_PAGE // 4):
            ids = [r["id"] for r in rows]
            if ids[0] <= last or len(set(ids)) != len(ids) or ids[-1] >= snapshot.next_id:
                raise StoreError(f"{self.uri}: item ids are repeated or not below next_id")
            last = ids[-1]
            cats = np.array([r["category"] for r in rows])
            labels = np.array([r["label"] for r in rows])
            if cats.min() < 0 or cats.max() >= len(counts) or labels.min() < -1 or labels.max() >= len(counts):
                raise StoreError(f"{self.uri}: an item is filed under a category that does not exist")
            if any(p.startswith("/") or ".." in p.split("/") or not p for p in (r["path"] for r in rows)):
                raise StoreError(f"{self.uri}: an item path leaves the catalog folder")
            counts += np.bincount(cats, minlength=len(counts))
            bad += snapshot.check_codes(rows)
            seen += len(rows)
        if not np.array_equal(counts, snapshot.counts()):
            raise StoreError(f"{self.uri}: items per category {counts.tolist()} are not the recorded "
                             f"{snapshot.counts().tolist()}")
        if bad > max(1, seen // 100):
            raise StoreError(f"{self.uri}: {bad} of {seen} codes do not match their embeddings")
        return snapshot

    # -------------------------------------------------------------- writing

    def writer(self) -> MilvusWriter:
        base = self.snapshot()
        return MilvusWriter(self, Changes(base.manifest, base, base.next_id, spool_dir=spool_dir()), "delta")

    def rebuild(self, manifest: Manifest, seed: int = 0, next_id: int = 0, hasher: Hasher | None = None,
                version: int | None = None) -> MilvusWriter:
        if manifest.catalog != self.catalog:
            raise StoreError(f"this store is for catalog {self.catalog}, not {manifest.catalog}")
        latest = self._latest()
        if latest is not None:
            next_id = max(next_id, int(latest.data["next_id"]))
        manifest = manifest.with_(seed=seed, created=manifest.created or time.strftime("%Y-%m-%dT%H:%M:%S"))
        changes = Changes(manifest, None, next_id, spool_dir=spool_dir(), fixed_hasher=hasher)
        return MilvusWriter(self, changes, "base", seed, version)

    def _commit(self, writer: MilvusWriter) -> int:
        changes = writer.changes
        kept = [VersionRecord.parse(r["record"], self.uri, self.catalog) for r in self._records()]
        latest = kept[0] if kept else None
        current = latest.version if latest else 0
        if changes.base is not None and current != changes.base.version:
            raise StoreError(f"catalog {self.catalog} changed since this writer started (now version {current}); "
                             f"try again")
        version = writer.version if writer.version is not None else current + 1
        if version <= current:
            raise StoreError(f"{self.uri} is at version {current} already; cannot write version {version}")
        try:
            hasher = changes.hasher(writer.seed)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        manifest = changes.manifest.with_(embedding_dim=int(hasher.hyperplanes.shape[1]))
        if not np.array_equal(Hasher.create(manifest.embedding_dim, manifest.bits, manifest.seed,
                                            hasher.center).hyperplanes, hasher.hyperplanes):
            raise StoreError(f"refusing to write catalog {self.catalog}: its hyperplanes are not those of seed "
                             f"{manifest.seed}, and Milvus stores keep only the seed and centre")
        part = changes.part(hasher)
        try:
            check_part(part, manifest, hasher)
        except ValueError as exc:
            raise StoreError(f"refusing to write catalog {self.catalog}: {exc}") from None
        if len(part.ids) and part.ids.max() >= ID_LIMIT:
            raise StoreError(f"item ids must stay below {ID_LIMIT} in a Milvus store")
        image_shape = list(part.images.shape[1:]) if part.images is not None else (
            None if latest is None or writer.kind == "base" else latest.data.get("image_shape"))
        check_fits(manifest.embedding_dim, image_shape)
        name = items_collection(self.where.prefix, self.catalog, manifest.bits)
        self._ensure_collections(name, manifest.bits)
        self._undo_unfinished(name, current)
        base = version if writer.kind == "base" else latest.base
        ts = self._write(name, part, hasher, base, version)
        counts = np.bincount(part.categories.astype(np.int64), minlength=len(manifest.class_names))
        if writer.kind == "delta":
            gone, ts_removed = self._restamp(name, changes.base, part.removed, version)
            counts = np.asarray(latest.data["counts"], np.int64) + counts - gone
            ts = max(ts, ts_removed)
        segments = ([] if writer.kind == "base" else list(latest.data.get("segments", []))) + [part_digest(part)]
        if len(segments) > MAX_SEGMENTS:
            segments = [content_digest({}, hasher, 0, 0, segments)]
        record = VersionRecord({
            "format": FORMAT, "catalog": self.catalog, "manifest": manifest.to_dict(), "version": version,
            "next_id": changes.next_id, "base": base, "items": name, "ts": ts, "counts": counts.tolist(),
            "center": pack(hasher.center.astype(np.float32)[None])[0], "image_shape": image_shape,
            "segments": segments, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "digest": content_digest(manifest, hasher, version, changes.next_id, segments)})
        self._check_written(record)
        self._publish(record, current)
        self._collect_garbage([record, *kept])
        return version

    def _ensure_collections(self, items: str, bits: int) -> None:
        """Create (indexed, loaded) the collections a commit needs; a new catalog's two are loaded together."""
        with milvus_errors(self.where, "creating collections"):
            c = self._client
            todo = [(name, schema, field) for name, schema, field in (
                (self.versions_name, versions_schema(), "unused"),
                (items, items_schema(bits, not self.where.lite), "code")) if not c.has_collection(name)]
            for name, schema, field in todo:
                extra = {} if self.where.lite or field == "unused" else {"num_partitions": SERVER_PARTITIONS}
                c.create_collection(name, schema=schema, consistency_level="Strong", timeout=WRITE_TIMEOUT_S, **extra)
                index = c.prepare_index_params()
                index.add_index(field, index_type="BIN_FLAT", metric_type="HAMMING")
                c.create_index(name, index, sync=False, timeout=WRITE_TIMEOUT_S)  # a flat index has nothing to build
            for name, _, _ in todo:
                c.load_collection(name, _async=True, timeout=WRITE_TIMEOUT_S)
            deadline = time.monotonic() + WRITE_TIMEOUT_S
            waiting = [name for name, _, _ in todo]
            while waiting:  # pymilvus would wait for each in turn, polling every 0.5 s
                waiting = [n for n in waiting if str(c.get_load_state(n)["state"]) != "Loaded"]
                if waiting and time.monotonic() > deadline:
                    raise StoreError(f"{self.uri}: Milvus did not load {', '.join(waiting)} in time")
                time.sleep(0.05 if waiting else 0)

    def _orm(self, name: str):
        """The ORM view of a collection: it inserts columns (11k rows/s measured; row dicts: 1.5k rows/s)."""
        from pymilvus import Collection

        return Collection(name, using=self._client._using)

    def _undo_unfinished(self, items: str, current: int) -> None:
        """Rows stamped with versions after ``current`` were left by a writer that died before its commit."""
        unfinished = f"added > {current} or (removed > {current} and removed < {LIVE})"
        with milvus_errors(self.where, "undoing an unfinished commit"):
            c = self._client
            while rows := c.query(items, filter=unfinished, output_fields=ALL_FIELDS, limit=UNDO_PAGE,
                                  consistency_level="Strong", timeout=WRITE_TIMEOUT_S):
                stale = [r["pk"] for r in rows if r["added"] > current]
                if stale:
                    c.delete(items, ids=stale, timeout=WRITE_TIMEOUT_S)
                restamped = [r for r in rows if r["added"] <= current]
                if restamped:
                    self._orm(items).upsert(entity_columns(restamped, LIVE), timeout=WRITE_TIMEOUT_S)
                if len(rows) < UNDO_PAGE:
                    break

    def _write(self, items: str, part, hasher: Hasher, base: int, version: int) -> int:
        """Insert a part's rows (column batches of about INSERT_BYTES); the Milvus timestamp of the last write."""
        n = len(part.ids)
        row_bytes = 2 * hasher.hyperplanes.shape[1] * 4 // 3 + (0 if part.images is None else
                                                                  int(np.prod(part.images.shape[1:])) * 4 // 3) + 200
        step = max(1, INSERT_BYTES // row_bytes)
        codes = part.codes
        ts, unflushed = 0, 0
        with milvus_errors(self.where, "writing items"):
            collection = self._orm(items)
            for start in range(0, n, step):
                result = collection.insert(part_columns(part, start, min(n, start + step), codes, base, version),
                                           timeout=WRITE_TIMEOUT_S)
                ts = max(ts, int(result.timestamp or 0))
                unflushed += min(n, start + step) - start
                if not self.where.lite and unflushed * row_bytes >= FLUSH_BYTES:
                    self._client.flush(items, timeout=WRITE_TIMEOUT_S)  # sealed segments leave the server's memory
                    unflushed = 0
        return ts

    def _restamp(self, items: str, base: MilvusSnapshot, removed: np.ndarray, version: int) -> tuple[np.ndarray, int]:
        """Mark removed items as gone from ``version`` on (older versions still see them); per-category counts."""
        gone = np.zeros(len(base.counts()), np.int64)
        ts = 0
        ids = [int(i) for i in removed]
        with milvus_errors(self.where, "removing items"):
            collection = self._orm(items)
            for start in range(0, len(ids), 1024):
                rows = base._query(f"id in {ids[start:start + 1024]}", ALL_FIELDS)
                if not rows:
                    continue
                gone += np.bincount([r["category"] for r in rows], minlength=len(gone))
                result = collection.upsert(entity_columns(rows, version), timeout=WRITE_TIMEOUT_S)
                ts = max(ts, int(result.timestamp or 0))
        return gone, ts

    def _check_written(self, record: VersionRecord) -> None:
        """Milvus holds exactly the new version's items before the version is published."""
        snapshot = MilvusSnapshot(self.where, self.catalog, record)
        held = snapshot.live_count()
        if held != len(snapshot):
            raise StoreError(f"{self.uri}: Milvus holds {held} items of the new version of {self.catalog}, not "
                             f"{len(snapshot)}; nothing was committed (version {record.version - 1} stays)")

    def _publish(self, record: VersionRecord, current: int) -> None:
        """Write the version record: the commit. Refused when another writer committed meanwhile."""
        text = json.dumps(record.data, sort_keys=True)
        if len(text) > VARCHAR_LIMIT:
            raise StoreError(f"catalog {self.catalog}: its version record is too long for Milvus ({len(text)} chars)")
        newest = self._records(("version",))
        if (newest[0]["version"] if newest else 0) != current:
            raise StoreError(f"catalog {self.catalog} was changed by another writer meanwhile; try again")
        with milvus_errors(self.where, "committing"):
            self._client.insert(self.versions_name, [{"version": record.version, "record": text, "unused": b"\0"}],
                                timeout=WRITE_TIMEOUT_S)

    def _collect_garbage(self, records: list[VersionRecord]) -> None:
        """Delete the rows, records and collections that no kept version uses (a failure only leaves them)."""
        kept = [r for r in records if r.version > records[0].version - KEEP_VERSIONS]
        oldest = min(kept, key=lambda r: r.version)
        gone = f"base < {oldest.base} or removed <= {oldest.version}"
        used = {r.items for r in kept}
        try:
            with milvus_errors(self.where, "collecting garbage"):
                c = self._client
                old = [r.version for r in records if r not in kept]
                if old:
                    c.delete(self.versions_name, ids=old, timeout=WRITE_TIMEOUT_S)
                mine = items_collection(self.where.prefix, self.catalog, 0)[:-1]
                for name in c.list_collections():
                    if name.startswith(mine) and name not in used:
                        c.drop_collection(name)
                for name in used:
                    read = read_kwargs(records[0].ts)
                    while rows := c.query(name, filter=gone, output_fields=["pk"], limit=QUERY_CAP, **read):
                        c.delete(name, ids=[r["pk"] for r in rows], timeout=WRITE_TIMEOUT_S)
                        if len(rows) < QUERY_CAP:
                            break
                        read = {"consistency_level": "Strong"}  # the next page must see these deletions
        except StoreError:
            pass

    def describe(self) -> str:
        if self.where.lite:
            return (f"{self.uri}: Milvus Lite file, held by this one process (serve it with one worker); exact "
                    f"BIN_FLAT Hamming scan filtered by category; embeddings read from Milvus per query")
        return (f"{self.uri}: Milvus server at {self.where.address}, shared by any number of workers and hosts; "
                f"exact BIN_FLAT Hamming scan per category (partition key); workers hold no items")


def spool_dir() -> Path:
    """Where a writer spools its items before the commit (the system's temporary folder)."""
    return Path(tempfile.gettempdir())
