"""Reaching Milvus: where a store URI points, one client per process and place, Milvus errors as one line.

``milvus-lite:PATH.db[/PREFIX]`` runs Milvus Lite for this process (pymilvus starts it; the
file is held by this one process). ``milvus://HOST:PORT[/PREFIX]`` is a Milvus server (or a
cluster's proxy) reached over gRPC by any number of workers. PREFIX starts the names of the
collections a store uses (default ``fashion16``), so several deployments can share a server.

pymilvus is imported only here and only when a Milvus URI is used: it costs about a second
and 60 MB, which HDF5 users never pay.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .base import StoreError

DEFAULT_PREFIX = "fashion16"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0      # a search or query; pymilvus otherwise retries a dead server for minutes
WRITE_TIMEOUT_S = 600.0
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
URI_FORMS = "milvus-lite:PATH.db[/PREFIX] or milvus://HOST:PORT[/PREFIX]"


@dataclass(frozen=True)
class Location:
    """A parsed Milvus store URI."""

    uri: str
    lite: bool
    address: str  # the Lite file (absolute), or HOST:PORT
    prefix: str

    @property
    def client_uri(self) -> str:
        return self.address if self.lite else f"http://{self.address}"

    @property
    def kind(self) -> str:
        return "milvus-lite" if self.lite else "milvus"


def parse_uri(uri: str) -> Location:
    """``milvus-lite:PATH.db[/PREFIX]`` or ``milvus://HOST:PORT[/PREFIX]``; ValueError names the forms."""
    scheme, _, rest = uri.partition(":")
    prefix = DEFAULT_PREFIX
    if scheme == "milvus-lite":
        path, sep, after = rest.rpartition(".db/")
        path, prefix = (path + ".db", after) if sep else (rest, prefix)
        if not path.endswith(".db") or path == ".db":
            raise ValueError(f"a Milvus Lite store is a file ending in .db: {URI_FORMS}; got {uri!r}")
        address = str(Path(path).expanduser().resolve())
    elif scheme == "milvus" and rest.startswith("//"):
        address, _, prefix = rest[2:].partition("/")
        prefix = prefix.strip("/") or DEFAULT_PREFIX
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"a Milvus server is milvus://HOST:PORT[/PREFIX]; got {uri!r}")
    else:
        raise ValueError(f"not a Milvus store URI ({URI_FORMS}): {uri!r}")
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"a collection prefix is 1-40 letters, digits and underscores starting with a letter; "
                         f"got {prefix!r} in {uri!r}")
    return Location(uri, scheme == "milvus-lite", address, prefix)


_clients: dict[tuple[int, str], object] = {}
_lock = threading.RLock()  # a failure while connecting forgets the client under it


def client(where: Location):
    """The process's client for this Milvus (one per process: a forked worker makes its own)."""
    key = (os.getpid(), where.client_uri)
    with _lock:
        if key not in _clients:
            with milvus_errors(where), warnings.catch_warnings():
                warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)  # milvus-lite 2.5.1
                from pymilvus import MilvusClient

                for name in ("pymilvus", "pymilvus.milvus_client"):  # our StoreError says it in one line
                    logging.getLogger(name).setLevel(logging.CRITICAL)
                if where.lite and not Path(where.address).parent.is_dir():
                    raise StoreError(f"{where.uri}: the folder {Path(where.address).parent} does not exist")
                root = logging.getLogger()  # milvus-lite logs its failures to the root logger: ours say them
                root.addFilter(_quiet)
                try:
                    _clients[key] = MilvusClient(where.client_uri, timeout=CONNECT_TIMEOUT_S)
                finally:
                    root.removeFilter(_quiet)
        return _clients[key]


def _quiet(record: logging.LogRecord) -> bool:
    return not record.pathname.replace("\\", "/").rsplit("/", 2)[-2:-1] == ["milvus_lite"]


def forget(where: Location) -> None:
    """Drop this process's client (after the server went away, the next call reconnects)."""
    with _lock:
        _clients.pop((os.getpid(), where.client_uri), None)


@contextlib.contextmanager
def milvus_errors(where: Location, doing: str = "") -> Iterator[None]:
    """Milvus and gRPC failures as one StoreError line that names the store and what to do."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:  # pymilvus raises its own and gRPC's exceptions, and ValueErrors of its checks
        from pymilvus.exceptions import MilvusException

        if not isinstance(exc, (MilvusException, ConnectionError, TimeoutError)) and \
                type(exc).__module__.split(".")[0] not in ("pymilvus", "grpc", "milvus_lite"):
            raise
        raise StoreError(describe_failure(where, exc, doing)) from None


def describe_failure(where: Location, exc: Exception, doing: str = "") -> str:
    message = " ".join(str(getattr(exc, "message", None) or exc).split())[:300]
    lowered = message.lower()
    if where.lite and "open local milvus failed" in lowered:
        return (f"{where.uri}: Milvus Lite cannot open {where.address}: another process holds it (a Lite file "
                f"serves one process; stop the other one, or serve from a Milvus server, milvus://HOST:PORT)")
    if "fail connecting" in lowered or "unavailable" in lowered or "deadline" in lowered:
        forget(where)
        return (f"{where.uri}: no Milvus server answers at {where.address}; start it (deploy/compose.yaml) or "
                f"fix the store URI (--store, FASHION16_STORES)")
    what = f" while {doing}" if doing else ""
    return f"{where.uri}: Milvus failed{what}: {message}"
