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
    return p


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> int:
    args = parser(prog).parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.report_only:
        from .report import render_report
        from .runner import DOCS

        render_report(args.report_only, args.report_dir or DOCS)  # says where it wrote
        return 0
    from .runner import run_bench

    results = run_bench(quick=args.quick, json_path=args.json, report_dir=args.report_dir)
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
