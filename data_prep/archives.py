"""Unpack downloaded archives safely: zip, tar(.gz/.bz2/.xz), and split tars (``x.tar.gz.part-aa``, ``-ab``, ...).

Each archive (a split tar counts as one) is unpacked into a staging directory next to its destination,
then moved into place, then a marker file ``.<name>.unpacked`` is written next to it. An interrupted run
leaves no marker, so the next run unpacks that archive again from the start; an archive with a marker
is never unpacked twice. Members with absolute paths, ``..`` components or links are refused, and
``__MACOSX/`` resource-fork junk (and ``._*`` AppleDouble files) in zips is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterable

from tqdm import tqdm

_PART_RE = re.compile(r"^(?P<base>.+)\.part-?(?P<suffix>[a-z]{2,3}|\d{2,4})$")
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
STAGING_PREFIX = ".unpacking-"


class ArchiveError(RuntimeError):
    """An archive is broken, incomplete or unsafe; the message names the file and the problem."""


@dataclass(frozen=True)
class Archive:
    """One archive to unpack: its file(s) in order (several for a split tar) and its display name."""

    parts: tuple[Path, ...]
    name: str  # e.g. "test_video.tar.gz" for a split tar, the file name otherwise

    @property
    def folder(self) -> Path:
        return self.parts[0].parent

    @property
    def marker(self) -> Path:
        return self.folder / f".{self.name}.unpacked"

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.parts)

    def is_done(self) -> bool:
        return self.marker.exists()


def is_archive_name(name: str) -> bool:
    """Whether a file name is an archive we unpack (zip, tar, or a part of a split tar)."""
    match = _PART_RE.match(name)
    base = match.group("base") if match else name
    return base.endswith(".zip") and not match or base.endswith(_TAR_SUFFIXES)


def find_archives(directory: Path, patterns: Iterable[str]) -> list[Archive]:
    """Archives under ``directory`` whose relative path matches one of ``patterns`` (``Path.glob``, ``**`` allowed).

    Split-tar parts (``x.tar.gz.part-aa``, ``x.tar.gz.part-ab``, ...) are grouped into one archive named
    ``x.tar.gz``; a gap in the part suffixes raises :class:`ArchiveError` (a part is missing).
    Files inside staging directories are ignored.
    """
    files = sorted({p for pat in patterns for p in directory.glob(pat) if p.is_file() and is_archive_name(p.name)})
    files = [p for p in files if not any(part.startswith(STAGING_PREFIX) for part in p.relative_to(directory).parts)]
    groups: dict[tuple[Path, str], list[tuple[str, Path]]] = {}
    singles: list[Archive] = []
    for path in files:
        match = _PART_RE.match(path.name)
        if match:
            groups.setdefault((path.parent, match.group("base")), []).append((match.group("suffix"), path))
        else:
            singles.append(Archive((path,), path.name))
    for (_, base), parts in groups.items():
        parts.sort()
        _check_contiguous(base, [s for s, _ in parts])
        singles.append(Archive(tuple(p for _, p in parts), base))
    return sorted(singles, key=lambda a: a.parts[0])


def _check_contiguous(base: str, suffixes: list[str]) -> None:
    """Part suffixes must run without gaps from the first (aa / 00 / 000)."""

    def index(s: str) -> int:
        if s.isdigit():
            return int(s)
        value = 0
        for ch in s:
            value = value * 26 + (ord(ch) - ord("a"))
        return value

    got = [index(s) for s in suffixes]
    expected = list(range(got[0], got[0] + len(got))) if got else []
    if not got or got[0] not in (0, 1) or got != expected:
        missing = sorted(set(range(0, max(got) + 1)) - set(got)) if got else []
        raise ArchiveError(
            f"split archive {base}: parts {', '.join(suffixes)} are not contiguous from the first "
            f"(missing part number(s) {missing}); download the missing parts and run again"
        )


class _ConcatReader:
    """A read-only stream over several files in order, counting bytes for a progress bar."""

    def __init__(self, paths: tuple[Path, ...], on_read: Callable[[int], None]):
        self._paths = list(paths)
        self._handle: BinaryIO | None = None
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        chunks = []
        while size != 0:
            if self._handle is None:
                if not self._paths:
                    break
                self._handle = open(self._paths.pop(0), "rb")
            data = self._handle.read(size if size > 0 else 1 << 20)
            if not data:
                self._handle.close()
                self._handle = None
                continue
            chunks.append(data)
            self._on_read(len(data))
            if size > 0:
                size -= len(data)
        return b"".join(chunks)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def safe_member(archive: str, name: str) -> PurePosixPath | None:
    """The member's relative path, None for junk to skip, or :class:`ArchiveError` for an unsafe path."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"{archive}: refusing member with an absolute path {name!r}")
    if ".." in path.parts:
        raise ArchiveError(f"{archive}: refusing member that escapes the destination {name!r}")
    if path.parts and path.parts[0] == "__MACOSX" or path.name.startswith("._") or path.name == ".DS_Store":
        return None
    return path


def _extract_zip(archive: Archive, staging: Path, progress: tqdm) -> int:
    count = 0
    with zipfile.ZipFile(archive.parts[0]) as zf:
        for info in zf.infolist():
            rel = safe_member(archive.name, info.filename)
            if rel is None or not rel.parts:
                continue
            target = staging.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            mode = (info.external_attr >> 16) & 0o170000
            if mode == 0o120000:
                raise ArchiveError(f"{archive.name}: refusing symbolic link member {info.filename!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            progress.update(info.compress_size)
            count += 1
    return count


def _extract_tar(archive: Archive, staging: Path, progress: tqdm) -> int:
    reader = _ConcatReader(archive.parts, progress.update)
    count = 0
    try:
        with tarfile.open(fileobj=reader, mode="r|*") as tf:  # type: ignore[arg-type]
            for member in tf:
                rel = safe_member(archive.name, member.name)
                if rel is None or not rel.parts:
                    continue
                if member.issym() or member.islnk():
                    raise ArchiveError(f"{archive.name}: refusing link member {member.name!r}")
                if not (member.isfile() or member.isdir()):
                    continue
                member.name = rel.as_posix()
                tf.extract(member, staging, filter="data")
                count += int(member.isfile())
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(
            f"{archive.name}: broken or truncated archive ({exc.__class__.__name__}: {exc}); "
            "delete it and download again"
        ) from exc
    finally:
        reader.close()
    return count


def _merge(staging: Path, dest: Path) -> None:
    """Move every file of ``staging`` into ``dest`` (directories are merged; files replace files)."""
    for dirpath, _, filenames in os.walk(staging):
        rel = Path(dirpath).relative_to(staging)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for filename in filenames:
            os.replace(Path(dirpath) / filename, dest / rel / filename)
    shutil.rmtree(staging)


def unpack(archive: Archive, dest: Path, *, progress: bool = True) -> int:
    """Unpack ``archive`` into ``dest`` atomically (staging dir, move, then marker); returns the file count."""
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / f"{STAGING_PREFIX}{archive.name}"
    if staging.exists():  # left over by an interrupted run
        shutil.rmtree(staging)
    staging.mkdir()
    first = archive.parts[0]
    with tqdm(
        total=archive.size, unit="B", unit_scale=True, desc=f"unpack {archive.name}", disable=not progress, leave=False
    ) as bar:
        try:
            if len(archive.parts) == 1 and zipfile.is_zipfile(first):
                count = _extract_zip(archive, staging, bar)
            elif archive.name.endswith(_TAR_SUFFIXES) or tarfile.is_tarfile(first):
                count = _extract_tar(archive, staging, bar)
            else:
                raise ArchiveError(f"{first}: not a zip or tar archive")
        except zipfile.BadZipFile as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ArchiveError(f"{first}: broken zip ({exc}); delete it and download again") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    _merge(staging, dest)
    archive.marker.write_text(f"unpacked into {dest}\n{count} files\n", encoding="utf-8")
    return count
