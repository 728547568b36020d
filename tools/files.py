"""Small file helpers shared by every layer: atomic writes, jsonl reading, ``file://`` paths, parquet values.

Atomic output: temp file next to the target, rename.

Temp files are hidden (``.NAME.HOST-PID.RANDOM.tmp``), created with the usual permissions (``0o666``
less the umask, like any file the user writes; ``mkstemp``'s 0600 would hide outputs from teammates
on a shared cluster), and renamed onto the target when complete, so a reader never sees half a
file. A process killed with ``kill -9`` cannot remove its temp file: :func:`remove_stale_temps`
removes the ones left by dead processes of this host (the next run calls it).
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

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


def atomic_write_dir(path: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Call ``fill(temp_folder)`` then put the folder in place of ``path`` (an old folder there is removed).

    The temp folder is hidden beside ``path`` (mode ``0o777 & ~umask``); a reader sees the old folder
    or the complete new one (between removing the old and the rename, none).
    """
    path = Path(path)
    tmp = temp_path_next_to(path)  # reserve a hidden name of this process, then make it a folder
    tmp.unlink()
    tmp.mkdir(mode=0o777)  # the kernel applies the umask
    try:
        fill(tmp)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _write_synced(tmp: Path, data: bytes) -> None:
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename); mode ``0o666 & ~umask``."""
    return atomic_write(path, lambda tmp: _write_synced(tmp, data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> Path:
    """Write one JSON document per line (non-ASCII kept as UTF-8) to ``path`` atomically."""
    return atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


class JsonlLineError(ValueError):
    """A line of a jsonl file that is not UTF-8 or not JSON: ``"FILE:LINE: reason"``.

    ``kind`` is ``"utf8"`` or ``"json"``; ``detail`` the decoder's own message.
    """

    def __init__(self, path: str | os.PathLike, lineno: int, kind: str, reason: str, detail: str) -> None:
        super().__init__(f"{os.fspath(path)}:{lineno}: {reason}")
        self.path, self.lineno, self.kind, self.reason, self.detail = os.fspath(path), lineno, kind, reason, detail


def read_jsonl(path: str | os.PathLike, *, keep_going: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` (1-based) for every non-blank line of a jsonl file.

    A UTF-8 byte-order mark at the start is skipped. A line that is not UTF-8 or not JSON raises
    :class:`JsonlLineError` (a :class:`ValueError`, ``"FILE:LINE: reason"``); lines before it have been
    yielded already. With ``keep_going`` the error is yielded in place of the value and reading goes on
    (for readers that report bad lines and keep the rest). Callers that need objects check the type
    themselves (and name the file and line).
    """
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            error: JsonlLineError | None = None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                reason = f"not UTF-8 text: byte 0x{raw[err.start]:02x} at column {err.start + 1}"
                error = JsonlLineError(path, lineno, "utf8", reason, str(err))
            else:
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except (ValueError, RecursionError) as err:
                    msg = err.msg if isinstance(err, json.JSONDecodeError) else str(err) or type(err).__name__
                    error = JsonlLineError(
                        path, lineno, "json", f"not valid JSON ({msg})", str(err) or type(err).__name__
                    )
            if error is None:
                yield lineno, value
            elif keep_going:
                yield lineno, error
            else:
                raise error


def read_json(path: str | os.PathLike) -> Any:
    """One JSON document (UTF-8, a byte-order mark tolerated).

    Raises :class:`ValueError` ``"FILE:LINE: not valid JSON (reason)"`` or ``"FILE: not UTF-8 text (byte N)"``;
    ``OSError`` when the file cannot be read.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{os.fspath(path)}: not UTF-8 text (byte {err.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{os.fspath(path)}:{err.lineno}: not valid JSON ({err.msg})") from None
    except RecursionError:
        raise ValueError(f"{os.fspath(path)}: not valid JSON (nested too deeply)") from None


def strip_file_uri(ref: str | os.PathLike) -> str:
    """``"file:///a/b"`` -> ``"/a/b"``; any other string (or path) unchanged, as a string."""
    text = os.fspath(ref)
    return text[len("file://") :] if text.startswith("file://") else text


def parquet_value(value: Any, default: Any = None) -> Any:
    """``default`` for a missing parquet value (None, or the float NaN parquet fills absent struct keys with), else ``value``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


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
