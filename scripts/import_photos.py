"""Re-encode the clothing photo data set into datasets/clothing-photos/ (how the committed copy was made).

    python scripts/import_photos.py ../shared/datasets/clothing-dataset-small

The source (CC0, 3,781 photos, about 106 MB) is scaled so its shorter side is 256 px and
saved as progressive JPEG quality 75 (about 53 MB), keeping the train/validation/test split
and the category folders; the models see at most 224 px, the pages show about 200 px.
EXIF orientation is applied first, so the files need none. Licence and source notes are
copied beside the photos.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image, ImageOps

SHORT_SIDE = 256
QUALITY = 75
OUT = Path(__file__).resolve().parent.parent / "datasets" / "clothing-photos"


def reencode(src: Path, dst: Path) -> None:
    with Image.open(src) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        scale = SHORT_SIDE / min(img.size)
        if scale < 1:
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        img.save(dst, "JPEG", quality=QUALITY, optimize=True, progressive=True)


def main(source: str) -> int:
    root = Path(source)
    files = sorted(root.glob("*/*/*.jpg"))
    if not files:
        print(f"no photos under {root}/<split>/<category>/", file=sys.stderr)
        return 2
    for i, src in enumerate(files, 1):
        reencode(src, OUT / src.relative_to(root))
        if i % 500 == 0 or i == len(files):
            print(f"{i}/{len(files)}", flush=True)
    for name in ("LICENSE", "README.md"):  # SOURCE.md here is our own, saying what changed
        if (root / name).exists():
            shutil.copy(root / name, OUT / ("UPSTREAM_README.md" if name == "README.md" else name))
    size = sum(p.stat().st_size for p in OUT.rglob("*.jpg"))
    print(f"{len(files)} photos, {size / 1e6:.1f} MB in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/clothing-dataset-small"))
