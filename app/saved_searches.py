"""Saved searches: what a results URL needs to search again, kept for a bounded time by every worker.

An upload's results get an address (``/results/<id>``) that reloads and can be shared. The
address must work whichever gunicorn worker answers it, so searches are kept in one SQLite
database (WAL mode: readers never wait for the writer) in ``FASHION16_RESULTS_DIR``. Kept
per search: a thumbnail of the searched picture (at most 256 px, JPEG or PNG), the model's
outputs for it (class probabilities and the embedding: all a search in another category or
mode needs), which catalog and model, the crop box and the first search's timings. Never
the upload itself. Searches expire ``FASHION16_RESULTS_TTL_HOURS`` after they were made;
when the database passes ``FASHION16_RESULTS_MAX_MB``, the oldest go first.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16}")
DATABASE = "searches.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    catalog TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    probabilities BLOB NOT NULL,
    embedding BLOB NOT NULL,
    thumbnail BLOB NOT NULL,
    thumbnail_type TEXT NOT NULL,
    seen BLOB,
    box TEXT,
    timings TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS searches_created ON searches (created);
"""


SETUP_SECONDS = 30.0


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLite's "database is locked" (or "busy"): another connection holds the lock for now."""
    return "locked" in str(exc) or "busy" in str(exc)


class Expired(LookupError):
    """The search existed but is past its time."""


@dataclass(frozen=True)
class SavedSearch:
    """One saved search: enough to show its picture and to search again."""

    catalog: str
    model_sha256: str
    probabilities: np.ndarray   # float32, as the model gave them
    embedding: np.ndarray       # float32
    thumbnail: bytes
    thumbnail_type: str         # image/jpeg or image/png
    seen: bytes | None = None   # PNG of what a grey model saw (the paper's demo), else None
    box: str | None = None      # the crop box searched, "x,y,w,h" in fractions
    timings_ms: dict = field(default_factory=dict)
    id: str = ""
    created: float = 0.0


class SavedSearches:
    """The database of saved searches; one connection per thread, safe across processes."""

    def __init__(self, folder: Path, ttl_seconds: float, max_bytes: int, owner: tuple[int, int] | None = None):
        """``owner``: the (uid, gid) that serves requests when this process is root and will give root up
        (app/privileges.py); the folder and the database's files are made theirs."""
        self.folder, self.ttl, self.max_bytes = Path(folder), ttl_seconds, max_bytes
        self.path = self.folder / DATABASE
        self.owner = owner if owner is not None and os.geteuid() == 0 else None
        self._local = threading.local()
        prepare_folder(self.folder, self.owner)
        self._create()
        self._hand_over()

    def _create(self) -> None:
        """Make the database WAL and give it its table. Every gunicorn worker does this at the same moment on
        a new folder, and SQLite answers "database is locked" at once, without waiting its timeout, to one
        of two connections that both read and then want to write (it would deadlock). So: tried again
        until SETUP_SECONDS have passed."""
        deadline = time.monotonic() + SETUP_SECONDS
        while True:
            try:
                db = self._connect()
                db.execute("BEGIN IMMEDIATE")  # the write lock first, with the busy timeout: no read-then-write
                try:
                    for statement in filter(str.strip, SCHEMA.split(";")):
                        db.execute(statement)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05 + 0.05 * secrets.randbelow(4))

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=True)
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":  # WAL stays in the file
                    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]  # the old mode when it could not
                    if mode.lower() != "wal":
                        raise sqlite3.OperationalError(f"the database stayed in {mode} journal mode, not WAL "
                                                       f"(busy, or a file system without WAL)")
                db.execute("PRAGMA synchronous=NORMAL")  # WAL: a power cut may lose the last searches, never corrupt
            except BaseException:
                db.close()
                raise
            self._local.db = db
            self._hand_over()
        return db

    def _hand_over(self) -> None:
        """While still root: the database and its WAL files belong to the user who serves (else they could
        not write what root created during warm-up)."""
        if self.owner is None or os.geteuid() != 0:
            return
        for name in (DATABASE, DATABASE + "-wal", DATABASE + "-shm"):
            try:
                os.chown(self.folder / name, *self.owner, follow_symlinks=False)
            except FileNotFoundError:
                pass

    def save(self, search: SavedSearch, now: float | None = None) -> str:
        """Keep a search; returns its id (random, unguessable: the address is the only key to the thumbnail)."""
        now = time.time() if now is None else now
        search_id = secrets.token_urlsafe(12)
        probs = np.asarray(search.probabilities, np.float32).tobytes()
        emb = np.asarray(search.embedding, np.float32).tobytes()
        size = len(probs) + len(emb) + len(search.thumbnail) + len(search.seen or b"") + 200
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO searches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (search_id, now, search.catalog, search.model_sha256, probs, emb, search.thumbnail,
                        search.thumbnail_type, search.seen, search.box, json.dumps(search.timings_ms), size))
            self._evict(db, now)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return search_id

    def _evict(self, db: sqlite3.Connection, now: float) -> None:
        """Drop expired searches, then the oldest while the total is over the size limit."""
        db.execute("DELETE FROM searches WHERE created < ?", (now - self.ttl,))
        excess = db.execute("SELECT COALESCE(SUM(size), 0) FROM searches").fetchone()[0] - self.max_bytes
        oldest = []
        for search_id, size in db.execute("SELECT id, size FROM searches ORDER BY created"):
            if excess <= 0:
                break
            oldest.append((search_id,))
            excess -= size
        db.executemany("DELETE FROM searches WHERE id = ?", oldest)

    def get(self, search_id: str, now: float | None = None) -> SavedSearch:
        """A saved search; KeyError when unknown (or long gone), Expired when past its time."""
        if not ID_PATTERN.fullmatch(search_id):
            raise KeyError(search_id)
        row = self._connect().execute(
            "SELECT catalog, model_sha256, probabilities, embedding, thumbnail, thumbnail_type, seen, box, timings, "
            "created FROM searches WHERE id = ?", (search_id,)).fetchone()
        if row is None:
            raise KeyError(search_id)
        catalog, sha, probs, emb, thumb, thumb_type, seen, box, timings, created = row
        if created < (time.time() if now is None else now) - self.ttl:
            raise Expired(search_id)
        return SavedSearch(catalog, sha, np.frombuffer(probs, np.float32), np.frombuffer(emb, np.float32), thumb,
                           thumb_type, seen, box, json.loads(timings), search_id, created)

    def count(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM searches").fetchone()[0]

    def total_bytes(self) -> int:
        return self._connect().execute("SELECT COALESCE(SUM(size), 0) FROM searches").fetchone()[0]


def prepare_folder(folder: Path, owner: tuple[int, int] | None = None) -> None:
    """Create the folder for the serving user alone (thumbnails of people's photos), or refuse one another user
    owns. ``owner``: started as root, the (uid, gid) that serves requests, who gets the folder."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the saved-searches folder {folder} ({exc.strerror}); set FASHION16_RESULTS_DIR "
                      f"to a writable folder, or FASHION16_RESULTS=off") from None
    if owner is not None and folder.stat().st_uid in (0, owner[0]):
        os.chown(folder, *owner, follow_symlinks=False)
    expected = owner[0] if owner is not None else os.getuid() if hasattr(os, "getuid") else None
    if expected is not None and folder.stat().st_uid != expected:
        raise OSError(f"the saved-searches folder {folder} belongs to another user; set FASHION16_RESULTS_DIR to a "
                      f"folder of the serving user's")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(f"the saved-searches folder {folder} is not writable; set FASHION16_RESULTS_DIR to a writable "
                      f"folder, or FASHION16_RESULTS=off")
