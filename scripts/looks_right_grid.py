"""Render the README's before/after picture grid: a few test photos and their routed top results, per model.

    .venv/bin/python scripts/looks_right_grid.py --before OLD.tflite --after models/photos.tflite \
        --out docs/looks-right.jpg

Each model indexes the served catalog photos (train + validation) in memory, as `index build`
would, and answers the same test photos (never in the catalog) in routed mode. Rows come in
pairs: the query, then its top results with the `before` model, then with the `after` model.
The queries are evenly spaced through the test split (``--queries`` picks others).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.imaging.decode import MAX_PIXELS, decode  # noqa: E402
from app.photo_dataset import CLASS_NAMES, load_photos  # noqa: E402
from app.runtime import LiteRTModel  # noqa: E402
from app.search import SearchEngine, SoftRouting  # noqa: E402
from app.stores.memory import labelled_store  # noqa: E402

TILE = 112
LABEL = 150


def tile(data: bytes) -> Image.Image:
    img = decode(data).convert("RGB")
    scale = TILE / min(img.size)
    img = img.resize((max(TILE, round(img.width * scale)), max(TILE, round(img.height * scale))),
                     Image.Resampling.BILINEAR)
    left, top = (img.width - TILE) // 2, (img.height - TILE) // 2
    return img.crop((left, top, left + TILE, top + TILE))


def results(model_path: Path, catalog, queries, k: int) -> list[list[int]]:
    model = LiteRTModel(model_path, threads=2)
    inputs = np.stack([model.prepare(model.decode(catalog.read(i), MAX_PIXELS)) for i in range(len(catalog))])
    probs, emb = model(inputs)
    store = labelled_store("grid", CLASS_NAMES, emb, catalog.labels, catalog.paths)  # ids are catalog rows
    engine = SearchEngine(soft=SoftRouting(**model.card.get("soft_routing", {})))
    out = []
    for data in queries:
        p, e = model.forward_one(model.prepare(model.decode(data, MAX_PIXELS)))
        out.append(engine.search(store, p, e, k, "routed").ids.tolist())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, type=Path, help="the old model (.tflite with its card)")
    parser.add_argument("--after", required=True, type=Path, help="the new model (.tflite with its card)")
    parser.add_argument("--out", default=Path("docs/looks-right.jpg"), type=Path)
    parser.add_argument("--queries", type=int, nargs="*", help="test photo indexes (default: 4 evenly spaced)")
    parser.add_argument("--k", type=int, default=8, help="results shown per row")
    args = parser.parse_args(argv)
    catalog, test = load_photos("train", "validation"), load_photos("test")
    picks = args.queries or np.linspace(0, len(test) - 1, 6).astype(int)[1:5].tolist()
    queries = [test.read(i) for i in picks]
    found = {name: results(path, catalog, queries, args.k) for name, path in (("before", args.before),
                                                                               ("after", args.after))}
    width, height = LABEL + TILE * (args.k + 1) + 8, len(picks) * 2 * (TILE + 4) + 8
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for q, (i, data) in enumerate(zip(picks, queries)):
        y0 = 4 + q * 2 * (TILE + 4)
        sheet.paste(tile(data), (LABEL, y0 + TILE // 2))
        draw.text((6, y0 + TILE - 6), f"query: test photo {i}\n({CLASS_NAMES[test.labels[i]]})", fill="black")
        for r, name in enumerate(("before", "after")):
            y = y0 + r * (TILE + 4)
            draw.text((6, y + 8 if r == 0 else y + TILE - 20), f"{name}: top {args.k}", fill="black")
            for j, item in enumerate(found[name][q]):
                sheet.paste(tile(catalog.read(item)), (LABEL + TILE + 8 + j * TILE, y))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=85, optimize=True)  # JPEG (by the suffix): photos, a quarter of the PNG's size
    print(f"wrote {args.out} ({sheet.width}x{sheet.height}, {len(picks)} queries, top {args.k} per model)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
