"""What a run was measured on: the report's header, so figures are never read out of context."""
from __future__ import annotations

import platform
from importlib import metadata

from app.catalog import BUILTIN, model_path
from app.evaluation.metrics import environment as machine
from app.runtime import file_sha256
from app.scan import faiss
from app.settings import WORKER_THREAD_ENV, Settings

PACKAGES = ("numpy", "ai-edge-litert", "tensorflow-cpu", "keras", "faiss-cpu", "h5py", "flask", "gunicorn", "pillow")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def models(settings: Settings) -> dict[str, str | None]:
    """The serving model files and their SHA-256 (None for one that is missing)."""
    files = [model_path(settings, spec.model) for spec in BUILTIN.values()]
    return {f.name: file_sha256(f) if f.is_file() else None for f in files}


def environment(profile: str, settings: Settings) -> dict:
    return {"profile": profile, **machine(), "platform": platform.platform(), "versions": package_versions(),
            "models": models(settings), "faiss_omp_threads": faiss.omp_get_max_threads() if faiss is not None else None,
            "worker_thread_env": WORKER_THREAD_ENV}  # what every served gunicorn worker runs with (one BLAS thread)
