"""What a run was measured on: the report's header, so figures are never read out of context."""
from __future__ import annotations

import os
import platform
import time
from importlib import metadata

from ..evaluate import cpu_model
from ..hamming_index import faiss
from ..model import file_sha256

PACKAGES = ("numpy", "tensorflow-cpu", "keras", "faiss-cpu", "h5py", "flask", "gunicorn", "pillow")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def environment(profile: str, model_path: str) -> dict:
    return {"profile": profile, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "versions": package_versions(), "model": os.path.basename(model_path),
            "faiss_omp_threads": faiss.omp_get_max_threads() if faiss is not None else None,
            "model_sha256": file_sha256(model_path)}
