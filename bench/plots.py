"""The report's PNG plots, drawn from a run's JSON only (a section without figures draws nothing)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from app.evaluation.fashion_mnist import PAPER  # noqa: E402

from .goals import ROUTED_P50_GOAL_MS  # noqa: E402
from .profile import TABLE_BITS, K  # noqa: E402

PAPER_PRECISION = PAPER["retrieval_precision"]
METHOD_COLOURS = {"routed": "tab:blue", "direct": "tab:orange", "faiss_flat": "tab:red", "numpy_scan": "tab:purple",
                  "exact_cosine": "tab:green"}


def _finish(fig: plt.Figure, ax: plt.Axes, path: Path) -> None:
    """Grid, legend and save: the last steps every single-panel plot shares."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def core_latency(results: dict, path: Path) -> None:
    """p50 latency against gallery size, one panel per code length, one line per method."""
    rows = results.get("core") or []
    bits_list = sorted({r["bits"] for r in rows})
    if not bits_list:
        return
    fig, axes = plt.subplots(1, len(bits_list), figsize=(5.5 * len(bits_list), 4.2), squeeze=False)
    for ax, bits in zip(axes[0], bits_list):
        series = sorted({(r["method"], r["split"]) for r in rows if r["bits"] == bits}, key=lambda s: s[1] != "uniform")
        for method, split in series:
            pts = sorted((r["n"], r["p50_ms"]) for r in rows
                         if (r["bits"], r["method"], r["split"]) == (bits, method, split))
            ax.plot(*zip(*pts), marker="o", color=METHOD_COLOURS.get(method), label=f"{method} ({split})",
                    linestyle="--" if split != "uniform" else "-")
        if bits == TABLE_BITS:
            ax.axhline(ROUTED_P50_GOAL_MS, color="grey", linewidth=0.8, linestyle=":",
                       label=f"goal: routed p50 {ROUTED_P50_GOAL_MS:g} ms")
        ax.set(xscale="log", yscale="log", xlabel="gallery items", ylabel="single-query p50 (ms)",
               title=f"{bits}-bit codes")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def recall_latency(results: dict, path: Path) -> None:
    """LSH recall against search-core time per code length, with exact cosine as the recall-1 anchor."""
    rows = results.get("quality_by_bits") or []
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 4.2))
    xs = [r["latency"]["routed"]["core_mean_ms"] for r in rows]
    ys = [r[f"lsh_recall_at_{K}"] for r in rows]
    ax.plot(xs, ys, marker="o", label="routed LSH (hash + scan + re-rank)")
    for i, (x, y, r) in enumerate(zip(xs, ys, rows)):
        ax.annotate(f"{r['bits']} bits", (x, y), textcoords="offset points", xytext=(6, -12 if i % 2 else 4),
                    fontsize=8)
    anchor = (results.get("quality") or {}).get("exact_anchor") or {}
    if anchor.get("mean_ms") is not None:
        ax.plot([anchor["mean_ms"]], [1.0], marker="*", markersize=12, linestyle="none",
                label="exact cosine in the routed library")
    ax.set(xlabel="mean search-core time per query (ms)", ylabel=f"LSH recall@{K}",
           title="Recall vs latency (Fashion-MNIST)")
    _finish(fig, ax, path)


def quality_bits(results: dict, path: Path) -> None:
    """Precision@K per mode and LSH recall against code length."""
    rows = results.get("quality_by_bits") or []
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 4.2))
    bits = [r["bits"] for r in rows]
    for key, label in [(f"precision_at_{K}_{m}", f"P@{K} {m}") for m in ("routed", "direct", "soft")] + [
            (f"lsh_recall_at_{K}", f"LSH recall@{K}")]:
        ax.plot(bits, [r[key] for r in rows], marker="o", label=label)
    ax.axhline(PAPER_PRECISION, color="grey", linestyle=":", label="paper P@20 (300k images)")
    ax.set_xscale("log", base=2)
    ax.set(xticks=bits, xticklabels=[str(b) for b in bits], xlabel="code length (bits)", ylabel="score",
           title="Quality by code length (Fashion-MNIST)")
    _finish(fig, ax, path)


def table2_gallery(results: dict, path: Path) -> None:
    """Precision against gallery size (the paper's Table 2)."""
    rows = [r for r in (results.get("paper_tables") or {}).get("table2", []) if r.get("source") != "paper"]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for mode in ("routed", "direct"):
        ax.plot([r["gallery"] for r in rows], [r[f"precision_at_{K}_{mode}"] for r in rows], marker="o",
                label=f"ours, {mode}")
    ax.axhline(PAPER_PRECISION, color="grey", linestyle=":", label="paper (300k images)")
    ax.set(xlabel="gallery images", ylabel=f"P@{K}", title="Gallery size vs precision")
    _finish(fig, ax, path)


RUNTIME_COLOURS = {"keras": "tab:orange", "litert_1_thread": "tab:blue", "litert_2_threads": "tab:cyan"}


def forward_ms(results: dict, path: Path) -> None:
    """Batch-1 forward p50 per model, one bar per runtime, Keras/LiteRT ratio written above the group."""
    forward = results.get("forward_ms") or {}
    if not forward:
        return
    models = list(forward)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    width = 0.8 / len(RUNTIME_COLOURS)
    for j, (runtime, colour) in enumerate(RUNTIME_COLOURS.items()):
        xs = [i + (j - 1) * width for i in range(len(models))]
        ys = [forward[m].get(runtime) or 0.0 for m in models]
        bars = ax.bar(xs, ys, width, color=colour, label=runtime.replace("_", " "))
        ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=7, padding=2)
    for i, m in enumerate(models):
        ratio = forward[m].get("keras_over_litert")
        if ratio:
            top = max(forward[m].get(r) or 0 for r in RUNTIME_COLOURS)
            ax.annotate(f"Keras / LiteRT (1 thread): {ratio:.1f}x", (i, top), textcoords="offset points",
                        xytext=(0, 14), ha="center", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 4)
    ax.set(xticks=range(len(models)), xticklabels=models, ylabel="batch-1 forward p50 (ms, log scale)",
           title="Forward pass by model and runtime")
    _finish(fig, ax, path)


PLOTS = {"bench_core_latency.png": core_latency, "bench_recall_latency.png": recall_latency,
         "bench_quality_bits.png": quality_bits, "bench_table2_gallery.png": table2_gallery,
         "bench_forward_ms.png": forward_ms}


def write_plots(results: dict, out_dir: Path) -> None:
    for name, draw in PLOTS.items():
        draw(results, out_dir / name)
