"""Issue 17: `index build` into a folder that cannot take the store fails with one `error:` line, exit 2.

Before indexing when the folder is read-only, not writable or too small for an estimate of
the store; and when the final write itself fails. Real file systems: a small tmpfs, a
read-only tmpfs, and ext4's immutable attribute (which even root cannot write past).
"""
from __future__ import annotations

import errno
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.files import CannotWrite, check_room, write_atomically

pytestmark = pytest.mark.skipif(shutil.which("mount") is None or shutil.which("chattr") is None,
                                reason="needs mount and chattr")


@contextmanager
def tmpfs(where: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@contextmanager
def immutable(path: Path) -> Iterator[Path]:
    """chattr +i: no new name in a folder, no replacing a file, whoever asks (root too)."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.fixture()
def gallery(tmp_path, test_photos) -> Path:
    folder = tmp_path / "gallery"
    folder.mkdir()
    for i in np.flatnonzero(test_photos.labels == 6)[:3]:
        (folder / f"item{i}.jpg").write_bytes(test_photos.read(int(i)))
    return folder


def build(capsys, gallery: Path, store: Path) -> tuple[int, str]:
    code = main(["index", "build", "--catalog", "shop", "--gallery", str(gallery), "--store", str(store)])
    return code, capsys.readouterr().err


def assert_one_error_line(err: str, *says: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(s in lines[0] for s in says), lines[0]


def test_a_read_only_folder_is_refused_before_indexing(capsys, gallery, tmp_path):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as folder:
        code, err = build(capsys, gallery, folder / "shop")
    assert code == 2
    assert_one_error_line(err, f"cannot write to {folder}", "Read-only file system")  # no "indexing shop" line


def test_a_folder_nobody_may_write_to_is_refused_before_indexing(capsys, gallery, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    with immutable(folder):
        code, err = build(capsys, gallery, folder / "shop")
    assert code == 2
    assert_one_error_line(err, f"cannot write to {folder}", "Operation not permitted")


def test_a_disk_without_room_for_the_store_is_refused_before_indexing(capsys, gallery, tmp_path):
    with tmpfs(tmp_path / "small", "256k") as folder:
        code, err = build(capsys, gallery, folder / "shop")
    assert code == 2
    assert_one_error_line(err, f"not enough room in {folder / 'shop'} for manifest.json", "MB are free")


def test_a_failing_final_write_is_one_line_and_keeps_the_old_version(capsys, gallery, tmp_path):
    """The folder takes new files, so the check passes; the manifest cannot be replaced (immutable):
    the new version is not committed, the old one is served as it was, nothing is left behind."""
    from app.stores import Hdf5Store

    store = tmp_path / "stores" / "shop"
    assert build(capsys, gallery, store)[0] == 0
    before = sorted(p.name for p in store.iterdir())
    manifest = store / "manifest.json"
    old = manifest.read_bytes()
    with immutable(manifest):
        code, err = build(capsys, gallery, store)
    assert code == 2
    lines = err.strip().splitlines()
    assert "indexing shop" in err and lines[-1] == (f"error: cannot write {manifest}: permission denied "
                                                    f"(Operation not permitted)")
    assert not [line for line in lines if "Traceback" in line or line.startswith("  File")]
    assert manifest.read_bytes() == old and Hdf5Store(store).snapshot().version == 1
    assert sorted(p.name for p in store.iterdir()) == before  # no new segment, spool or temporary file left


def test_a_full_disk_during_the_write_raises_cannot_write_and_leaves_nothing(tmp_path):
    with tmpfs(tmp_path / "full", "256k") as folder:
        check_room(folder / "small.bin", 1000)  # room for a small file
        with pytest.raises(CannotWrite) as err:
            write_atomically(folder / "big.bin", bytes(1_000_000))
        assert err.value.errno == errno.ENOSPC
        assert str(err.value) == f"cannot write {folder / 'big.bin'}: the disk is full (No space left on device)"
        assert list(folder.iterdir()) == []
