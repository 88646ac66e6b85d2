"""deploy/compose.yaml, checked statically (Docker cannot run here): Milvus standalone with its etcd and
MinIO, a job that builds the catalogs into it, and the app reading every catalog from it."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from app.cli import parser
from app.settings import Settings
from app.stores.milvus_client import parse_uri

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose.yaml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def pinned(package: str) -> str:
    line = next(line for line in (ROOT / "requirements-milvus.txt").read_text().splitlines()
                if line.startswith(f"{package}=="))
    return line.split("==")[1].split()[0]


def test_milvus_standalone_runs_the_tested_version_on_its_own_etcd_and_minio():
    s = services()
    assert s["milvus"]["image"] == f"milvusdb/milvus:v{pinned('milvus')}"  # the version the tests' server runs
    assert s["milvus"]["command"] == ["milvus", "run", "standalone"]
    assert s["milvus"]["environment"] == {"ETCD_ENDPOINTS": "etcd:2379", "MINIO_ADDRESS": "minio:9000"}
    assert s["etcd"]["image"].startswith("quay.io/coreos/etcd:v3.5") and s["minio"]["image"].startswith("minio/minio:")
    assert {name: s["milvus"]["depends_on"][name]["condition"] for name in ("etcd", "minio")} == \
        {"etcd": "service_healthy", "minio": "service_healthy"}
    assert all("healthcheck" in s[name] for name in ("etcd", "minio", "milvus"))


def test_the_app_and_the_catalog_job_read_every_catalog_from_that_milvus():
    s = services()
    job, app = s["catalogs"], s["app"]
    assert job["build"]["args"] == {"MILVUS": "1"} and (COMPOSE.parent / job["build"]["context"] / "Dockerfile").is_file()
    assert app["image"] == job["image"]  # the app runs the image the job built
    parser().parse_args(job["command"][3:])  # `python -m app index ensure`: the CLI accepts it
    assert job["depends_on"]["milvus"]["condition"] == "service_healthy"
    assert app["depends_on"]["catalogs"]["condition"] == "service_completed_successfully"
    for env in (job["environment"], app["environment"]):
        settings = Settings.from_env({k: str(v) for k, v in env.items()})
        assert {name for name, _ in settings.stores} == {"photos", "fashion-mnist"}
        for _, uri in settings.stores:
            where = parse_uri(uri)
            assert not where.lite and where.address == "milvus:19530"
    assert Settings.from_env({k: str(v) for k, v in app["environment"].items()}).workers == 4


def test_the_image_installs_the_milvus_client_only_when_asked():
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    assert re.search(r"^ARG MILVUS=0$", text, re.M)
    run = next(line for line in text.splitlines() if line.startswith("RUN pip install -r requirements.txt"))
    assert 'if [ "$MILVUS" = 1 ]' in run and "requirements-milvus.txt" in run
    words = shlex.split(run.split("grep -E", 1)[1])
    assert words[0] == "^(pymilvus|setuptools)"  # the client and its pin, not Milvus Lite or the server starter
