"""How big each section runs: the full profile for the committed report, a quick one for CI.

The full profile is sized to finish in under 30 minutes on the 2-core reference machine;
the quick one in about 2 minutes once the served stores exist. Tests build an even
smaller profile of their own.
"""
from __future__ import annotations

from dataclasses import dataclass

TABLE_BITS = 256   # the code length the served stores use; Tables 3 and 4 and the goals read this row
K = 20             # results per query, as the paper returns


@dataclass(frozen=True)
class Profile:
    name: str
    core_n: tuple[int, ...]           # synthetic gallery sizes for the search-core section
    core_bits: tuple[int, ...]
    core_queries: int                 # single-query samples per method (bounded by core_seconds too)
    core_batches: int                 # batches of 64 queries for the throughput figure
    core_seconds: float               # time budget per method and figure
    http_requests: int                # sequential requests from one client, per catalog
    http_seconds: float               # duration of each concurrent run
    index_images: int                 # Fashion-MNIST training images indexed from scratch
    gallery: int                      # gallery size for quality and the paper's tables
    queries: int                      # Fashion-MNIST test images used as queries
    photo_queries: int = 372          # test photos sent over HTTP (the test split has 372)
    photo_index_images: int = 3_409   # catalog photos indexed from scratch (train + validation: 3,409)
    requests_12mp: int = 40           # sequential 12-megapixel uploads
    large_png_requests: int = 20      # 6300x6300 PNG uploads to the one-worker server
    forward_samples: int = 200        # batch-1 forward passes per model and runtime
    load_seconds: float = 60.0        # the load section (bench/load.py), when it is there
    abuse_seconds: float = 15.0       # each measurement of the abuse section (bench/abuse.py)
    quality_bits: tuple[int, ...] = (32, 64, 128, 256, 512)
    table2_steps: int = 6             # gallery sizes gallery/steps, 2*gallery/steps, ..., gallery
    http_clients: int = 8
    builtin_stores: bool = True       # serve the full built-in catalogs (index_store/, built if absent)
    small_store_photos: int = 3       # else: photos per category in the small photo store served
    living_photos: int = 3_409        # living catalogs: the photo catalog's size (train + validation)
    living_add: int = 100             # photos added in place, against a full rebuild
    living_serve_add: int = 20        # photos added while 4 clients search the served catalog
    living_warm_s: float = 3.0        # searching before that add
    living_after_s: float = 4.0       # and after it returned

    def __post_init__(self) -> None:
        if TABLE_BITS not in self.quality_bits or TABLE_BITS not in self.core_bits:
            raise ValueError(f"{TABLE_BITS} bits must be among quality_bits and core_bits")


FULL = Profile("full", core_n=(10_000, 100_000, 1_000_000), core_bits=(64, 256), core_queries=300, core_batches=10,
               core_seconds=5.0, http_requests=500, http_seconds=30.0, index_images=60_000, gallery=60_000,
               queries=10_000)
QUICK = Profile("quick", core_n=(10_000, 50_000), core_bits=(64, 256), core_queries=60, core_batches=2,
                core_seconds=0.5, http_requests=60, http_seconds=3.0, index_images=10_000, gallery=6_000,
                queries=200, photo_queries=60, photo_index_images=100, requests_12mp=8, forward_samples=30,
                load_seconds=5.0, abuse_seconds=4.0, living_photos=300, living_add=10, living_serve_add=5)
