"""Turn whatever the user points eval at into a Hugging Face model directory.

Accepted:
- a Hugging Face model directory (``config.json`` + weights) or a hub id (``Kwai-Keye/VideoTemp-o3``). A hub id
  is looked up (:func:`resolve_hub_model`) in a local mirror (``--model-mirror`` / ``VIDEOTEMP_MODEL_MIRROR``:
  ``<mirror>/<org>/<name>``), then in the Hugging Face cache (``models--<org>--<name>/snapshots/<commit>``),
  else downloaded (unless ``HF_HUB_OFFLINE=1``); the commit is recorded as the run's ``model_revision``;
- a verl training checkpoint: the trainer's ``default_local_dir`` (``latest_checkpointed_iteration.txt`` +
  ``global_step_N/``), one ``global_step_N/`` directory, or its ``actor/`` directory
  (``model_world_size_W_rank_R.pt`` shards + ``fsdp_config.json`` + ``huggingface/``).

FSDP shards are merged with verl's own model merger into a cache directory once; later runs reuse it
while the shards are unchanged. The merge writes to a temporary directory renamed into place, so an
interrupted merge never leaves a half-written model behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

from tools.files import atomic_write_dir, remove_stale_temps

_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.safetensors.index.json")
_SHARD_RE = re.compile(r"model_world_size_(\d+)_rank_(\d+)\.pt$")


class CheckpointError(ValueError):
    """The path is neither a HF model nor a verl checkpoint this module can merge."""


def is_hf_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and any(any(path.glob(p)) for p in _WEIGHT_PATTERNS)


def find_actor_dir(path: Path) -> Path | None:
    """The FSDP ``actor/`` directory of a verl checkpoint under ``path``, latest step first."""
    if any(_SHARD_RE.search(p.name) for p in path.glob("model_world_size_*_rank_*.pt")):
        return path
    if (path / "actor").is_dir():
        return find_actor_dir(path / "actor")
    tracker = path / "latest_checkpointed_iteration.txt"
    if tracker.is_file():
        step_dir = path / f"global_step_{int(tracker.read_text().strip())}"
        if step_dir.is_dir():
            return find_actor_dir(step_dir)
    steps = sorted(
        (p for p in path.glob("global_step_*") if p.is_dir() and p.name.split("_")[-1].isdigit()),
        key=lambda p: int(p.name.split("_")[-1]),
    )
    return find_actor_dir(steps[-1]) if steps else None


def _fingerprint(actor_dir: Path) -> str:
    digest = hashlib.sha256(str(actor_dir.resolve()).encode())
    for shard in sorted(actor_dir.glob("model_world_size_*_rank_*.pt")):
        stat = shard.stat()
        digest.update(f"{shard.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(os.environ.get("VIDEOTEMP_CACHE", Path.home() / ".cache" / "videotemp_o3")) / "merged"


def merge_fsdp_checkpoint(actor_dir: Path, target_dir: Path) -> Path:
    """Merge FSDP shards of ``actor_dir`` into a HF directory ``target_dir`` with verl's merger."""
    from verl.model_merger.base_model_merger import ModelMergerConfig
    from verl.model_merger.fsdp_model_merger import FSDPModelMerger

    if not (actor_dir / "huggingface" / "config.json").is_file():
        raise CheckpointError(
            f"{actor_dir}: no huggingface/config.json next to the shards (saved by verl's checkpoint manager)"
        )
    if not (actor_dir / "fsdp_config.json").is_file():
        raise CheckpointError(f"{actor_dir}: no fsdp_config.json (needed to know the world size of the shards)")

    def fill(tmp: Path) -> None:
        config = ModelMergerConfig(
            operation="merge",
            backend="fsdp",
            local_dir=str(actor_dir),
            hf_model_config_path=str(actor_dir / "huggingface"),
            target_dir=str(tmp),
        )
        with contextlib.redirect_stdout(sys.stderr):  # verl's merger prints progress; stdout stays the result
            merger = FSDPModelMerger(config)
            merger.merge_and_save()
            merger.cleanup()
        # files of the original HF dir the merger does not write (chat template, generation config ...)
        for extra in (actor_dir / "huggingface").iterdir():
            if extra.is_file() and not (tmp / extra.name).exists():
                shutil.copy2(extra, tmp / extra.name)

    target_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target_dir.parent)  # folders left by a killed merge
    return atomic_write_dir(target_dir, fill)


_HUB_ID_RE = re.compile(r"[\w.-]+/[\w.-]+")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")


def is_hub_id(model: str | os.PathLike) -> bool:
    """``ORG/NAME`` that is not an existing path."""
    return not Path(model).expanduser().exists() and bool(_HUB_ID_RE.fullmatch(str(model)))


def _git_commit(path: Path) -> str | None:
    """The commit a git clone of a hub repo is at (``.git/HEAD``), without running git."""
    head = path / ".git" / "HEAD"
    if not head.is_file():
        return None
    ref = head.read_text().strip()
    if _COMMIT_RE.fullmatch(ref):
        return ref
    if ref.startswith("ref: "):
        target = path / ".git" / ref[5:]
        if target.is_file():
            return target.read_text().strip()
        packed = path / ".git" / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref[5:]):
                    return line.split()[0]
    return None


def _hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"


def _from_hub_cache(repo_id: str, revision: str | None, cache: Path) -> tuple[Path, str] | None:
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    wanted = revision or "main"
    commit = wanted if _COMMIT_RE.fullmatch(wanted) else None
    ref = repo_dir / "refs" / wanted
    if commit is None and ref.is_file():
        commit = ref.read_text().strip()
    if commit and is_hf_model_dir(repo_dir / "snapshots" / commit):
        return repo_dir / "snapshots" / commit, commit
    return None


def resolve_hub_model(
    repo_id: str, revision: str | None = None, mirror: str | os.PathLike | None = None
) -> tuple[str, str | None]:
    """(local model directory, commit or None) of hub model ``repo_id``: local mirror, hub cache, else a download.

    A mirror holds ``<mirror>/<org>/<name>`` (or ``<org>--<name>``), a model directory; its commit is read from
    a ``.git`` clone or a ``revision.txt`` file if there is one (else None: unknown). With ``HF_HUB_OFFLINE=1``
    nothing is downloaded and a model found nowhere is a :class:`CheckpointError`.
    """
    mirror = mirror or os.environ.get("VIDEOTEMP_MODEL_MIRROR")
    if mirror:
        for candidate in (Path(mirror) / repo_id, Path(mirror) / repo_id.replace("/", "--")):
            if is_hf_model_dir(candidate):
                rev_file = candidate / "revision.txt"
                commit = _git_commit(candidate) or (rev_file.read_text().strip() if rev_file.is_file() else None)
                if revision and commit and revision != commit:
                    raise CheckpointError(
                        f"{candidate}: the mirror holds revision {commit}, not the requested {revision}"
                    )
                return str(candidate), commit
        found = _from_hub_cache(repo_id, revision, Path(mirror))  # a mirror laid out as a hub cache
        if found:
            return str(found[0]), found[1]
    found = _from_hub_cache(repo_id, revision, _hub_cache_dir())
    if found:
        return str(found[0]), found[1]
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        where = f"the mirror {mirror} nor " if mirror else ""
        raise CheckpointError(
            f"{repo_id}: not in {where}the Hugging Face cache {_hub_cache_dir()}, and HF_HUB_OFFLINE is set"
        )
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo_id=repo_id, revision=revision))
    except Exception as exc:  # network, auth, unknown repo: one clear line
        raise CheckpointError(
            f"{repo_id}: download from the Hugging Face hub failed ({exc.__class__.__name__}: {exc})"
        ) from None
    return str(path), path.name if _COMMIT_RE.fullmatch(path.name) else revision


def resolve_model(model: str | os.PathLike, cache_dir: Path | None = None) -> str:
    """Return a path or hub id that ``from_pretrained`` and vLLM can load for ``model``."""
    path = Path(model).expanduser()
    if not path.exists():
        if re.fullmatch(r"[\w.-]+/[\w.-]+", str(model)):
            return str(model)  # a hub id
        raise CheckpointError(f"{model}: no such directory, and not a hub id of the form ORG/NAME")
    if path.is_dir() and is_hf_model_dir(path):
        return str(path)
    actor_dir = find_actor_dir(path) if path.is_dir() else None
    if actor_dir is None:
        raise CheckpointError(
            f"{path}: not a Hugging Face model directory (config.json + weights) nor a verl checkpoint "
            "(global_step_N/actor/model_world_size_W_rank_R.pt)"
        )
    hf_full = actor_dir / "huggingface"
    if is_hf_model_dir(hf_full):  # saved with checkpoint.save_contents including hf_model
        return str(hf_full)
    target = (cache_dir or default_cache_dir()) / _fingerprint(actor_dir)
    if not is_hf_model_dir(target):
        print(f"[checkpoint] merging FSDP shards of {actor_dir} into {target}", file=sys.stderr)
        target.parent.mkdir(parents=True, exist_ok=True)
        merge_fsdp_checkpoint(actor_dir, target)
    return str(target)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.checkpoint CKPT``: print the HF model directory for a checkpoint (merging once)."""
    from tools.cli import ArgumentParser, quiet_verl_warnings

    parser = ArgumentParser(
        description="Print a loadable HF model path for a HF dir, hub id or verl checkpoint "
        "(FSDP shards are merged once into a cache directory)."
    )
    parser.add_argument(
        "model",
        help="HF model dir or hub id, or a verl checkpoint: trainer.default_local_dir, global_step_N/ or its actor/",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help=f"where merged models go (default {default_cache_dir()})"
    )
    args = parser.parse_args(argv)
    quiet_verl_warnings()  # a checkpoint merge imports verl
    try:
        print(resolve_model(args.model, cache_dir=args.cache_dir))
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
