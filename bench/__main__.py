"""``python -m bench [--quick] [--json PATH] [--report-dir DIR] [--report-only JSON]``.

``main(argv)`` is also what ``python -m app bench ARGS`` calls.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parser(prog: str = "python -m bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Fashion-16 benchmarks: search core to 1M items, HTTP and lean serving (both catalogs), "
                    "indexing, quality by code length, the paper's Tables 2-4, Keras vs LiteRT. The full run "
                    "(about 25 min on 2 cores) rewrites docs/benchmarks.md, its JSON and plots. Also run as "
                    "`python -m app bench ARGS` from a checkout.")
    p.add_argument("--quick", action="store_true", help="smoke-test sizes (about 2 min once the stores exist); "
                                                        "writes no report unless --report-dir is given")
    p.add_argument("--json", metavar="PATH", help="also write the run's JSON here")
    p.add_argument("--report-dir", metavar="DIR", help="write benchmarks.md, its JSON and plots here "
                                                       "(default: docs/ for the full run)")
    p.add_argument("--report-only", metavar="JSON", help="measure nothing: render the report from a saved run's "
                                                         "JSON into --report-dir (default: docs/)")
    scale = p.add_argument_group("scale (run only with --scale; bench/scale.py: about 40 min and 35 GB of disk)")
    scale.add_argument("--scale", action="store_true", help="only the scale run: 1M photo-sized items on HDF5 and a "
                                                            "Milvus server, Fashion-MNIST on Milvus Lite; JSON to "
                                                            "docs/milvus-scale.json (or --json)")
    scale.add_argument("--scale-n", type=int, default=1_000_000, metavar="N", help="items in the HDF5 catalog")
    scale.add_argument("--scale-milvus-n", type=int, metavar="N", help="items in the Milvus catalog (default: N)")
    scale.add_argument("--scale-parts", default="fashion-mnist,hdf5,milvus", metavar="LIST",
                       help="which parts: fashion-mnist, hdf5, milvus (comma-separated)")
    scale.add_argument("--scale-dir", metavar="DIR", help="where the stores go (default: the temporary folder)")
    scale.add_argument("--scale-fm-limit", type=int, metavar="N", help="Fashion-MNIST queries (default: all 10,000)")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> int:
    args = parser(prog).parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.report_only:
        from .report import render_report
        from .runner import DOCS

        render_report(args.report_only, args.report_dir or DOCS)  # says where it wrote
        return 0
    if args.scale:
        from .scale import run_scale

        parts = {part.strip() for part in args.scale_parts.split(",") if part.strip()}
        results = run_scale(args.scale_n, args.scale_milvus_n or args.scale_n, parts, args.scale_dir,
                            args.scale_fm_limit, args.json)
        return 0 if all(g["met"] for g in results["goals"]) else 1
    from .runner import run_bench

    results = run_bench(quick=args.quick, json_path=args.json, report_dir=args.report_dir)
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
