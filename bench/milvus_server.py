"""A real Milvus server on this machine, for the tests and the benchmarks: standalone Milvus 2.3 (``milvus`` package).

The package's starter picks free ports for everything it templates, but Milvus' embedded
etcd would still listen on the fixed ports 2379 and 2380, so a second server on the same
machine (another test run, a benchmark) dies at start. Here etcd gets its own free ports
too, through an etcd configuration file the template points at. The starter also waits
three minutes for a server that has already exited: here a dead server fails at once, with
its own error line.
"""
from __future__ import annotations

import re
import socket
import time
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 120.0
# Ticks and polls of a test server, in ms (production defaults: 200, 1000, 500). Strong reads wait for a
# time tick and a load for the query coordinator's rounds; the data path is the same. Benchmarks keep
# the defaults (snappy=False).
SNAPPIER = {"timeTickInterval": 50, "checkInterval": 100, "distPullInterval": 100}
EXTRA = {"leaderViewUpdateInterval": 0.1, "checkChannelInterval": 100, "checkSegmentInterval": 100}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path, snappy: bool = True, mmap: bool = False):
    """A started ``milvus.MilvusServer`` keeping its data, logs and configuration under ``folder``.

    ``mmap``: loaded segments' fields are memory-mapped from local files (``queryNode.mmapDirPath``),
    so the server's memory does not have to hold every embedding (the 1M-item benchmark).
    """
    import milvus
    from milvus import MilvusServer, MilvusServerConfig

    folder.mkdir(parents=True, exist_ok=True)
    client_port, peer_port = free_port(), free_port()
    etcd = folder / "embed-etcd.yaml"
    etcd.write_text(f"listen-client-urls: http://127.0.0.1:{client_port}\n"
                    f"advertise-client-urls: http://127.0.0.1:{client_port}\n"
                    f"listen-peer-urls: http://127.0.0.1:{peer_port}\n"
                    f"initial-advertise-peer-urls: http://127.0.0.1:{peer_port}\n"
                    f"initial-cluster: default=http://127.0.0.1:{peer_port}\n")
    data = Path(milvus.__file__).parent / "data"
    template = folder / "milvus.yaml.template"
    text = (data / "config.yaml.template").read_text().replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd}\n", 1)
    if snappy:
        for setting, value in SNAPPIER.items():
            text, found = re.subn(rf"(\n  {setting}:) *[0-9]+", rf"\g<1> {value}", text, count=1)
            assert found, setting
        text = text.replace("\nqueryCoord:\n", "\nqueryCoord:\n" + "".join(f"  {k}: {v}\n" for k, v in EXTRA.items()),
                            1)
    if mmap:
        text = text.replace("\nqueryNode:\n", f"\nqueryNode:\n  mmapDirPath: {folder / 'mmap'}\n", 1)
    template.write_text(text)
    config = MilvusServerConfig(template=str(template))
    config.glog_conf_file = str(data / "glog.conf")  # set only for the package's own template
    server = MilvusServer(config, wait_for_started=False, etcd_port=client_port)
    server.set_base_dir(str(folder))
    server.start()
    try:
        wait_until_healthy(server, folder)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_healthy(server, folder: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    url = f"http://127.0.0.1:{server.webservice_port}/healthz"
    while time.monotonic() < deadline:
        if server.server_proc.poll() is not None:
            raise RuntimeError(f"the Milvus server exited at start: {last_error(folder)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if b"OK" in resp.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the Milvus server did not answer within {START_TIMEOUT_S:.0f} s: {last_error(folder)}")


def last_error(folder: Path) -> str:
    log = folder / "logs" / "milvus-stdout.log"
    errors = re.findall(r"\[ERROR\].*", log.read_text(errors="replace")) if log.exists() else []
    return errors[-1][:300] if errors else f"see {folder / 'logs'}"
