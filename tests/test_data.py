"""Fashion-MNIST loading from the real Debian files and from folders written here."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.data import DEBIAN_DIR, FILES, DatasetError, candidate_dirs, load_fashion_mnist


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file (gzip when the name ends in .gz), as the data set ships them."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def link_debian_files(directory: Path, but: str | None = None) -> Path:
    """A folder holding the Debian files (symlinked), except ``but``, which is copied to be damaged."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, _ in FILES.values():
        if name == but:
            shutil.copy(DEBIAN_DIR / name, directory / name)
        else:
            (directory / name).symlink_to(DEBIAN_DIR / name)
    return directory


def test_debian_files_load_verified(fmnist):
    data = load_fashion_mnist([DEBIAN_DIR], download=False)
    assert data.source == str(DEBIAN_DIR)
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert data.x_train.dtype == np.uint8
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert np.all(np.bincount(data.y_train, minlength=10) == 6000)
    assert np.all(np.bincount(data.y_test, minlength=10) == 1000)
    assert np.array_equal(data.x_test, fmnist.x_test)


def test_first_folder_holding_the_files_wins_and_unpacked_files_work(tmp_path, fmnist):
    """A copy written here (unpacked, with a marked test image) takes precedence over a later folder."""
    mine = tmp_path / "mine"
    mine.mkdir()
    marked = fmnist.x_test.copy()
    marked[0] = 255 - marked[0]
    arrays = {"x_train": fmnist.x_train, "y_train": fmnist.y_train, "x_test": marked, "y_test": fmnist.y_test}
    for key, (name, _) in FILES.items():
        write_idx(mine / name[:-3], arrays[key])
    empty = tmp_path / "empty"
    empty.mkdir()
    data = load_fashion_mnist([empty, mine, DEBIAN_DIR], download=False)
    assert data.source == str(mine)
    assert np.array_equal(data.x_test[0], marked[0]) and not np.array_equal(data.x_test[0], fmnist.x_test[0])
    assert load_fashion_mnist([DEBIAN_DIR, mine], download=False).source == str(DEBIAN_DIR)


def test_fashion_mnist_dir_is_looked_at_after_debian(monkeypatch, tmp_path):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    dirs = candidate_dirs()
    assert dirs[0] == DEBIAN_DIR and dirs[1] == tmp_path and len(dirs) == 3


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_middle(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 16):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def bad_labels(path: Path) -> None:
    labels = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint8, offset=8).copy()
    labels[7] = 12
    write_idx(path, labels)


def wrong_magic(path: Path) -> None:
    path.write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + gzip.decompress(path.read_bytes())[4:]))


@pytest.mark.parametrize("damage, name, says", [
    (truncate, "train-labels-idx1-ubyte.gz", "unreadable"),
    (flip_middle, "t10k-labels-idx1-ubyte.gz", "unreadable"),
    (bad_labels, "t10k-labels-idx1-ubyte.gz", "labels must be 0-9"),
    (wrong_magic, "train-labels-idx1-ubyte.gz", "not an unsigned-byte IDX file"),
])
def test_damaged_file_is_a_dataset_error(tmp_path, damage, name, says):
    directory = link_debian_files(tmp_path / "copy", but=name)
    damage(directory / name)
    with pytest.raises(DatasetError, match=says) as err:
        load_fashion_mnist([directory], download=False)
    assert name in str(err.value)


def test_wrong_image_count_is_a_dataset_error(tmp_path, fmnist):
    directory = link_debian_files(tmp_path / "copy", but="t10k-images-idx3-ubyte.gz")
    write_idx(directory / "t10k-images-idx3-ubyte.gz", fmnist.x_test[:9999])
    with pytest.raises(DatasetError, match=r"shape \(9999, 28, 28\), expected \(10000, 28, 28\)"):
        load_fashion_mnist([directory], download=False)


def test_missing_everywhere_names_the_places_and_the_fix(tmp_path):
    places = [tmp_path / "a", tmp_path / "b"]
    places[1].mkdir()
    (places[1] / "train-images-idx3-ubyte.gz").write_bytes(b"")  # one file of four is not a data set
    with pytest.raises(DatasetError) as err:
        load_fashion_mnist(places, download=False)
    message = str(err.value)
    for place in places:
        assert f"  - {place}\n" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "FASHION_MNIST_DIR" in message and "downloading was not allowed" in message


def test_fashion_mnist_gallery_feeds_grey_and_colour_models():
    """The 28x28 images as they are for the CNN; letterboxed to size, three equal channels, for VGG-16."""
    from app.gallery import FashionMNISTGallery

    gallery = FashionMNISTGallery("train")
    grey = next(gallery.batches((28, 28, 1), 4))
    colour = next(gallery.batches((56, 56, 3), 4))
    assert grey.images.shape == (4, 28, 28, 1) and colour.images.shape == (4, 56, 56, 3)
    np.testing.assert_array_equal(grey.images[..., 0], gallery.images[:4])
    assert np.array_equal(colour.images[..., 0], colour.images[..., 2])
    halved = colour.images[..., 0].reshape(4, 28, 2, 28, 2).mean(axis=(2, 4))
    assert np.mean(np.abs(halved - gallery.images[:4])) < 6
