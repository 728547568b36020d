"""Atomic file output shared by the tools and the converters: temp file next to the target, rename.

Temp files are hidden (``.NAME.HOST-PID.RANDOM.tmp``), created with the usual permissions (``0o666``
less the umask, like any file the user writes; ``mkstemp``'s 0600 would hide outputs from teammates
on a shared cluster), and renamed onto the target when complete, so a reader never sees half a
file. A process killed with ``kill -9`` cannot remove its temp file: :func:`remove_stale_temps`
removes the ones left by dead processes of this host (the next run calls it).
"""

from __future__ import annotations

import math
import numbers
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any, Callable

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
_TEMP_RE = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def temp_path_next_to(path: str | os.PathLike) -> Path:
    """Create (empty) and return a hidden temp file in ``path``'s folder, mode ``0o666 & ~umask``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the kernel applies the umask
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp_path)`` then rename the temp file onto ``path`` (no half-written outputs)."""
    path = Path(path)
    tmp = temp_path_next_to(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(directory: str | os.PathLike) -> list[Path]:
    """Remove temp files of :func:`temp_path_next_to` in ``directory`` whose process (on this host) is gone."""
    removed: list[Path] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_RE.match(name)
        if match is None or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        target = os.path.join(directory, name)
        try:
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)  # a folder being filled (e.g. frames of the clip tool)
            else:
                os.unlink(target)
            removed.append(Path(target))
        except OSError:
            pass
    return removed


def strip_file_uri(ref: str | os.PathLike) -> str:
    """``ref`` as a path string without a leading ``file://`` (``"file:///a"`` -> ``"/a"``); others unchanged."""
    path = os.fspath(ref)
    return path[len("file://") :] if path.startswith("file://") else path


def parquet_value(value: Any, default: Any = None) -> Any:
    """``default`` for None or a float NaN (parquet fills missing struct keys with them), else ``value``."""
    if value is None or (isinstance(value, numbers.Real) and math.isnan(value)):
        return default
    return value
