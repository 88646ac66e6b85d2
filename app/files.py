"""Files that must never be half-written or mistaken: atomic writes and content hashes.

Everything the project writes for keeps (catalog stores, converted models, fetched
weights) goes through ``write_atomically``: the bytes go to an unnamed temporary file
(Linux O_TMPFILE) that only gets a name once complete and synced, then replaces the old
file in one rename. A killed writer leaves nothing behind; where O_TMPFILE is missing, a
named temp file is used and the next write clears those of dead writers.

A folder that cannot take the file (read-only, not ours, full) is found out before the work
that produces it (``check_room``, minutes of indexing) and, should it fill up meanwhile, when
writing: both raise ``CannotWrite``, one sentence naming the folder and the reason.
"""
from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

# What a folder that cannot take a file answers: full, over quota, read-only, not ours, file too big.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


class CannotWrite(OSError):
    """A file cannot be written where it should go; the message says where and why, for people."""

    def __str__(self) -> str:  # the message alone, without OSError's "[Errno N]"
        return self.strerror or super().__str__()


def cannot_write(path: Path, exc: OSError) -> CannotWrite:
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
              errno.EROFS: "the file system is read-only", errno.EFBIG: "the file would be too large"}
    why = reason.get(exc.errno, "permission denied")
    return CannotWrite(exc.errno, f"cannot write {path}: {why} ({exc.strerror})")


def check_room(path: str | Path, needed_bytes: int) -> None:
    """Before the work that makes it: can ``path``'s folder take a new file of about ``needed_bytes``?

    The folder is made if missing (the write would make it), then a temporary file is created
    in it for real (permissions, read-only mounts, quotas answer that, whoever runs this).
    """
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        free = shutil.disk_usage(folder).free
    except OSError as exc:  # read-only, not ours, a file where the folder should be, ...
        raise CannotWrite(exc.errno, f"cannot write to {folder}: {exc.strerror or exc}") from None
    if free < needed_bytes:
        raise CannotWrite(errno.ENOSPC, f"not enough room in {folder} for {Path(path).name}: it needs about "
                                        f"{needed_bytes / 1e6:,.0f} MB and {free / 1e6:,.0f} MB are free")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomically(path: str | Path, data: bytes, on_written: Callable[[], None] | None = None) -> Path:
    """Until the final rename nothing has the name ``path``; a crash leaves the old file and no other.

    ``on_written`` runs once the data is on disk but has no name yet (tests stop a writer there).
    A folder that cannot take the file raises ``CannotWrite``; the old file is left as it was.
    """
    try:
        return _write_atomically(Path(path), data, on_written)
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS and not isinstance(exc, CannotWrite):
            raise cannot_write(Path(path), exc) from None
        raise


def _write_atomically(path: Path, data: bytes, on_written: Callable[[], None] | None) -> Path:
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
        if pid.isdigit() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (temporary files named after a dead one can go)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
