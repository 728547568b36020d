"""Fetch the public datasets of VideoTemp-o3 into the directory layouts our loaders read.

    python data_prep/download.py --list
    python data_prep/download.py videomme mlvu --root data/
    python data_prep/download.py videotemp_rl --repo-id videotemp_rl=ORG/NAME --root data/

Each dataset is a Hugging Face dataset repository. Files come through ``huggingface_hub``
(resumable: an interrupted run continues where it stopped; files already complete are not fetched
again), then archives are unpacked in place, once (a marker file records each unpacked archive), so
that ``<root>/<dataset>/`` holds exactly the layout of EVAL.md / the release README. Where the hub
publishes a SHA-256 for a file (LFS files), the local copy is checked against it.

``--mirror DIR`` reads a local directory that mirrors the hub (``DIR/<org>/<name>/...``) instead of the
network: for offline machines and for tests.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tarfile
from fnmatch import fnmatch
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives on the hub and how its files become our layout."""

    name: str
    repo_id: str | None  # None: the hub id must be given with --repo-id NAME=ORG/REPO
    description: str
    allow_patterns: tuple[str, ...] = ("*",)
    # archives (glob, relative to the dataset dir) unpacked into the dataset dir
    unpack: tuple[str, ...] = ()
    # files that must exist afterwards (what our loaders read)
    expect: tuple[str, ...] = ()
    note: str = ""


CATALOG: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "videomme",
            "lmms-lab/Video-MME",
            "Video-MME (w/o subtitles): videomme/test-*.parquet + data/{videoID}.mp4",
            allow_patterns=("videomme/*", "videos_chunked_*.zip"),
            unpack=("videos_chunked_*.zip",),
            expect=("videomme/test-00000-of-00001.parquet",),
        ),
        DatasetSpec(
            "mlvu",
            "MLVU/MLVU_Test",
            "MLVU test split: test-ground-truth/test_mcq_gt.json + video/",
            allow_patterns=("test-ground-truth/*", "video/*", "*.zip", "*.tar*"),
            unpack=("*.zip", "*.tar", "*.tar.gz"),
            expect=("test-ground-truth/test_mcq_gt.json",),
        ),
        DatasetSpec(
            "videommmu",
            "lmms-lab/VideoMMMU",
            "Video-MMMU: {Perception,Comprehension,Adaptation}/test-*.parquet + videos",
            allow_patterns=("Perception/*", "Comprehension/*", "Adaptation/*", "*.zip"),
            unpack=("*.zip",),
            expect=(
                "Perception/test-00000-of-00001.parquet",
                "Comprehension/test-00000-of-00001.parquet",
                "Adaptation/test-00000-of-00001.parquet",
            ),
        ),
        DatasetSpec(
            "lvbench",
            "zai-org/LVBench",
            "LVBench: video_info.meta.jsonl (+ {key}.mp4 where the repo carries videos)",
            allow_patterns=("video_info.meta.jsonl", "*.mp4", "*.zip"),
            unpack=("*.zip",),
            expect=("video_info.meta.jsonl",),
            note="LVBench videos are YouTube videos; where the repository holds only the metadata, "
            "fetch the videos with the benchmark's own script into this directory as {key}.mp4.",
        ),
        DatasetSpec(
            "videotemp_bench",
            None,
            "VideoTemp-Bench: data.jsonl (MCQ and grounding) + videos",
            unpack=("*.zip", "*.tar", "*.tar.gz"),
            expect=("data.jsonl",),
        ),
        DatasetSpec(
            "videotemp_sft",
            None,
            "VideoTemp-o3 SFT data: wo_tool_call/*.jsonl, wi_tool_call/*.jsonl (+ clip files)",
            unpack=("*.zip", "*.tar", "*.tar.gz"),
        ),
        DatasetSpec(
            "videotemp_rl",
            None,
            "VideoTemp-o3 RL data: qa.jsonl, grounding.jsonl",
            unpack=("*.zip", "*.tar", "*.tar.gz"),
            expect=("qa.jsonl", "grounding.jsonl"),
        ),
    ]
}


class DownloadError(RuntimeError):
    """A dataset could not be fetched; the message says why and what to do."""


@dataclass
class FetchReport:
    name: str
    directory: Path
    files: int = 0
    unpacked: list[str] = field(default_factory=list)
    verified: int = 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_from_mirror(repo_id: str, mirror: Path, target: Path, patterns: tuple[str, ...]) -> int:
    """Copy matching files of ``mirror/<repo_id>`` into ``target`` (skips files already complete)."""
    source = mirror / repo_id
    if not source.is_dir():
        raise DownloadError(f"{repo_id}: not found in the mirror {mirror} (expected directory {source})")
    files = [p for p in sorted(source.rglob("*")) if p.is_file()]
    chosen = [p for p in files if any(fnmatch(p.relative_to(source).as_posix(), pat) for pat in patterns)]
    for path in tqdm(chosen, desc=f"copy {repo_id}", unit="file", leave=False):
        dest = target / path.relative_to(source)
        if dest.exists() and dest.stat().st_size == path.stat().st_size:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        shutil.copyfile(path, partial)
        partial.replace(dest)
    return len(chosen)


def _fetch_from_hub(repo_id: str, target: Path, patterns: tuple[str, ...]) -> tuple[int, int]:
    """Download with huggingface_hub (resumable); check LFS SHA-256 sums. Returns (files, verified)."""
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers
        raise DownloadError("huggingface_hub is not installed: pip install huggingface_hub") from exc
    try:
        snapshot_download(repo_id=repo_id, repo_type="dataset", local_dir=target, allow_patterns=list(patterns))
        info = HfApi().dataset_info(repo_id, files_metadata=True)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise DownloadError(
            f"{repo_id}: the Hugging Face hub could not be reached or refused the request ({exc.__class__.__name__}: {exc}). "
            "Check the network / HF_ENDPOINT / HF_TOKEN (some datasets are gated: accept their terms on the hub), "
            "or copy the files from another machine and use --mirror DIR."
        ) from exc
    verified = 0
    files = 0
    for sibling in info.siblings or []:
        local = target / sibling.rfilename
        if not local.exists():
            continue
        files += 1
        lfs = getattr(sibling, "lfs", None)
        expected = getattr(lfs, "sha256", None) if lfs is not None else None
        if expected:
            if _sha256(local) != expected:
                local.unlink()
                raise DownloadError(f"{repo_id}/{sibling.rfilename}: checksum mismatch; the file was removed, run again")
            verified += 1
    return files, verified


def _unpack(directory: Path, patterns: tuple[str, ...]) -> list[str]:
    """Unpack archives matching ``patterns`` into ``directory`` once each (marker files)."""
    done: list[str] = []
    archives = sorted({p for pat in patterns for p in directory.glob(pat) if p.is_file()})
    for archive in tqdm(archives, desc="unpack", unit="archive", leave=False):
        marker = archive.with_name(f".{archive.name}.unpacked")
        if marker.exists():
            continue
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _check_members(archive, [m.filename for m in zf.infolist()])
                zf.extractall(directory)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                _check_members(archive, tf.getnames())
                tf.extractall(directory, filter="data")
        else:
            raise DownloadError(f"{archive}: not a zip or tar archive")
        marker.write_text("ok\n")
        done.append(archive.name)
    return done


def _check_members(archive: Path, names: list[str]) -> None:
    for name in names:
        if name.startswith("/") or ".." in Path(name).parts:
            raise DownloadError(f"{archive}: unsafe member path {name!r}")


def fetch(
    name: str,
    root: Path,
    *,
    repo_id: str | None = None,
    mirror: Path | None = None,
) -> FetchReport:
    """Fetch one dataset of the catalog into ``root/<name>`` and unpack it into our layout."""
    if name not in CATALOG:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(CATALOG)}")
    spec = CATALOG[name]
    repo = repo_id or spec.repo_id
    if repo is None:
        raise DownloadError(
            f"{name}: give its hub repository with --repo-id {name}=ORG/NAME "
            "(the id under which the VideoTemp-o3 release published it)"
        )
    target = root / name
    target.mkdir(parents=True, exist_ok=True)
    report = FetchReport(name, target)
    if mirror is not None:
        report.files = _fetch_from_mirror(repo, mirror, target, spec.allow_patterns)
    else:
        report.files, report.verified = _fetch_from_hub(repo, target, spec.allow_patterns)
    report.unpacked = _unpack(target, spec.unpack)
    missing = [rel for rel in spec.expect if not (target / rel).exists()]
    if missing:
        raise DownloadError(f"{name}: fetched {repo} but these files are missing: {', '.join(missing)}")
    return report


def _parse_repo_ids(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, repo = item.partition("=")
        if not sep or "/" not in repo:
            raise SystemExit(f"--repo-id expects NAME=ORG/REPO, got {item!r}")
        out[name] = repo
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Datasets:\n" + "\n".join(f"  {s.name:16s} {s.repo_id or '(--repo-id needed)':24s} {s.description}" for s in CATALOG.values()),
    )
    parser.add_argument("datasets", nargs="*", help="dataset names (see below); 'all' for every dataset with a known hub id")
    parser.add_argument("--root", type=Path, default=Path("data"), help="where <dataset>/ directories are written (default: data/)")
    parser.add_argument("--mirror", type=Path, default=None, help="read from a local mirror DIR/<org>/<name>/ instead of the hub")
    parser.add_argument("--repo-id", action="append", default=[], metavar="NAME=ORG/REPO", help="hub repository of a dataset (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the datasets and exit")
    args = parser.parse_args(argv)
    if args.list or not args.datasets:
        for spec in CATALOG.values():
            print(f"{spec.name:16s} {spec.repo_id or '(--repo-id needed)':24s} {spec.description}")
        return 0
    repo_ids = _parse_repo_ids(args.repo_id)
    names = [n for n, s in CATALOG.items() if s.repo_id or n in repo_ids] if args.datasets == ["all"] else args.datasets
    failed = 0
    for name in names:
        try:
            report = fetch(name, args.root, repo_id=repo_ids.get(name), mirror=args.mirror)
        except DownloadError as exc:
            print(f"[download] {name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        note = f" ({CATALOG[name].note})" if CATALOG[name].note else ""
        print(
            f"[download] {name}: {report.files} files in {report.directory}, "
            f"{len(report.unpacked)} archives unpacked, {report.verified} checksums verified{note}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
