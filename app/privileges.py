"""Who reads requests when serving starts as root: never root.

The masters keep root (nginx's may bind a port below 1024; both read their configuration)
and every process that reads a request runs as FASHION16_USER (``nobody`` by default):
nginx's workers through its ``user`` directive (app/proxy.py), gunicorn's workers by
switching themselves, with that user's own groups only, once their app is loaded and has
run each kind of request once (app/warmup.py: a Python installed where only root may read
it, pyenv in /root, could not import another module after the switch). A worker that then
cannot read the files requests read (static assets, catalog photos) stops with one line.
Started as anyone else, everything runs as that user, as before.
"""
from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from .settings import Settings, SettingsError


@dataclass(frozen=True)
class Account:
    """The unprivileged user and group that serve requests."""

    name: str
    uid: int
    gid: int
    group: str


def worker_account(settings: Settings) -> Account | None:
    """FASHION16_USER when this process is root (None otherwise); SettingsError if it is unknown or root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwuid(int(settings.user)) if settings.user.isdigit() else pwd.getpwnam(settings.user)
    except KeyError:
        raise SettingsError(f"FASHION16_USER={settings.user}: no such user (started as root, Fashion-16 serves "
                            f"requests as this user)") from None
    if entry.pw_uid == 0:
        raise SettingsError(f"FASHION16_USER={settings.user} is root; name an unprivileged user (default: nobody)")
    try:
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        group = str(entry.pw_gid)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, group)


def become(account: Account) -> None:
    """Switch this process to ``account`` for good: its groups only, then its group, then the user."""
    os.initgroups(account.name, account.gid)
    os.setgid(account.gid)
    os.setuid(account.uid)


def hand_over(folder: Path, account: Account | None) -> None:
    """Give ``folder`` and what is in it to ``account`` (nginx's workers write their temp files there)."""
    if account is None:
        return
    for path in (folder, *folder.rglob("*")):
        os.chown(path, account.uid, account.gid, follow_symlinks=False)


def files_read_per_request(app) -> list[Path]:
    """What is read from disk after boot: static assets, photo catalogs' photos, and the stores' folders
    (where the catalog watcher finds new versions)."""
    from .web.service import EXTENSION

    catalogs = app.extensions[EXTENSION].catalogs.values()
    return [Path(app.static_folder), *(c.root for c in catalogs if c.root is not None),
            *store_folders(catalogs)]


def files_written_per_request(app) -> list[Path]:
    """What requests write: the saved-searches folder (when results URLs are on) and, when the admin API is on,
    the stores' folders and the uploads folders."""
    from .web.service import EXTENSION

    service = app.extensions[EXTENSION]
    saved = [service.saved.folder] if service.saved is not None else []
    if app.config["SETTINGS"].admin_token is None:
        return saved
    catalogs = service.catalogs.values()
    return [*saved, *store_folders(catalogs), *(c.uploads for c in catalogs if not c.stores_images)]


def store_folders(catalogs) -> list[Path]:
    return [Path(c.store.folder) for c in catalogs if getattr(c.store, "folder", None) is not None]


def unwritable(paths: list[Path]) -> Path | None:
    """The first of ``paths`` this process could not create files in (a missing one: its nearest parent)."""
    for path in paths:
        try:
            while not path.exists() and path != path.parent:
                path = path.parent
        except OSError:  # a folder above it cannot be entered
            return path
        if not os.access(path, os.W_OK | os.X_OK):
            return path
    return None


def unreadable(paths: list[Path]) -> Path | None:
    """The first of ``paths`` (or of the entries of a folder among them) this process cannot read."""
    for top in paths:
        if not os.access(top, os.R_OK):  # also when a folder above it cannot be entered
            return top
        inside = list(top.iterdir()) if os.path.isdir(top) and os.access(top, os.R_OK | os.X_OK) else []
        for path in (top, *inside):
            if not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
                return path
    return None
