"""Files that must never be half-written or mistaken: atomic writes and content hashes.

Everything the project writes for keeps (catalog stores, converted models, fetched
weights) goes through ``write_atomically``: the bytes go to an unnamed temporary file
(Linux O_TMPFILE) that only gets a name once complete and synced, then replaces the old
file in one rename. A killed writer leaves nothing behind; where O_TMPFILE is missing, a
named temp file is used and the next write clears those of dead writers.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomically(path: str | Path, data: bytes, on_written: Callable[[], None] | None = None) -> Path:
    """Until the final rename nothing has the name ``path``; a crash leaves the old file and no other.

    ``on_written`` runs once the data is on disk but has no name yet (tests stop a writer there).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(path.parent, os.O_TMPFILE | os.O_WRONLY, 0o644)
        named = False
    except (AttributeError, OSError):  # no O_TMPFILE (not Linux, or the file system lacks it)
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        named = True
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            if on_written is not None:
                on_written()
            if not named:  # linkat(AT_SYMLINK_FOLLOW) gives the finished file a name (a dir fd forces linkat)
                os.link(f"/proc/self/fd/{f.fileno()}", tmp, src_dir_fd=dir_fd, follow_symlinks=True)
        os.replace(tmp, path)
        os.fsync(dir_fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(dir_fd)
    return path


def remove_stale_temp_files(path: Path) -> None:
    """Delete temp files that writers killed mid-write left beside ``path`` (their process is gone)."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.split(".tmp-", 1)[1].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
