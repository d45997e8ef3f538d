"""Atomic file output shared by every exporter (MIDI, MusicXML, WAV, JSON, PNG) and by training's caches.

A crash, a full disk or Ctrl-C half-way through an export must never leave a truncated file where a
user (or a DAW watching the folder) expects a finished one, and must never clobber an existing file
unless asked. So every writer goes through `atomic_write`: write a hidden temporary file next to the
destination, fsync it, then rename it into place in one step.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from emomusic.errors import InvalidInputError

__all__ = ["atomic_write"]


def _temp_path(path: Path) -> Path:
    """A hidden sibling of `path` that keeps its suffix (some writers pick the format from it)."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


def _fsync_file(path: Path) -> None:
    """Flush the file's data to disk so the rename cannot expose an empty file after a power cut."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Persist the rename itself; best effort (not possible on every platform or filesystem)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write_fn: Callable[[Path], object], force: bool = False) -> Path:
    """Create `path` through `write_fn(temp_path)`, all or nothing.

    `write_fn` receives the path of a fresh, empty temporary file in the destination's directory
    (same suffix as `path`) and writes the whole output there; it may reopen or recreate it. The
    temporary file is then fsynced and renamed onto `path`. Any failure (including one raised by
    `write_fn`, which propagates unchanged) removes the temporary file and leaves `path` untouched.

    Raises `InvalidInputError` when the parent directory is missing, when `path` is a directory, or
    when `path` exists and `force` is False. Returns `path` as a `Path`.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise InvalidInputError(f"{path}: directory {parent} does not exist; create it or pick another path")
    if path.is_dir():
        raise InvalidInputError(f"{path}: is a directory; give a file name")
    if path.exists() and not force:
        raise InvalidInputError(f"{path}: already exists; pass --force to overwrite")

    tmp = _temp_path(path)
    try:
        # O_EXCL: never reuse someone else's file; 0o666 lets the umask decide the final mode.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot write in {parent} ({exc.strerror})") from None

    try:
        write_fn(tmp)
        if not tmp.is_file():
            raise RuntimeError(f"{path}: the writer did not produce {tmp.name}")
        _fsync_file(tmp)
        if force:
            os.replace(tmp, path)
        else:
            _move_no_clobber(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(parent)
    return path


def _move_no_clobber(tmp: Path, path: Path) -> None:
    """Rename `tmp` onto `path` unless `path` appeared meanwhile (another process won the race)."""
    try:
        os.link(tmp, path)  # atomic and fails if `path` exists
    except FileExistsError:
        raise InvalidInputError(f"{path}: already exists; pass --force to overwrite") from None
    except OSError:
        # Filesystems without hard links (some network/FAT mounts): check, then replace.
        if path.exists():
            raise InvalidInputError(f"{path}: already exists; pass --force to overwrite") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def check_input_file(path: str | os.PathLike, what: str, max_bytes: int) -> Path:
    """An existing, non-empty regular file no larger than `max_bytes`, or InvalidInputError.

    Checked before any decoder sees the file, so a wrong path or a huge upload fails fast with words
    a user can act on (`what` names the kind: "image", "video", "humming audio").
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"{what} file {str(p)!r} does not exist; check the path")
    if not p.is_file():
        raise InvalidInputError(f"{what} path {str(p)!r} is not a regular file; give a {what} file")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInputError(f"{what} file {str(p)!r} is empty; give a real {what} file")
    if size > max_bytes:
        raise InvalidInputError(
            f"{what} file {str(p)!r} is {size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit; "
            f"use a smaller {what}")
    return p
