"""Atomic writes: every file and folder selfpref writes goes through here.

A file is written to a temporary name in its own folder, flushed and fsynced, renamed onto its
name (``os.replace``, atomic on POSIX within one filesystem) and the folder is fsynced, so a crash
or a kill at any moment leaves either the old file or the whole new one, never a partial file,
and a finished write survives a power cut. A folder is written as a temporary sibling and swapped
in by ``replace_folder`` the same way. The temporary name starts with a dot, so readers that skip
hidden files never see it, and it is removed when the write raises.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def umask() -> int:
    """The process umask, read without changing it (Linux), else set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def user_mode(path: str | os.PathLike) -> None:
    """Give a file or folder made by ``tempfile`` (0600 / 0700) the mode the user's umask sets."""
    base = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, base & ~umask())


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file, or a folder's entry list (where the OS allows opening a folder)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if Path(path).is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # a folder cannot be opened on some systems (Windows): nothing more to do there
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def replace_file(src: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move a finished file onto ``path``: fsync it, rename, fsync the folder. The file gets the
    user's umask mode (a ``tempfile`` one is 0600)."""
    user_mode(src)
    fsync_path(src)
    os.replace(src, path)
    fsync_path(Path(path).parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on leaving the block it replaces ``path``
    (fsynced), or is removed when the block raises. For writers that take a file name
    (safetensors, pyarrow, numpy); ``suffix`` keeps an extension a writer insists on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        replace_file(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
    return path


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int | None = None) -> None:
    """``data`` as JSON (non-JSON values through ``str``), written atomically."""
    write_atomic(path, json.dumps(data, indent=indent, default=str))


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder below ``folder`` (before it is renamed into place)."""
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fsync_path(path)
    for path in [*(p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink()), folder]:
        fsync_path(path)


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling of ``folder`` (the user's umask mode) to fill; on leaving the block it
    replaces ``folder`` (``replace_folder``), or is removed when the block raises."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        user_mode(tmp)
        yield tmp
        replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_folder(tmp: Path, folder: Path) -> None:
    """Rename the finished folder ``tmp`` onto ``folder``: its files are fsynced first; an existing
    folder is moved aside, and removed once the new one is in place (put back if the rename fails)."""
    tmp, folder = Path(tmp), Path(folder)
    fsync_tree(tmp)
    old = None
    if folder.exists() or folder.is_symlink():
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        os.rename(folder, old)
    try:
        os.rename(tmp, folder)
    except BaseException:
        if old is not None:
            os.rename(old, folder)
        raise
    fsync_path(folder.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
