"""Shared pieces of the jsonl -> parquet converters (``prepare_rl.py``, ``prepare_sft.py``).

Reading jsonl with line numbers, rejects with ``file:line: reason``, media path resolution, a
parallel media probe with an on-disk cache keyed by ``path + size + mtime``, answer / option /
segment checks, a deterministic train/val split and atomic parquet / jsonl writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from reward_fns.answer_parsing import first_letter
from tools.files import (
    JsonlLineError,
    atomic_write,
    atomic_write_jsonl,
    atomic_write_text,
    remove_stale_temps,
    strip_file_uri,
)
from tools.files import read_jsonl as read_jsonl_lines
from tools.protocol import first_answer
from tools.segments import Segment
from tools.segments import parse_segments as parse_segments_of

PROBE_CACHE_VERSION = 1
DEFAULT_PROBE_CACHE_NAME = "probe_cache.json"
OUTPUT_NAMES = ("train.parquet", "val.parquet", "rejects.jsonl")
# A segment end may overshoot the probed duration by up to this much and is then clamped to the
# duration (and counted as a fix); further out it is rejected. Annotations are written in whole or
# tenth seconds and the probed duration is frames / fps of the decoded stream, which is shorter than
# the container duration by up to a frame plus the audio tail, so an annotation that ends "at the end
# of the video" rounds up past the probe by less than one second. One second keeps every such row
# while still rejecting annotations made against another (longer) cut of the video.
DURATION_TOLERANCE_S = 1.0
PROBE_RETRIES = 1  # a failed video decode is retried this many times before the row is rejected
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# An option line inside a question text: "A. text", "(B) text", "C) text", "D: text".
_OPTION_LINE_RE = re.compile(r"^\s*\(?([A-Z])[\.\):]\s*\S", re.MULTILINE)


class RowError(ValueError):
    """A row cannot be converted; the message is the reason written to the rejects file."""


class Fixes:
    """Counts of the repairs made to accepted rows, by class (printed in the summary)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, what: str, count: int = 1) -> None:
        if count:
            with self._lock:
                self.counts[what] = self.counts.get(what, 0) + count


@dataclass(frozen=True)
class Reject:
    """One rejected input row."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class MediaInfo:
    """Probe result of one video or image (``error`` set when it cannot be read)."""

    path: str
    kind: str  # "video" or "image"
    duration: float = 0.0
    fps: float = 0.0
    num_frames: int = 0
    width: int = 0
    height: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# --------------------------------------------------------------------------- reading


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Yield ``(line_number, object)`` for every non-blank line; a bad line yields a :class:`Reject`.

    Reads with :func:`tools.files.read_jsonl` (a UTF-8 byte-order mark at the start is skipped). A line
    that is not UTF-8, not JSON, not an object, or holds a string that cannot be written as UTF-8 (a
    lone surrogate such as ``"\\ud800"``) is a reject; the other lines are read on.
    """
    path = str(path)
    for lineno, obj in read_jsonl_lines(path, keep_going=True):
        if isinstance(obj, JsonlLineError):
            reason = obj.reason if obj.kind == "utf8" else f"bad JSON: {obj.detail}"
            yield lineno, Reject(path, lineno, reason)
            continue
        if not isinstance(obj, dict):
            yield lineno, Reject(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
            continue
        bad = _unencodable(obj)
        if bad is not None:
            yield lineno, Reject(path, lineno, f"lone surrogate in field '{bad}' (not writable as UTF-8)")
            continue
        yield lineno, obj


def _unencodable(value: Any, where: str = "") -> str | None:
    """The field path of the first string (key or value) that is not encodable as UTF-8, else None."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return at or "<row>"
        elif isinstance(item, dict):
            for key, sub in item.items():
                name = f"{at}.{key}" if at else str(key)
                stack.append((key, name))
                stack.append((sub, name))
        elif isinstance(item, list):
            stack.extend((sub, f"{at}[{i}]") for i, sub in enumerate(item))
    return None


def require(row: dict[str, Any], key: str) -> Any:
    """``row[key]``, or :class:`RowError` naming the missing field."""
    value = row.get(key)
    if value is None or (isinstance(value, (str, list)) and len(value) == 0):
        raise RowError(f"missing field '{key}'")
    return value


# --------------------------------------------------------------------------- media paths and probing


def media_path(entry: Any) -> str:
    """The path of a media entry given as a string or a dict with ``video``/``image``/``path``."""
    path: str | None = None
    if isinstance(entry, (str, os.PathLike)):
        path = os.fspath(entry)
    elif isinstance(entry, dict):
        path = next((entry[key] for key in ("video", "image", "path", "url") if isinstance(entry.get(key), str)), None)
    if path is not None:
        if "\x00" in path:
            raise RowError(f"media path holds a NUL byte: {path!r}")
        if not path.strip():
            raise RowError("media path is empty")
        return path
    raise RowError(f"media entry must be a path or a dict with a 'video'/'image' path, got {entry!r}")


def resolve_path(path: str, root: str | os.PathLike | None) -> str:
    """Absolute path: ``file://`` stripped, relative paths joined to ``root`` (or the CWD)."""
    expanded = os.path.expanduser(strip_file_uri(path))
    if not os.path.isabs(expanded) and root is not None:
        expanded = os.path.join(os.fspath(root), expanded)
    return os.path.abspath(expanded)


def media_kind(path: str) -> str:
    return "image" if Path(path).suffix.lower() in IMAGE_SUFFIXES else "video"


def _probe_one(path: str, kind: str, retries: int = PROBE_RETRIES) -> MediaInfo:
    """Probe one file; a video that fails to decode is tried ``retries`` more times (after a short pause)."""
    info = _probe_once(path, kind)
    for attempt in range(retries if kind == "video" else 0):
        if info.ok:
            break
        time.sleep(0.2 * (attempt + 1))  # transient failures come from load (e.g. "Unable to handle EOF")
        try:
            from tools.video_io import forget_probe

            forget_probe(path)
        except ImportError:
            pass
        info = _probe_once(path, kind)
    return info


def _probe_once(path: str, kind: str) -> MediaInfo:
    if kind == "image":
        from PIL import Image

        try:
            with Image.open(path) as img:
                img.verify()
            with Image.open(path) as img:
                width, height = img.size
        except Exception as err:  # PIL raises many types for broken files
            return MediaInfo(path, kind, error=f"image not readable: {type(err).__name__}: {err}")
        return MediaInfo(path, kind, width=width, height=height)

    from tools.video_io import probe
    from tools.video_types import VideoError

    try:
        info = probe(path)
    except VideoError as err:
        return MediaInfo(path, kind, error=f"video not decodable: {err}")
    except Exception as err:  # a decoder crash is a property of the file here, not a bug
        return MediaInfo(path, kind, error=f"video not decodable: {type(err).__name__}: {err}")
    if info.num_frames < 1 or not info.duration > 0:
        return MediaInfo(path, kind, error=f"video has no frames (frames={info.num_frames}, duration={info.duration})")
    return MediaInfo(path, kind, info.duration, info.fps, info.num_frames, info.width, info.height)


class ProbeCache:
    """A JSON file mapping ``path`` -> ``{size, mtime_ns, info}``; an entry is valid while size and mtime match.

    Only successful probes are stored: a failure may be transient (load, a permission fixed since,
    which does not change the mtime) and is probed again on the next run. Entries written by older
    versions that hold a failure are ignored.
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path else None
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.dirty = False
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if data.get("version") == PROBE_CACHE_VERSION:
                    self._entries = dict(data.get("entries", {}))
            except (ValueError, OSError, AttributeError):
                self._entries = {}  # an unreadable cache is only a slower run

    @staticmethod
    def _stamp(path: str) -> tuple[int, int]:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns

    def get(self, path: str, stamp: tuple[int, int]) -> MediaInfo | None:
        entry = self._entries.get(path)
        if entry is None or (entry.get("size"), entry.get("mtime_ns")) != stamp:
            return None
        try:
            info = MediaInfo(**entry["info"])
        except (TypeError, KeyError):
            return None
        return info if info.ok else None

    def put(self, info: MediaInfo, stamp: tuple[int, int]) -> None:
        """Remember a successful probe (failures are never stored)."""
        if not info.ok:
            return
        with self._lock:
            self._entries[info.path] = {"size": stamp[0], "mtime_ns": stamp[1], "info": asdict(info)}
            self.dirty = True

    @property
    def count(self) -> int:
        """Number of probes held."""
        return len(self._entries)

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        with self._lock:
            entries = {k: v for k, v in self._entries.items() if not (v.get("info") or {}).get("error")}
            self.dirty = False
        text = json.dumps({"version": PROBE_CACHE_VERSION, "entries": entries}, sort_keys=True)
        atomic_write_text(self.path, text)


def probe_cache_path(option: str | None, out_dir: Path) -> Path | None:
    """The ``--probe-cache`` value as a path: default ``OUT/probe_cache.json``, ``none`` disables it."""
    if option is None:
        return out_dir / DEFAULT_PROBE_CACHE_NAME
    return None if option.strip().lower() == "none" else Path(option)


def probe_media(
    paths: Iterable[str],
    cache: ProbeCache,
    *,
    workers: int = 4,
    progress: bool = True,
) -> dict[str, MediaInfo]:
    """Probe every distinct path (videos through ``tools.video_io``, images through PIL) in parallel.

    Missing files get an error without touching the cache; cached entries whose size and mtime still
    match are reused. Returns ``{path: MediaInfo}``.
    """
    results: dict[str, MediaInfo] = {}
    todo: list[tuple[str, tuple[int, int]]] = []
    for path in dict.fromkeys(paths):
        kind = media_kind(path)
        try:
            stamp = ProbeCache._stamp(path)
        except (OSError, ValueError):  # ValueError: a NUL byte in the path
            results[path] = MediaInfo(path, kind, error=f"{kind} not found: {path}")
            continue
        cached = cache.get(path, stamp)
        if cached is not None:
            results[path] = cached
        else:
            todo.append((path, stamp))
    if todo:
        from tqdm import tqdm

        def work(item: tuple[str, tuple[int, int]]) -> MediaInfo:
            path, stamp = item
            info = _probe_one(path, media_kind(path))
            cache.put(info, stamp)
            return info

        pool = ThreadPoolExecutor(max_workers=max(1, workers))
        try:
            for info in tqdm(
                pool.map(work, todo),
                total=len(todo),
                desc="probing media",
                unit="file",
                disable=not progress,
                file=sys.stderr,
            ):
                results[info.path] = info
        except BaseException:  # Ctrl-C: drop the queued probes; the caller saves the finished ones
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        try:
            from tools.video_io import close_all_readers

            close_all_readers()  # probing leaves decord readers open; nothing below needs them
        except ImportError:
            pass
    return results


# --------------------------------------------------------------------------- value checks


def parse_segments(value: Any, what: str = "timestamps") -> list[Segment]:
    """``[[s, e], ...]`` (or one ``[s, e]``, or its JSON text) as float pairs (:func:`tools.segments.parse_segments`);
    :class:`RowError` when malformed."""
    try:
        return parse_segments_of(value, what)
    except ValueError as err:
        raise RowError(str(err)) from None


def check_segments(segments: Sequence[Segment], duration: float, what: str = "timestamps") -> int:
    """Each segment must satisfy ``0 <= start < end <= duration`` (the end within
    :data:`DURATION_TOLERANCE_S`); returns how many ends overshoot the duration (to be clamped)."""
    overshoots = 0
    for start, end in segments:
        if not (math.isfinite(start) and math.isfinite(end)):
            raise RowError(f"{what} [{start}, {end}] is not a finite number")
        if end <= start:
            raise RowError(f"{what} [{start}, {end}]: end <= start")
        if start < 0:
            raise RowError(f"{what} [{start}, {end}]: start < 0")
        if end > duration + DURATION_TOLERANCE_S:
            raise RowError(
                f"{what} [{start}, {end}] outside the video (duration {duration:.2f} s, "
                f"tolerance {DURATION_TOLERANCE_S:g} s)"
            )
        if start >= duration:
            raise RowError(
                f"{what} [{start}, {end}] starts at or after the end of the video (duration {duration:.2f} s)"
            )
        overshoots += end > duration
    return overshoots


def clamp_segments(segments: Sequence[Segment], duration: float) -> list[list[float]]:
    """Segments with the end clamped to the duration (after :func:`check_segments`), as lists."""
    return [[round(start, 3), round(min(end, duration), 3)] for start, end in segments]


def answer_text(solution: Any) -> str:
    """The answer inside ``<answer>...</answer>`` if present, else the stripped text."""
    text = str(solution if solution is not None else "").strip()
    answer = first_answer(text)
    return text if answer is None else answer


def answer_letter(answer: str) -> str:
    """The first letter of the answer (the reward's rule), or :class:`RowError` when there is none."""
    letter = first_letter(answer)
    if letter is None:
        raise RowError(f"qa answer has no letter: {answer!r}")
    return letter


def option_letters_in_text(text: str) -> list[str]:
    """Option letters found as ``A. ...`` / ``(B) ...`` lines of a question text, in order."""
    return _OPTION_LINE_RE.findall(text)


def format_options(options: Any) -> tuple[list[str], list[str]]:
    """Plain-schema options (list or ``{letter: text}``) -> (letters, lines ``"A. text"``)."""
    if isinstance(options, dict):
        items = [(str(k).strip(), str(v).strip()) for k, v in options.items()]
    elif isinstance(options, (list, tuple)):
        if len(options) > len(LETTERS):
            raise RowError(f"{len(options)} options; at most {len(LETTERS)} (A-Z) can be lettered")
        items = []
        for i, option in enumerate(options):
            text = str(option).strip()
            match = re.match(r"^\(?([A-Z])[\.\):]\s*(.*)$", text, re.DOTALL)
            items.append((match.group(1), match.group(2)) if match else (LETTERS[i], text))
    else:
        raise RowError(f"options must be a list or a dict, got {type(options).__name__}")
    if not items:
        raise RowError("options is empty")
    if len(items) > len(LETTERS):
        raise RowError(f"{len(items)} options; at most {len(LETTERS)} (A-Z) can be lettered")
    return [k for k, _ in items], [f"{k}. {v}" for k, v in items]


def check_letter(letter: str, letters: Sequence[str]) -> None:
    if letters and letter not in letters:
        raise RowError(f"answer {letter!r} is not among the options {''.join(letters)}")


# --------------------------------------------------------------------------- conversion skeleton

Parsed = TypeVar("Parsed")


@dataclass
class Result:
    """What a converter produced: rows split into train/val, and every rejected input row."""

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    rejects: list[Reject]
    fixes: dict[str, int] = field(default_factory=dict)  # repairs made to accepted rows, by class


def parse_inputs(
    inputs: Sequence[str | os.PathLike], parse: Callable[[dict[str, Any], str, str | os.PathLike], Parsed]
) -> tuple[list[Parsed], list[Reject]]:
    """``parse(row, "file:line", path)`` over every jsonl row; every row-level problem becomes a reject.

    Bad bytes or JSON, :class:`RowError`, and any other error raised by ``parse`` on a row (a value of
    an unexpected type, say) are rejects with file, line and reason; the conversion goes on.
    """
    parsed: list[Parsed] = []
    rejects: list[Reject] = []
    for path in inputs:
        for lineno, row in read_jsonl(path):
            if isinstance(row, Reject):
                rejects.append(row)
                continue
            try:
                parsed.append(parse(row, f"{path}:{lineno}", path))
            except Exception as err:  # noqa: BLE001 - one bad row never stops a conversion
                rejects.append(Reject(str(path), lineno, row_error_text(err)))
    return parsed, rejects


def row_error_text(err: Exception) -> str:
    """The reject reason for an error raised while reading or building one row."""
    if isinstance(err, RowError):
        return str(err)
    return f"unreadable row ({type(err).__name__}: {err})"


def reject_at(source: str, err: Exception) -> Reject:
    """A reject for the input row at ``source`` ("file:line")."""
    file, _, line = source.rpartition(":")
    return Reject(file, int(line), row_error_text(err))


def split_result(
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    rejects: list[Reject],
    val_fraction: float,
    seed: int,
    fixes: Fixes | None = None,
) -> Result:
    """Deterministic train/val split of ``rows`` by ``keys``; rejects sorted by file and line."""
    val_idx = split_train_val(keys, val_fraction, seed)
    rejects.sort(key=lambda r: (r.file, r.line))
    return Result(
        [r for i, r in enumerate(rows) if i not in val_idx],
        [r for i, r in enumerate(rows) if i in val_idx],
        rejects,
        dict(fixes.counts) if fixes is not None else {},
    )


def add_common_arguments(parser: Any, what: str = "video") -> None:
    """Options every converter has: inputs, roots, output, split, probe cache, workers, strictness."""
    parser.add_argument(
        "--video-root",
        default=None,
        help=f"directory that relative {what} paths are resolved "
        "against (default: the current directory); paths are stored absolute",
    )
    parser.add_argument("--output-dir", required=True, help="directory for train.parquet, val.parquet, rejects.jsonl")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="share of rows that go to val.parquet, "
        "chosen deterministically by a hash of (seed, row key) (default 0: no val file)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default 0)")
    parser.add_argument(
        "--probe-cache",
        default=None,
        help=f"JSON cache of {what} probes keyed by path, size and "
        f"mtime (default OUT/{DEFAULT_PROBE_CACHE_NAME}; 'none' to disable)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help=f"parallel {what} probes (default: min(8, CPUs))",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 and write no parquet when any row is rejected (the rejects file is still written)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_input_files(inputs: Sequence[str]) -> str | None:
    """An error message for the first input file that does not exist, else None."""
    for path in inputs:
        if not Path(path).is_file():
            return f"error: input file not found: {path}"
    return None


def check_arguments(args: Any, cache_path: Path | None) -> str | None:
    """Every argument error, found before any probing: inputs, ``--val-fraction``, the output folder.

    The output folder must be creatable and writable, and no input may be one of the files this run
    writes there (``train.parquet``, ``val.parquet``, ``rejects.jsonl``, the probe cache). Creates the
    folder and removes temp files left there by killed runs. Returns an error message or None.
    """
    missing = check_input_files(args.inputs)
    if missing:
        return missing
    if not 0 <= args.val_fraction < 1:
        return f"error: --val-fraction must be in [0, 1), got {args.val_fraction}"
    if args.workers < 1:
        return f"error: --workers must be >= 1, got {args.workers}"
    out = Path(args.output_dir)
    written = {(out / name).resolve() for name in OUTPUT_NAMES}
    if cache_path is not None:
        written.add(cache_path.resolve())
    for path in args.inputs:
        if Path(path).resolve() in written:
            return (
                f"error: input {path} would be overwritten by this run's output in {out}; "
                f"choose another --output-dir (outputs: {', '.join(OUTPUT_NAMES)}, probe cache)"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_file = out / f".write-test.{os.getpid()}"
        probe_file.write_bytes(b"")
        probe_file.unlink()
    except OSError as err:
        return f"error: output folder {out} is not writable ({err.strerror or err})"
    remove_stale_temps(out)
    return None


def interrupted(name: str, cache: ProbeCache) -> int:
    """Ctrl-C during a conversion: keep the probes done so far in the cache, write nothing else; status 130."""
    cache.save()
    where = f" in {cache.path}" if cache.path is not None else ""
    print(f"\n[{name}] interrupted: {cache.count} probe(s) kept{where}; no output written", file=sys.stderr)
    return 130


def write_outputs(name: str, args: Any, out: Path, result: Result, schema: Any, started: float) -> int:
    """Rejects file, then (unless ``--strict`` saw rejects) train/val parquet and the summary; the exit status.

    The folder ends up holding this run's outputs only: a ``--strict`` failure removes the parquet
    files of an earlier run, and a run without ``--val-fraction`` removes an earlier ``val.parquet``.
    Rows that do not fit the parquet schema are rejected here rather than failing the write.
    """
    result = _rows_that_fit(result, schema)
    write_rejects(out / "rejects.jsonl", result.rejects)
    if args.strict and result.rejects:
        _remove(out / "train.parquet", out / "val.parquet")
        print_summary(name, {"train": 0, "val": 0}, result.rejects, result.fixes)
        print(
            f"error: --strict and {len(result.rejects)} row(s) rejected; see {out / 'rejects.jsonl'}", file=sys.stderr
        )
        return 1
    write_parquet(out / "train.parquet", result.train, schema)
    if args.val_fraction > 0:
        write_parquet(out / "val.parquet", result.val, schema)
    else:
        _remove(out / "val.parquet")
    elapsed = time.perf_counter() - started
    print_summary(name, {"train": len(result.train), "val": len(result.val)}, result.rejects, result.fixes)
    total = len(result.train) + len(result.val) + len(result.rejects)
    print(
        f"[{name}] {total} input rows in {elapsed:.2f} s ({total / max(elapsed, 1e-9):.0f} rows/s) -> {out}",
        file=sys.stderr,
    )
    return 0


def _remove(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _rows_that_fit(result: Result, schema: Any) -> Result:
    """``result`` with rows that pyarrow cannot convert to ``schema`` moved to the rejects (checked one by one
    only when the whole table fails)."""
    import pyarrow as pa

    def fits(rows: list[dict[str, Any]]) -> bool:
        try:
            pa.Table.from_pylist(rows, schema=schema)
            return True
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return False

    if fits(result.train + result.val):
        return result
    rejects = list(result.rejects)
    kept: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
    for side in ("train", "val"):
        for row in getattr(result, side):
            if fits([row]):
                kept[side].append(row)
            else:
                source = str((row.get("extra_info") or {}).get("source", "?:0"))
                rejects.append(reject_at(source, RowError("a value does not fit the output schema")))
    rejects.sort(key=lambda r: (r.file, r.line))
    return Result(kept["train"], kept["val"], rejects, result.fixes)


# --------------------------------------------------------------------------- split and output


def split_train_val(keys: Sequence[str], val_fraction: float, seed: int) -> set[int]:
    """Indices of the validation rows: the ``round(n * val_fraction)`` rows whose ``sha1(seed:key)`` is smallest.

    Deterministic for a given seed and set of keys; a row keeps its side when other rows are added.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = round(len(keys) * val_fraction)
    order = sorted(range(len(keys)), key=lambda i: hashlib.sha1(f"{seed}:{keys[i]}".encode()).hexdigest())
    return set(order[:n_val])


def write_parquet(path: str | os.PathLike, rows: list[dict[str, Any]], schema: Any) -> Path:
    """Write ``rows`` with an explicit pyarrow ``schema`` (one fixed struct key set per file), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_rejects(path: str | os.PathLike, rejects: Sequence[Reject]) -> Path:
    return atomic_write_jsonl(path, (asdict(r) for r in rejects))


def print_summary(
    name: str, written: dict[str, int], rejects: Sequence[Reject], fixes: dict[str, int] | None = None, limit: int = 20
) -> None:
    """Counts per output, per class of fix and per class of reject, then the first rejects, on stderr."""
    total = sum(written.values())
    parts = ", ".join(f"{k}: {v}" for k, v in written.items())
    print(f"[{name}] wrote {total} rows ({parts}); rejected {len(rejects)}", file=sys.stderr)
    for what, count in sorted((fixes or {}).items(), key=lambda kv: -kv[1]):
        print(f"  {count:6d} x fixed: {what}", file=sys.stderr)
    reasons: dict[str, int] = {}
    for r in rejects:
        head = reject_class(r.reason)
        reasons[head] = reasons.get(head, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {count:6d} x rejected: {reason}", file=sys.stderr)
    for r in rejects[:limit]:
        print(f"  {r}", file=sys.stderr)
    if len(rejects) > limit:
        print(f"  ... {len(rejects) - limit} more in the rejects file", file=sys.stderr)


def reject_class(reason: str) -> str:
    """The class of a reject reason: its head with paths, quoted values, lists and numbers blanked out."""
    head = reason.split(": ", 1)[0] if not reason.startswith(("video not", "image not")) else reason.split(":", 1)[0]
    head = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", head)
    head = re.sub(r"\[[^\]]*\]", "[…]", head)
    head = re.sub(r"\(.*\)", "(…)", head)
    return re.sub(r"-?\d+(\.\d+)?", "N", head).strip()
