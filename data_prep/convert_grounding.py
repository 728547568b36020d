"""Official annotation files of four grounding benchmarks -> the eval's ``annotations.jsonl``.

    python data_prep/convert_grounding.py charades_sta --annotations charades_sta_test.txt \\
        --durations Charades_v1_test.csv --videos data/charades_sta/videos --out-dir data/charades_sta
    python data_prep/convert_grounding.py activitynet_mr --annotations val_2.json \\
        --videos data/activitynet_mr/videos --out-dir data/activitynet_mr
    python data_prep/convert_grounding.py nextgqa --questions test.csv --spans gsub_test.json \\
        --video-map map_vid_vidorID.json --videos data/nextgqa/videos --out-dir data/nextgqa
    python data_prep/convert_grounding.py rextime --annotations rextime_val.json \\
        --videos data/rextime/videos --out-dir data/rextime

Output (``OUT/annotations.jsonl``, one JSON object per question, video paths relative to OUT when the
videos are below it, else absolute)::

    grounding (charades_sta, activitynet_mr):
      {"id", "video", "duration", "query", "span": [s, e]}
    grounded QA (nextgqa, rextime):
      {"id", "video", "duration", "question", "options": [...], "answer": "B", "span": [s, e] or [[s, e], ...]}

``span`` is a list of spans where a question has several (NExT-GQA: 591 of 5,553); the official metric
scores a prediction by its best IoU over them. Spans are clamped to the video's duration (counted);
questions that cannot be converted are skipped and counted by reason (no video, no span, answer not
among the options, ...). The file is written atomically.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tools.cli import ArgumentParser
from tools.files import JsonlLineError, atomic_write_jsonl, read_json, read_jsonl
from tools.segments import parse_segment

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")
OUTPUT = "annotations.jsonl"
LETTERS = "ABCDEFGHIJ"


class ConvertError(ValueError):
    """An input file is missing or not in the official format (names the file, line and field)."""


class Skip(Exception):
    """One question cannot be converted; the message is the reason (counted in the summary)."""


@dataclass
class Summary:
    converted: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    clamped: int = 0
    multi_span: int = 0

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, where)


class VideoIndex:
    """Finds a benchmark's video files under a directory by name (any folder depth, any video suffix)."""

    def __init__(self, root: Path | None):
        self.root = root
        self._by_stem: dict[str, Path] | None = None

    def find(self, *names: str) -> Path | None:
        """The first existing file: ``root/name`` as given, then by file stem anywhere below root."""
        if self.root is None:
            return None
        for name in names:
            direct = self.root / name
            if direct.suffix.lower() in VIDEO_SUFFIXES and direct.is_file():
                return direct
        if self._by_stem is None:
            self._by_stem = {}
            for path in sorted(self.root.rglob("*")):
                if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
                    self._by_stem.setdefault(path.stem, path)
        for name in names:
            stem = Path(name).stem if Path(name).suffix.lower() in VIDEO_SUFFIXES else Path(name).name
            if stem in self._by_stem:
                return self._by_stem[stem]
        return None


def _span(start: Any, end: Any, duration: float | None, summary: Summary, where: str) -> list[float]:
    """A checked ``[start, end]`` in seconds, clamped to ``[0, duration]``; :class:`Skip` when empty or unreadable."""
    try:
        s, e = parse_segment((start, end), where)  # booleans are not times
    except ValueError:
        raise Skip("span is not a pair of numbers") from None
    if s > e:
        raise Skip("span ends before it starts")
    cs, ce = max(0.0, s), e
    if duration is not None and duration > 0:
        ce = min(e, duration)
    if (cs, ce) != (s, e):
        summary.clamped += 1
    if ce <= cs:
        raise Skip("span empty after clamping to the video")
    return [round(cs, 3), round(ce, 3)]


def _spans_field(spans: list[list[float]], summary: Summary) -> list[float] | list[list[float]]:
    if len(spans) > 1:
        summary.multi_span += 1
        return spans
    return spans[0]


def _video_field(path: Path, out_dir: Path) -> str:
    try:
        return path.resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def _video(index: VideoIndex, names: Iterable[str], out_dir: Path, allow_missing: bool, fallback: str) -> str:
    names = list(names)
    found = index.find(*names)
    if found is not None:
        return _video_field(found, out_dir)
    if not allow_missing:
        raise Skip("video not found")
    return fallback if os.path.isabs(fallback) or index.root is None else _video_field(index.root / fallback, out_dir)


def _need(path: Path | None, what: str) -> Path:
    if path is None or not path.is_file():
        raise ConvertError(f"{what}: file not found: {path}")
    return path


def _load_json(path: Path) -> Any:
    try:
        return read_json(path)
    except ValueError as exc:
        raise ConvertError(str(exc)) from None


def _load_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) from a JSON list, a JSON object of rows, or a jsonl file."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, list):
        return [(f"{path} item {i}", r) for i, r in enumerate(data)]
    if isinstance(data, dict):
        return [(f"{path} key {k}", r) for k, r in data.items()]
    try:
        return [(f"{path}:{lineno}", row) for lineno, row in read_jsonl(path)]
    except JsonlLineError as exc:
        raise ConvertError(str(exc)) from None


# --------------------------------------------------------------------------- the four benchmarks


def convert_charades_sta(
    annotations: Path, durations: Path | None, videos: VideoIndex, out_dir: Path, allow_missing: bool = False
) -> Summary:
    """TALL's ``charades_sta_test.txt`` (``VID start end##sentence``) + ``Charades_v1_test.csv`` (``id``, ``length``)."""
    lengths: dict[str, float] = {}
    if durations is not None:
        with open(_need(durations, "Charades durations csv"), newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"id", "length"} <= set(reader.fieldnames):
                raise ConvertError(f"{durations}: expected the columns 'id' and 'length' (Charades_v1_test.csv)")
            for row in reader:
                try:
                    lengths[row["id"]] = float(row["length"])
                except (TypeError, ValueError):
                    continue
    summary = Summary()
    per_video: Counter = Counter()
    for lineno, line in enumerate(
        _need(annotations, "Charades-STA annotations").read_text(encoding="utf-8").splitlines(), 1
    ):
        if not line.strip():
            continue
        where = f"{annotations}:{lineno}"
        try:
            head, sep, sentence = line.partition("##")
            parts = head.split()
            if not sep or len(parts) != 3 or not sentence.strip():
                raise Skip("line is not 'VID start end##sentence'")
            vid, start, end = parts
            duration = lengths.get(vid)
            if durations is not None and duration is None:
                raise Skip("video not in the durations csv")
            span = _span(start, end, duration, summary, where)
            video = _video(videos, [f"{vid}.mp4", vid], out_dir, allow_missing, f"{vid}.mp4")
        except Skip as skip:
            summary.skip(str(skip), where)
            continue
        summary.converted.append(
            {
                "id": f"{vid}_{per_video[vid]}",
                "video": video,
                "duration": duration,
                "query": sentence.strip(),
                "span": span,
            }
        )
        per_video[vid] += 1
    return summary


def convert_activitynet_mr(
    annotations: Path, videos: VideoIndex, out_dir: Path, allow_missing: bool = False
) -> Summary:
    """ActivityNet Captions ``val_2.json`` / ``test.json``: ``{v_id: {duration, timestamps, sentences}}``, a query per sentence."""
    data = _load_json(_need(annotations, "ActivityNet Captions annotations"))
    if not isinstance(data, dict):
        raise ConvertError(f"{annotations}: expected an object {{video id: {{duration, timestamps, sentences}}}}")
    summary = Summary()
    for vid, item in data.items():
        where = f"{annotations} key {vid}"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("timestamps"), list)
            or not isinstance(item.get("sentences"), list)
        ):
            summary.skip("entry without timestamps/sentences lists", where)
            continue
        if len(item["timestamps"]) != len(item["sentences"]):
            summary.skip("timestamps and sentences differ in number", where)
            continue
        duration = float(item["duration"]) if item.get("duration") is not None else None
        bare = vid[2:] if vid.startswith("v_") else vid
        try:
            video = _video(videos, [f"{vid}.mp4", vid, f"v_{bare}", bare], out_dir, allow_missing, f"{vid}.mp4")
        except Skip as skip:
            for _ in item["sentences"]:
                summary.skip(str(skip), where)
            continue
        for i, (ts, sentence) in enumerate(zip(item["timestamps"], item["sentences"])):
            try:
                if not isinstance(ts, list) or len(ts) != 2:
                    raise Skip("span is not a pair of numbers")
                if not str(sentence).strip():
                    raise Skip("empty sentence")
                span = _span(ts[0], ts[1], duration, summary, f"{where}[{i}]")
            except Skip as skip:
                summary.skip(str(skip), f"{where}[{i}]")
                continue
            summary.converted.append(
                {"id": f"{vid}_{i}", "video": video, "duration": duration, "query": str(sentence).strip(), "span": span}
            )
    return summary


def convert_nextgqa(
    questions: Path, spans: Path, video_map: Path | None, videos: VideoIndex, out_dir: Path, allow_missing: bool = False
) -> Summary:
    """NExT-GQA ``test.csv`` + ``gsub_test.json`` (+ ``map_vid_vidorID.json`` for NExT-QA video paths)."""
    gsub = _load_json(_need(spans, "NExT-GQA gsub json"))
    vmap = {str(k): str(v) for k, v in _load_json(_need(video_map, "NExT-GQA video map")).items()} if video_map else {}
    summary = Summary()
    with open(_need(questions, "NExT-GQA questions csv"), newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        needed = {"video_id", "question", "answer", "qid", "a0", "a1", "a2", "a3", "a4"}
        if not reader.fieldnames or not needed <= set(reader.fieldnames):
            raise ConvertError(f"{questions}: expected the columns {', '.join(sorted(needed))} (NExT-GQA test.csv)")
        for lineno, row in enumerate(reader, 2):
            where = f"{questions}:{lineno}"
            vid, qid = str(row["video_id"]).strip(), str(row["qid"]).strip()
            try:
                options = [str(row[f"a{i}"]).strip() for i in range(5)]
                answer = str(row["answer"]).strip()
                if answer not in options:
                    raise Skip("answer not among the options")
                entry = gsub.get(vid)
                if not isinstance(entry, dict):
                    raise Skip("video not in the gsub json")
                duration = float(entry["duration"]) if entry.get("duration") is not None else None
                raw = (entry.get("location") or {}).get(qid)
                if not raw:
                    raise Skip("no evidence span")
                pairs = [raw] if raw and not isinstance(raw[0], (list, tuple)) else raw
                spans_ = [
                    _span(p[0], p[1], duration, summary, where)
                    for p in pairs
                    if isinstance(p, (list, tuple)) and len(p) == 2
                ]
                if not spans_:
                    raise Skip("no evidence span")
                rel = vmap.get(vid)
                names = [f"{rel}.mp4", rel] if rel else []
                video = _video(videos, [*names, f"{vid}.mp4", vid], out_dir, allow_missing, f"{rel or vid}.mp4")
            except Skip as skip:
                summary.skip(str(skip), where)
                continue
            summary.converted.append(
                {
                    "id": f"{vid}_{qid}",
                    "video": video,
                    "duration": duration,
                    "question": str(row["question"]).strip(),
                    "options": options,
                    "answer": LETTERS[options.index(answer)],
                    "span": _spans_field(spans_, summary),
                    "type": row.get("type"),
                }
            )
    return summary


def _letter(value: Any, options: list[str]) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(options):
            return LETTERS[value]
        raise Skip("answer index out of range")
    text = str(value).strip()
    if text in options:
        return LETTERS[options.index(text)]
    letter = text.strip("()").rstrip(".")[:1].upper() if len(text.strip("()").rstrip(".")) == 1 else ""
    if letter and letter in LETTERS[: len(options)]:
        return letter
    raise Skip("answer not among the options")


def convert_rextime(
    annotations: Path, windows: Path | None, videos: VideoIndex, out_dir: Path, allow_missing: bool = False
) -> Summary:
    """ReXTime json/jsonl with ``question, options, ans, span, source, vid`` (+ optional GitHub
    ``rextime_val.jsonl`` with ``qid, query, duration, vid, relevant_windows`` for durations / windows)."""
    extra: dict[Any, dict] = {}
    if windows is not None:
        for _, row in _load_rows(_need(windows, "ReXTime windows jsonl")):
            if isinstance(row, dict):
                if row.get("qid") is not None:
                    extra[("qid", str(row["qid"]))] = row
                extra[("vq", str(row.get("vid")), str(row.get("query", row.get("question", ""))).strip())] = row
    summary = Summary()
    for n, (where, row) in enumerate(_load_rows(_need(annotations, "ReXTime annotations"))):
        try:
            if not isinstance(row, dict):
                raise Skip("not a JSON object")
            options = row.get("options")
            if not isinstance(options, list) or len(options) < 2:
                raise Skip("no options (use the json release, not the options-free GitHub jsonl)")
            options = [str(o).strip() for o in options]
            vid = str(row.get("vid") or "")
            question = str(row.get("question") or row.get("query") or "").strip()
            if not vid or not question:
                raise Skip("missing vid or question")
            more = extra.get(("qid", str(row.get("qid")))) or extra.get(("vq", vid, question)) or {}
            duration = row.get("duration", more.get("duration"))
            duration = float(duration) if duration is not None else None
            raw = row.get("span") or row.get("relevant_windows") or more.get("relevant_windows")
            if not raw:
                raise Skip("no evidence span")
            pairs = [raw] if not isinstance(raw[0], (list, tuple)) else raw
            spans_ = [_span(p[0], p[1], duration, summary, where) for p in pairs]
            answer = _letter(row.get("ans", row.get("answer")), options)
            bare = vid[2:] if vid.startswith("v_") else vid
            names = [f"{vid}.mp4", vid] + (
                [f"v_{bare}", bare] if row.get("source", "anet") == "anet" or vid.startswith("v_") else []
            )
            video = _video(videos, names, out_dir, allow_missing, f"{vid}.mp4")
        except Skip as skip:
            summary.skip(str(skip), where)
            continue
        sample_id = str(row.get("qid", row.get("id", n)))
        summary.converted.append(
            {
                "id": sample_id,
                "video": video,
                "duration": duration,
                "question": question,
                "options": options,
                "answer": answer,
                "span": _spans_field(spans_, summary),
                "source": row.get("source"),
            }
        )
    return summary


# --------------------------------------------------------------------------- command line


def write_annotations(out_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """``out_dir/annotations.jsonl``, written atomically."""
    return atomic_write_jsonl(out_dir / OUTPUT, rows)


def print_summary(name: str, summary: Summary, target: Path | None, out=None) -> None:
    out = out or sys.stdout
    total = len(summary.converted) + sum(summary.skipped.values())
    extra = []
    if summary.multi_span:
        extra.append(f"{summary.multi_span} with several evidence spans")
    if summary.clamped:
        extra.append(f"{summary.clamped} spans clamped to the video")
    print(
        f"[convert {name}] {total} questions: {len(summary.converted)} converted"
        + (f" ({'; '.join(extra)})" if extra else "")
        + f", {sum(summary.skipped.values())} skipped"
        + (f" -> {target}" if target else ""),
        file=out,
    )
    for reason, count in summary.skipped.most_common():
        print(f"  skipped {count}: {reason} (e.g. {summary.examples[reason]})", file=out)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description="Convert the official annotation files of Charades-STA, ActivityNet-MR (Captions), NExT-GQA and "
        "ReXTime into OUT/annotations.jsonl, the layout eval/run.py reads for these benchmarks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[1],
    )
    sub = parser.add_subparsers(dest="benchmark", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--videos",
            type=Path,
            default=None,
            help="directory holding the videos (searched by file name at any depth; default: OUT/videos)",
        )
        p.add_argument(
            "--out-dir", type=Path, required=True, help="benchmark directory; OUT/annotations.jsonl is written"
        )
        p.add_argument(
            "--allow-missing-videos",
            action="store_true",
            help="keep questions whose video is not found (default: skip them, counted as 'video not found')",
        )

    p = sub.add_parser("charades_sta", help="Charades-STA test (TALL annotations + Charades durations)")
    p.add_argument("--annotations", type=Path, required=True, help="charades_sta_test.txt ('VID start end##sentence')")
    p.add_argument("--durations", type=Path, default=None, help="Charades_v1_test.csv (columns id, length)")
    common(p)
    p = sub.add_parser("activitynet_mr", help="ActivityNet Captions val_2.json / test.json, one query per sentence")
    p.add_argument("--annotations", type=Path, required=True, help="val_2.json or test.json")
    common(p)
    p = sub.add_parser("nextgqa", help="NExT-GQA test (questions csv + grounding json + video map)")
    p.add_argument("--questions", type=Path, required=True, help="test.csv")
    p.add_argument("--spans", type=Path, required=True, help="gsub_test.json")
    p.add_argument("--video-map", type=Path, default=None, help="map_vid_vidorID.json (video id -> NExT-QA path)")
    common(p)
    p = sub.add_parser("rextime", help="ReXTime val (json release with options)")
    p.add_argument("--annotations", type=Path, required=True, help="json/jsonl with question, options, ans, span, vid")
    p.add_argument("--windows", type=Path, default=None, help="optional rextime_val.jsonl (duration, relevant_windows)")
    common(p)
    return parser


RUNNERS: dict[str, Callable[[argparse.Namespace, VideoIndex], Summary]] = {
    "charades_sta": lambda a, v: convert_charades_sta(a.annotations, a.durations, v, a.out_dir, a.allow_missing_videos),
    "activitynet_mr": lambda a, v: convert_activitynet_mr(a.annotations, v, a.out_dir, a.allow_missing_videos),
    "nextgqa": lambda a, v: convert_nextgqa(a.questions, a.spans, a.video_map, v, a.out_dir, a.allow_missing_videos),
    "rextime": lambda a, v: convert_rextime(a.annotations, a.windows, v, a.out_dir, a.allow_missing_videos),
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    videos_dir = args.videos if args.videos is not None else args.out_dir / "videos"
    if not videos_dir.is_dir() and not args.allow_missing_videos:
        print(
            f"error: video directory not found: {videos_dir} (give --videos DIR, or --allow-missing-videos)",
            file=sys.stderr,
        )
        return 2
    try:
        summary = RUNNERS[args.benchmark](args, VideoIndex(videos_dir if videos_dir.is_dir() else None))
    except ConvertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not summary.converted:
        print_summary(args.benchmark, summary, None)
        print("error: no question converted; nothing written", file=sys.stderr)
        return 1
    target = write_annotations(args.out_dir, summary.converted)
    print_summary(args.benchmark, summary, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
