"""Fetch the VideoTemp-o3 release data and the public benchmarks into the directory layouts our code reads.

    python data_prep/download.py --list
    python data_prep/download.py videotemp_o3 videotemp_bench --root data/
    python data_prep/download.py videomme mlvu videommmu lvbench --root data/

Each dataset comes from one or more Hugging Face dataset repositories (LVBench: metadata from
``zai-org/LVBench``, videos from ``lmms-eval/LVBench``). Files come through ``huggingface_hub``
(resumable: an interrupted run continues where it stopped); where the hub publishes a SHA-256 (LFS
files) the local copy is checked once. Then every archive is unpacked, wherever it sits: zips, tars,
split tars (``x.tar.gz.part-aa``, ``-ab``, ... joined in order) and webdataset shards
(``*_videos/videos_part_NNNN.tar.gz``, unpacked at the dataset root). Unpacking is atomic and happens
once per archive (a marker file next to it), so a run can be repeated or resumed safely.

Finally the command checks that every video the annotations name exists, and exits with status 1
naming how many are missing and why (``--allow-missing-videos`` turns that into a warning). The
training data's media are read from its jsonl files (:mod:`data_prep.release_layout`); a benchmark's
from its eval loader, the one source of each layout, which the command finds through the optional
hook ``BENCHMARK_MEDIA_HOOK`` (``eval.tasks.benchmark_media``): data_prep does not import eval, and
:func:`fetch` / :func:`check_videos` take the lister as an argument.

``--mirror DIR`` reads a local directory that mirrors the hub (``DIR/<org>/<name>/...``) instead of the
network: for offline machines and for tests. Renamed repositories are found under their old ids too.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from data_prep.archives import Archive, ArchiveError, find_archives, unpack
from data_prep.release_layout import training_media
from tools.cli import ArgumentParser
from tools.files import atomic_write_jsonl, atomic_write_text, read_jsonl


@dataclass(frozen=True)
class Source:
    """One hub repository and the files taken from it; ``aliases`` are its former ids (they redirect)."""

    repo_id: str
    patterns: tuple[str, ...] = ("*",)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnpackRule:
    """Archives matching ``pattern`` (relative to the dataset dir, ``**`` allowed) and where they go:
    the dataset root (``at_root``) or the folder the archive sits in."""

    pattern: str
    at_root: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives on the hub and how its files become our layout."""

    name: str
    sources: tuple[Source, ...]
    description: str
    unpack: tuple[UnpackRule, ...] = ()
    expect: tuple[str, ...] = ()  # files that must exist afterwards (what our loaders read)
    directory: str | None = None  # default: the name
    videos: str = ""  # how the video check reads the annotations: "training" or a benchmark name
    note: str = ""

    @property
    def dirname(self) -> str:
        return self.directory or self.name


_SHARDS = ("sft_videos/*.tar*", "rl_videos/*.tar*")
_ANY_ARCHIVE = (UnpackRule("**/*.zip"), UnpackRule("**/*.tar"), UnpackRule("**/*.tar.gz"), UnpackRule("**/*.tgz"))
_RELEASE = Source("Kwai-Keye/VideoTemp-o3", aliases=("Kling-Keye-Official/VideoTemp-o3",))
_RELEASE_BENCH = Source("Kwai-Keye/VideoTemp-Bench", aliases=("Kling-Keye-Official/VideoTemp-Bench",))

CATALOG: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "videotemp_o3",
            (_RELEASE,),
            "VideoTemp-o3 training data: sft/, sft_tool_call/, rl/{qa-1k,grounding}.jsonl + video shards",
            unpack=tuple(UnpackRule(p, at_root=True) for p in _SHARDS) + _ANY_ARCHIVE,
            expect=("rl/qa-1k.jsonl", "rl/grounding.jsonl"),
            videos="training",
        ),
        DatasetSpec(
            "videotemp_sft",
            (Source(_RELEASE.repo_id, ("sft/*", "sft_tool_call/*", "sft_videos/*", "*.md"), _RELEASE.aliases),),
            "only the SFT half of videotemp_o3 (sft/, sft_tool_call/, sft_videos/)",
            unpack=(UnpackRule(_SHARDS[0], at_root=True),) + _ANY_ARCHIVE,
            directory="videotemp_o3",
            videos="training",
        ),
        DatasetSpec(
            "videotemp_rl",
            (Source(_RELEASE.repo_id, ("rl/*", "rl_videos/*", "*.md"), _RELEASE.aliases),),
            "only the RL half of videotemp_o3 (rl/qa-1k.jsonl, rl/grounding.jsonl, rl_videos/)",
            unpack=(UnpackRule(_SHARDS[1], at_root=True),) + _ANY_ARCHIVE,
            expect=("rl/qa-1k.jsonl", "rl/grounding.jsonl"),
            directory="videotemp_o3",
            videos="training",
        ),
        DatasetSpec(
            "videotemp_bench",
            (_RELEASE_BENCH,),
            "VideoTemp-Bench (MCQ + grounding): annotation jsonl -> data.jsonl, videos/ shards",
            unpack=(UnpackRule("videos/*.tar*", at_root=True),) + _ANY_ARCHIVE,
            expect=("data.jsonl",),
            videos="videotemp",
        ),
        DatasetSpec(
            "videomme",
            (Source("lmms-eval/Video-MME", ("videomme/*", "videos_chunked_*.zip"), ("lmms-lab/Video-MME",)),),
            "Video-MME (w/o subtitles): videomme/test-*.parquet + data/{videoID}.mp4",
            unpack=(UnpackRule("videos_chunked_*.zip", at_root=True),),
            expect=("videomme/test-00000-of-00001.parquet",),
            videos="videomme",
        ),
        DatasetSpec(
            "mlvu",
            (Source("MLVU/MLVU_Test", ("test-ground-truth/*", "*.tar*", "*.zip")),),
            "MLVU test split (gated): test-ground-truth/test_mcq_gt.json + video/ (split tar MLVU_Test/*.part-*)",
            unpack=(UnpackRule("**/*.tar*", at_root=True), UnpackRule("**/*.zip", at_root=True)),
            expect=("test-ground-truth/test_mcq_gt.json",),
            videos="mlvu",
            note="gated: accept the terms on the hub and set HF_TOKEN",
        ),
        DatasetSpec(
            "videommmu",
            (
                Source(
                    "lmms-eval/VideoMMMU",
                    ("Perception/*", "Comprehension/*", "Adaptation/*", "*.zip"),
                    ("lmms-lab/VideoMMMU",),
                ),
            ),
            "Video-MMMU: {Perception,Comprehension,Adaptation}/test-*.parquet + domain zips",
            unpack=(UnpackRule("**/*.zip"),),
            expect=(
                "Perception/test-00000-of-00001.parquet",
                "Comprehension/test-00000-of-00001.parquet",
                "Adaptation/test-00000-of-00001.parquet",
            ),
            videos="videommmu",
        ),
        DatasetSpec(
            "lvbench",
            (
                Source("zai-org/LVBench", ("video_info.meta.jsonl",)),
                Source("lmms-eval/LVBench", ("video_chunks/*.zip",), ("lmms-lab/LVBench",)),
            ),
            "LVBench: video_info.meta.jsonl (zai-org/LVBench) + {key}.mp4 (lmms-eval/LVBench video_chunks/)",
            unpack=(UnpackRule("video_chunks/*.zip", at_root=True),),
            expect=("video_info.meta.jsonl",),
            videos="lvbench",
        ),
    ]
}
ALIASES = {"videotemp_sft": "videotemp_o3", "videotemp_rl": "videotemp_o3"}  # same directory, part of the files


class DownloadError(RuntimeError):
    """A dataset could not be fetched; the message says why and what to do."""


@dataclass
class VideoCheck:
    """Result of checking that the videos the annotations name exist."""

    total: int = 0
    missing: list[tuple[str, str, str]] = field(default_factory=list)  # (where, path, reason)

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, _, reason in self.missing:
            key = reason.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        return counts


@dataclass
class FetchReport:
    name: str
    directory: Path
    files: int = 0
    unpacked: list[str] = field(default_factory=list)
    verified: int = 0
    repos: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    videos: VideoCheck | None = None


# --------------------------------------------------------------------------- fetching


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_from_mirror(source: Source, repo_id: str, mirror: Path, target: Path) -> tuple[str, int]:
    """Copy matching files of ``mirror/<repo_id>`` (or an alias) into ``target``; skips complete files."""
    for candidate in (repo_id, *source.aliases):
        if (mirror / candidate).is_dir():
            break
    else:
        raise DownloadError(
            f"{repo_id}: not found in the mirror {mirror} (expected directory {mirror / repo_id}"
            + (f" or one of {', '.join(source.aliases)}" if source.aliases else "")
            + ")"
        )
    root = mirror / candidate
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    chosen = [p for p in files if any(fnmatch(p.relative_to(root).as_posix(), pat) for pat in source.patterns)]
    for path in tqdm(chosen, desc=f"copy {candidate}", unit="file", leave=False):
        dest = target / path.relative_to(root)
        if dest.exists() and dest.stat().st_size == path.stat().st_size:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".incomplete")
        shutil.copyfile(path, partial)
        partial.replace(dest)
    return candidate, len(chosen)


def _fetch_from_hub(source: Source, repo_id: str, target: Path) -> tuple[str, int, int]:
    """Download with huggingface_hub (resumable), trying former ids; check LFS SHA-256 sums once.

    Returns (repo id used, files, verified)."""
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers
        raise DownloadError("huggingface_hub is not installed: pip install huggingface_hub") from exc
    last: Exception | None = None
    for candidate in (repo_id, *source.aliases):
        try:
            snapshot_download(
                repo_id=candidate, repo_type="dataset", local_dir=target, allow_patterns=list(source.patterns)
            )
            info = HfApi().dataset_info(candidate, files_metadata=True)
            break
        except GatedRepoError as exc:  # a subclass of RepositoryNotFoundError: say what to do instead
            raise DownloadError(
                f"{candidate}: the dataset is gated: accept its terms on the hub page, then set HF_TOKEN "
                f"(or run `hf auth login`) and run again ({exc.__class__.__name__})"
            ) from exc
        except RepositoryNotFoundError as exc:
            last = exc
            continue
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
            raise DownloadError(
                f"{candidate}: the Hugging Face hub could not be reached or refused the request "
                f"({exc.__class__.__name__}: {exc}). Check the network / HF_ENDPOINT / HF_TOKEN (some datasets are "
                "gated: accept their terms on the hub), or copy the files from another machine and use --mirror DIR."
            ) from exc
    else:
        raise DownloadError(
            f"{repo_id}: repository not found on the hub (also tried {', '.join(source.aliases) or 'no other id'}): {last}"
        )
    cache_path = target / ".download_verified.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    verified = files = 0
    for sibling in info.siblings or []:
        local = target / sibling.rfilename
        if not local.exists():
            continue
        files += 1
        lfs = getattr(sibling, "lfs", None)
        expected = getattr(lfs, "sha256", None) if lfs is not None else None
        if not expected:
            continue
        stamp = [local.stat().st_size, int(local.stat().st_mtime), expected]
        if cache.get(sibling.rfilename) != stamp:
            if _sha256(local) != expected:
                local.unlink()
                raise DownloadError(
                    f"{candidate}/{sibling.rfilename}: checksum mismatch; the file was removed, run again"
                )
            cache[sibling.rfilename] = stamp
        verified += 1
    atomic_write_text(cache_path, json.dumps(cache))
    return candidate, files, verified


# --------------------------------------------------------------------------- unpacking


def _pending_archives(directory: Path, rules: tuple[UnpackRule, ...]) -> list[tuple[Archive, Path]]:
    """Archives not yet unpacked, each with its destination (the first rule matching it decides)."""
    out: dict[Path, tuple[Archive, Path]] = {}
    for rule in rules:
        for archive in find_archives(directory, [rule.pattern]):
            if archive.parts[0] not in out:
                out[archive.parts[0]] = (archive, directory if rule.at_root else archive.folder)
    return [item for item in out.values() if not item[0].is_done()]


def unpack_all(directory: Path, rules: tuple[UnpackRule, ...], *, progress: bool = True) -> list[str]:
    """Unpack every pending archive; repeat while unpacking produced new archives (nested ones)."""
    done: list[str] = []
    for _ in range(5):  # archives inside archives, a few levels at most
        pending = _pending_archives(directory, rules)
        if not pending:
            break
        for archive, dest in tqdm(
            pending, desc=f"unpack {directory.name}", unit="archive", disable=not progress or len(pending) < 2
        ):
            try:
                unpack(archive, dest, progress=progress)
            except ArchiveError as exc:
                raise DownloadError(str(exc)) from exc
            done.append(
                archive.parts[0].relative_to(directory).as_posix()
                if len(archive.parts) == 1
                else (archive.folder / archive.name).relative_to(directory).as_posix()
            )
    return done


# --------------------------------------------------------------------------- dataset-specific steps


BENCH_FIELDS = ("videos", "question", "answer", "timestamp")


def _read_rows(path: Path, limit: int | None = None) -> list[dict] | None:
    """Rows of a jsonl / json-list file, or None when it is not one."""
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data if isinstance(data, list) else None
        else:
            rows = []
            for _, row in read_jsonl(path):
                rows.append(row)
                if limit and len(rows) >= limit:
                    break
    except (ValueError, OSError):  # bad JSON, not UTF-8, a bad jsonl line
        return None
    if rows is None or not all(isinstance(r, dict) for r in rows):
        return None
    return rows


def find_bench_annotation(directory: Path) -> list[Path]:
    """VideoTemp-Bench annotation files under ``directory``, found by content (rows with videos/question/answer/timestamp)."""
    found = []
    for path in sorted(list(directory.rglob("*.jsonl")) + list(directory.rglob("*.json"))):
        rel = path.relative_to(directory)
        if (
            rel.as_posix() == "data.jsonl"
            or rel.name.startswith(".")
            or any(p.startswith(".unpacking-") for p in rel.parts)
        ):
            continue
        rows = _read_rows(path, limit=5)
        if rows and all(all(k in r for k in BENCH_FIELDS) for r in rows):
            found.append(path)
    return found


def _resolve_under(root: Path, path: str) -> str | None:
    """``path`` if it exists under ``root``; else the shortest trailing part of it that does, relative to root."""
    if (root / path).exists():
        return path
    parts = Path(path).parts
    for i in range(1, len(parts)):
        tail = Path(*parts[i:])
        if (root / tail).exists():
            return tail.as_posix()
    return None


def finalize_videotemp_bench(directory: Path) -> list[str]:
    """Write ``data.jsonl`` (the loader's file) from the annotation found by content; video paths that
    carry a prefix from the authors' machine are rewritten to the file that exists under the root."""
    notes: list[str] = []
    candidates = find_bench_annotation(directory)
    if not candidates:
        if (directory / "data.jsonl").exists():
            return notes
        raise DownloadError(
            f"{directory}: no annotation file found (looked for jsonl/json rows with fields {', '.join(BENCH_FIELDS)})"
        )
    source = candidates[0]
    if len(candidates) > 1:
        notes.append(
            f"several annotation files found, using {source.relative_to(directory)} "
            f"(others: {', '.join(str(c.relative_to(directory)) for c in candidates[1:])})"
        )
    rows = _read_rows(source) or []
    rewritten = 0
    for row in rows:
        videos = row.get("videos")
        if isinstance(videos, list) and videos and isinstance(videos[0], str):
            fixed = _resolve_under(directory, videos[0].lstrip("/")) if not (directory / videos[0]).exists() else None
            if fixed and fixed != videos[0]:
                row["videos"] = [fixed, *videos[1:]]
                rewritten += 1
    target = directory / "data.jsonl"
    atomic_write_jsonl(target, rows)
    notes.append(
        f"data.jsonl written from {source.relative_to(directory)} ({len(rows)} questions"
        + (f", {rewritten} video paths rewritten to the files under the root" if rewritten else "")
        + ")"
    )
    return notes


FINALIZE: dict[str, Callable[[Path], list[str]]] = {"videotemp_bench": finalize_videotemp_bench}


# --------------------------------------------------------------------------- video check


MediaLister = Callable[[str, Path], Iterable[tuple[str, str]]]
"""``(benchmark name, dataset directory) -> (where, path)`` of every video/image its annotations name."""

BENCHMARK_MEDIA_HOOK = "eval.tasks:benchmark_media"
"""``module:function`` of the benchmarks' :data:`MediaLister`: the eval loaders (a layer above data_prep,
which therefore never imports it). Only the command line resolves it (:func:`installed_media_lister`);
without it, a benchmark's videos are reported as not checked."""


def installed_media_lister(hook: str = BENCHMARK_MEDIA_HOOK) -> MediaLister | None:
    """The function ``hook`` names, or None when its module is not installed (data_prep without eval/)."""
    module, _, name = hook.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None  # the hook's package is absent; a broken import inside it is an error
        raise


def check_videos(spec: DatasetSpec, directory: Path, list_media: MediaLister | None = None) -> VideoCheck | None:
    """Check that every video the dataset's annotations name exists; say why each missing one is missing.

    Training data is read from its jsonl files; a benchmark through ``list_media`` (its eval loader):
    None when none is given (not checked)."""
    if spec.videos == "training":
        refs = [(where, str(directory / p) if not os.path.isabs(p) else p) for where, p in training_media(directory)]
    elif list_media is None:
        return None
    else:
        try:
            refs = list(list_media(spec.videos, directory))
        except Exception as exc:  # a loader error names the file and field
            raise DownloadError(f"{spec.name}: the annotations do not load: {exc}") from exc
    result = VideoCheck(total=len(refs))
    pending = [a for a, _ in _pending_archives(directory, spec.unpack)]
    by_name: dict[str, Path] | None = None
    seen: set[str] = set()
    for where, path in refs:
        if path in seen:
            continue
        seen.add(path)
        if Path(path).exists():
            continue
        if by_name is None:
            by_name = {p.name: p for p in directory.rglob("*") if p.is_file()}
        name = Path(path).name
        if name in by_name:
            reason = f"in another folder: {by_name[name].relative_to(directory)}"
        elif pending:
            reason = f"archives not unpacked: {', '.join(a.name for a in pending[:3])}"
        elif not str(Path(path)).startswith(str(directory)):
            reason = "outside the dataset directory: absolute path from another machine"
        else:
            reason = "not in any downloaded file: download the video files/archives of this dataset"
        result.missing.append((where, path, reason))
    result.total = len(seen)
    return result


# --------------------------------------------------------------------------- entry points


def fetch(
    name: str,
    root: Path,
    *,
    repo_id: str | None = None,
    mirror: Path | None = None,
    check: bool = True,
    progress: bool = True,
    list_media: MediaLister | None = None,
) -> FetchReport:
    """Fetch one dataset of the catalog into ``root/<dir>``, unpack it and check its videos.

    ``repo_id`` replaces the hub id of the dataset's first source. The video check's result is in
    ``report.videos`` (``check=False`` skips it; a benchmark is checked only with ``list_media``, e.g.
    :func:`installed_media_lister`, and otherwise noted as not checked)."""
    if name not in CATALOG:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(CATALOG)}")
    spec = CATALOG[name]
    target = root / spec.dirname
    target.mkdir(parents=True, exist_ok=True)
    report = FetchReport(name, target)
    for i, source in enumerate(spec.sources):
        repo = repo_id if (repo_id and i == 0) else source.repo_id
        if mirror is not None:
            used, count = _fetch_from_mirror(source, repo, mirror, target)
        else:
            used, count, verified = _fetch_from_hub(source, repo, target)
            report.verified += verified
        report.repos.append(used)
        report.files += count
    report.unpacked = unpack_all(target, spec.unpack, progress=progress)
    if name in FINALIZE:
        report.notes += FINALIZE[name](target)
    missing = [rel for rel in spec.expect if not (target / rel).exists()]
    if missing:
        raise DownloadError(
            f"{name}: fetched {', '.join(report.repos)} but these files are missing: {', '.join(missing)}"
        )
    if check and spec.videos:
        report.videos = check_videos(spec, target, list_media)
        if report.videos is None:
            report.notes.append(
                "videos not checked: the benchmark loaders (eval/) that read the annotations are not installed"
            )
    return report


def _parse_repo_ids(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, repo = item.partition("=")
        if not sep or "/" not in repo:
            raise SystemExit(f"--repo-id expects NAME=ORG/REPO, got {item!r}")
        out[name] = repo
    return out


def _listing() -> str:
    lines = []
    for spec in CATALOG.values():
        repos = " + ".join(s.repo_id for s in spec.sources)
        lines.append(f"  {spec.name:16s} -> <root>/{spec.dirname:16s} {repos}\n  {'':16s}    {spec.description}")
    return "\n".join(lines)


def _print_videos(name: str, check: VideoCheck, allow: bool) -> None:
    if not check.missing:
        print(f"[download] {name}: all {check.total} videos named by the annotations exist")
        return
    label = "WARNING" if allow else "ERROR"
    reasons = "; ".join(f"{n} {r}" for r, n in sorted(check.reasons().items(), key=lambda kv: -kv[1]))
    print(
        f"[download] {name}: {label}: {len(check.missing)} of {check.total} videos named by the annotations are "
        f"missing ({reasons})",
        file=sys.stderr,
    )
    for where, path, reason in check.missing[:5]:
        print(f"    {where}: {path} ({reason})", file=sys.stderr)
    if len(check.missing) > 5:
        print(f"    ... and {len(check.missing) - 5} more", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Datasets:\n" + _listing() + "\n\nExit status: 0 when every dataset is complete, 1 when a dataset "
        "failed or videos are missing.",
    )
    parser.add_argument("datasets", nargs="*", help="dataset names (see below); 'all' for every dataset")
    parser.add_argument(
        "--root", type=Path, default=Path("data"), help="where <dataset>/ directories are written (default: data/)"
    )
    parser.add_argument(
        "--mirror", type=Path, default=None, help="read from a local mirror DIR/<org>/<name>/ instead of the hub"
    )
    parser.add_argument(
        "--repo-id",
        action="append",
        default=[],
        metavar="NAME=ORG/REPO",
        help="another hub repository for a dataset (its first source; repeatable)",
    )
    parser.add_argument(
        "--allow-missing-videos",
        action="store_true",
        help="report missing videos as a warning, exit 0 (e.g. while some archives are still coming)",
    )
    parser.add_argument("--no-video-check", action="store_true", help="skip the check that the annotated videos exist")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--list", action="store_true", help="list the datasets and exit")
    args = parser.parse_args(argv)
    if args.list or not args.datasets:
        print(_listing())
        return 0
    repo_ids = _parse_repo_ids(args.repo_id)
    names = [n for n in CATALOG if n not in ALIASES] if args.datasets == ["all"] else args.datasets
    failed = 0
    list_media = installed_media_lister()
    for name in names:
        try:
            report = fetch(
                name,
                args.root,
                repo_id=repo_ids.get(name),
                mirror=args.mirror,
                check=not args.no_video_check,
                progress=not args.no_progress,
                list_media=list_media,
            )
        except DownloadError as exc:
            print(f"[download] {name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        note = f" ({CATALOG[name].note})" if CATALOG[name].note else ""
        print(
            f"[download] {name}: {report.files} files from {', '.join(report.repos)} in {report.directory}, "
            f"{len(report.unpacked)} archives unpacked, {report.verified} checksums verified{note}"
        )
        for line in report.notes:
            print(f"[download] {name}: {line}")
        if report.videos is not None:
            _print_videos(name, report.videos, args.allow_missing_videos)
            if report.videos.missing and not args.allow_missing_videos:
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
