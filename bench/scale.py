"""``python -m bench --scale``: catalogs one machine strains at, on HDF5 and on a Milvus server (run only when asked).

Three parts, each printed as JSON (and written to docs/milvus-scale.json by default):

- ``fashion_mnist``: ``python -m app evaluate --catalog fashion-mnist`` on the HDF5 store and
  on a Milvus Lite file (``--store milvus-lite:...``): precision and query times side by side.
- ``hdf5`` and ``milvus``: N synthetic photo-sized items (2,560-d, the photo model's width)
  built into each store by a process of its own (items/s, peak memory), then 10,000 added;
  routed and direct search p50/p99 through the production engine; the memory of serving
  processes: stand-in workers (bench/scale_worker.py) one and two at a time, PSS from
  /proc/PID/smaps_rollup (shared pages split between the processes that map them), and
  real gunicorn workers of the app with the photo model. Milvus runs as a local standalone
  server (``milvus`` package, production settings, segments memory-mapped from disk).

Needs about 35 GB of free disk at 1M items (``--scale-dir``); about 40 minutes on 2 cores.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from app.reports import write_json
from app.settings import ROOT

from .environment import environment
from .servers import children, running, worker_pids

ADD_N = 10_000
WORKER_RSS_GOAL_MB = 300.0     # a worker on Milvus, whatever the catalog's size
BUILD_PEAK_GOAL_MB = 4096.0    # building a 1M photo-sized catalog
SHARED_GOAL = 1.3              # two HDF5 workers hold at most this many copies of one
PRECISION_GOAL = 0.002         # Milvus Lite's routed precision@20 within this of HDF5's
GUNICORN = [sys.executable, "-m", "gunicorn", "wsgi:app"]


def smaps(pid: int) -> dict[str, float]:
    """Rss, Pss and their anonymous and file parts of a process, in MB (/proc/PID/smaps_rollup)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        if key in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Private_Dirty"):
            out[key.lower() + "_mb"] = round(int(value.split()[0]) / 1024, 1)
    return out


def tree_rss_mb(pid: int, field: str = "rss_mb") -> float:
    """Resident MB (or another smaps_rollup figure) of a process and all its descendants (a Milvus server)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += smaps(p).get(field, 0.0)
        except OSError:
            continue
        todo += children(p)
    return round(total, 1)


class PeakSampler:
    """The largest resident and anonymous memory of a process tree while a block runs (sampled every 2 s)."""

    def __init__(self, pid: int):
        self.pid, self.peak_rss_mb, self.peak_anon_mb = pid, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            self.peak_rss_mb = max(self.peak_rss_mb, tree_rss_mb(self.pid))
            self.peak_anon_mb = max(self.peak_anon_mb, tree_rss_mb(self.pid, "pss_anon_mb"))

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def child_json(args: list[str], timeout: float = 7200) -> dict:
    """Run ``python -m ARGS`` from the repository root; its last stdout line is its JSON report."""
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_and_add(uri: str, n: int) -> dict:
    build = child_json(["bench.scale_build", uri, str(n)])
    print(f"built {uri}: {build}", file=sys.stderr, flush=True)
    add = child_json(["bench.scale_build", uri, str(n), "--add", str(ADD_N)])
    print(f"added: {add}", file=sys.stderr, flush=True)
    return {"build": build, "add": add}


def stand_in_workers(uri: str, count: int, touch: bool) -> dict:
    """``count`` stand-in workers at once: their search latency and memory."""
    args = [sys.executable, "-m", "bench.scale_worker", uri] + (["--touch"] if touch else [])
    procs = [subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(count)]
    try:
        reports = [json.loads(p.stdout.readline()) for p in procs]
        memory = [smaps(p.pid) for p in procs]
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=60)
    return {"workers": count, "touched_whole_catalog": touch, "per_worker": memory,
            "pss_total_mb": round(sum(m["pss_mb"] for m in memory), 1),
            "rss_total_mb": round(sum(m["rss_mb"] for m in memory), 1),
            "open_s": [r["open_s"] for r in reports], "routed": reports[0]["routed"], "direct": reports[0]["direct"]}


def app_workers(uri: str, count: int, folder: Path) -> dict:
    """The real app (photo model) in gunicorn serving the catalog from ``uri``: each worker's memory after 20 searches."""
    import urllib.request

    from app.photo_dataset import load_photos
    from bench.load import multipart

    photos = load_photos("test")
    photo = photos.read(0)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o711)
    env = {"FASHION16_STORES": f"photos={uri}", "FASHION16_CATALOGS": "photos", "FASHION16_DEFAULT_CATALOG": "photos",
           "FASHION16_WORKERS": str(count), "FASHION16_THREADS": "1", "FASHION16_RESULTS": "0",
           "FASHION16_STORE_DIR": str(folder)}
    log = folder / f"gunicorn-{count}.log"
    with running(GUNICORN, env, log, seconds=600) as server:
        times = []
        for i in range(20 * count):
            body = multipart([("k", "20"), ("mode", "routed" if i % 2 else "direct")],
                             [("image", "q.jpg", "image/jpeg", photo)])
            request = urllib.request.Request(server.url + "/api/search", data=body[0],
                                             headers={"Content-Type": body[1]})
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=120) as response:
                json.load(response)
            times.append(1000 * (time.perf_counter() - start))
        memory = [smaps(pid) for pid in worker_pids(server.process.pid)]
    return {"workers": count, "per_worker": memory, "boot_s": round(server.ready_s or 0, 1),
            "http_p50_ms": round(sorted(times)[len(times) // 2], 1)}


def store_part(uri: str, n: int, folder: Path, server_pid: int | None = None) -> dict:
    if server_pid:
        with PeakSampler(server_pid) as peak:
            out = build_and_add(uri, n)
        time.sleep(30)  # the server settles (seals, hands segments over)
        out["server"] = {"peak_rss_mb": peak.peak_rss_mb, "peak_anon_mb": peak.peak_anon_mb,
                         "rss_mb_after_build": tree_rss_mb(server_pid),
                         "anon_mb_after_build": tree_rss_mb(server_pid, "pss_anon_mb"),
                         "anon_kb_per_item": round(1024 * tree_rss_mb(server_pid, "pss_anon_mb") / (n + ADD_N), 1)}
    else:
        out = build_and_add(uri, n)
    out["one_worker"] = stand_in_workers(uri, 1, touch=server_pid is None)
    out["two_workers"] = stand_in_workers(uri, 2, touch=server_pid is None)
    out["app_workers"] = app_workers(uri, 2, folder / "app")
    if server_pid:
        out["server"]["rss_mb_after_serving"] = tree_rss_mb(server_pid)
    return out


def fashion_mnist(folder: Path, limit: int | None) -> dict:
    """``evaluate --catalog fashion-mnist`` on HDF5 (index_store/) and on a Milvus Lite file."""
    out = {}
    for name, store in (("hdf5", None), ("milvus_lite", f"milvus-lite:{folder / 'fashion-mnist.db'}")):
        report = folder / f"evaluate-{name}.json"
        args = ["app", "evaluate", "--catalog", "fashion-mnist", "--json", str(report)]
        args += (["--store", store] if store else []) + (["--limit", str(limit)] if limit else [])
        subprocess.run([sys.executable, "-m", *args], cwd=ROOT, check=True, timeout=7200)
        out[name] = evaluation_summary(json.loads(report.read_text()))
    return out


def evaluation_summary(data: dict) -> dict:
    """What the scale report keeps of an ``evaluate --json`` report."""
    out = {key: data[key] for key in data if key.startswith(("precision_at", "mean_query_ms", "lsh_recall"))
           or key in ("queries", "catalog_items", "engine")}
    out["p50_ms"] = {mode: data[f"latency_{mode}"]["p50_ms"] for mode in ("routed", "direct", "soft")}
    out["p99_ms"] = {mode: data[f"latency_{mode}"]["p99_ms"] for mode in ("routed", "direct", "soft")}
    return out


def goals(results: dict) -> list[dict]:
    def goal(what: str, target: str, measured, met: bool) -> dict:
        return {"goal": what, "target": target, "measured": measured, "met": bool(met)}

    out = []
    fm = results.get("fashion_mnist")
    if fm:
        gap = round(abs(fm["milvus_lite"]["precision_at_20_routed"] - fm["hdf5"]["precision_at_20_routed"]), 4)
        out.append(goal("Fashion-MNIST routed precision@20, Milvus Lite vs HDF5", f"within {PRECISION_GOAL}", gap,
                        gap <= PRECISION_GOAL))
    h = results.get("hdf5")
    if h:
        peak = max(h["build"]["peak_rss_mb"], h["add"]["peak_rss_mb"])
        out.append(goal(f"HDF5 build and add, {h['build']['items']:,} items: peak memory", "< 4 GB", peak,
                        peak < BUILD_PEAK_GOAL_MB))
        one, two = h["one_worker"]["pss_total_mb"], h["two_workers"]["pss_total_mb"]
        out.append(goal("two HDF5 workers (whole catalog touched): PSS of both / PSS of one", f"<= {SHARED_GOAL}",
                        round(two / one, 2), two / one <= SHARED_GOAL))
    m = results.get("milvus")
    if m:
        rss = max(w["rss_mb"] for w in m["app_workers"]["per_worker"])
        out.append(goal(f"app worker on a Milvus server, {m['build']['items']:,} items: resident memory",
                        f"<= {WORKER_RSS_GOAL_MB:g} MB", rss, rss <= WORKER_RSS_GOAL_MB))
        peak = m["build"]["peak_rss_mb"]
        out.append(goal("Milvus build: peak memory of the building process", "< 4 GB", peak,
                        peak < BUILD_PEAK_GOAL_MB))
    return out


def run_scale(n: int, milvus_n: int, parts: set[str], scale_dir: str | None, fm_limit: int | None,
              json_path: str | None) -> dict:
    from .milvus_server import start_server

    from importlib import metadata

    from app.settings import Settings

    versions = {name: metadata.version(name) for name in ("pymilvus", "milvus-lite", "milvus")}
    results: dict = {"meta": {**environment("scale", Settings.from_env()), "milvus_versions": versions, "n": n,
                              "milvus_n": milvus_n}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fashion16-scale-", dir=scale_dir) as tmp:
        folder = Path(tmp)
        folder.chmod(0o711)  # stand-in and app workers may run as an unprivileged user
        def part(name: str, run) -> None:  # a part that fails is recorded, and the others still run
            if name not in parts:
                return
            try:
                results[name.replace("-", "_")] = run()
            except Exception as exc:
                traceback.print_exc()
                results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:2000]

        def on_milvus() -> dict:
            server = start_server(folder / "milvus-server", snappy=False, mmap=True)
            try:
                idle = tree_rss_mb(server.server_proc.pid)
                out = store_part(f"milvus://127.0.0.1:{server.listen_port}/scale", milvus_n, folder / "milvus-app",
                                 server.server_proc.pid)
                out["server"]["rss_mb_idle"] = idle
                return out
            finally:
                server.stop()

        part("fashion-mnist", lambda: fashion_mnist(folder, fm_limit))
        part("hdf5", lambda: store_part(f"hdf5:{folder / 'hdf5' / 'photos'}", n, folder / "hdf5-app"))
        shutil.rmtree(folder / "hdf5", ignore_errors=True)  # frees 5 GB of disk for Milvus
        part("milvus", on_milvus)
    results["meta"]["total_seconds"] = round(time.perf_counter() - start, 1)
    results["goals"] = goals(results)
    print(json.dumps(results, indent=1))
    path = Path(json_path) if json_path else ROOT / "docs" / "milvus-scale.json"
    write_json(results, path)
    print(f"wrote {path}", file=sys.stderr)
    return results
