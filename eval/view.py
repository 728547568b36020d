"""A self-contained HTML report of a prediction file: per sample the timeline, clip thumbnails and turns.

    python eval/view.py runs/eval/videotemp_g.jsonl -o report.html [--limit 50] [--thumbs 6]

Timeline per sample: ground-truth / evidence interval (green), each tool-call range (orange, one row
per call) and the predicted interval of a grounding answer (blue), placed in percent of the video
duration. Thumbnails are re-sampled from the source video by range (``tools.video_io.sample_clip``)
and embedded as base64 JPEG.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import sys
from pathlib import Path
from typing import Any, Sequence

from eval.predictions import CorruptPredictions, repair_and_read
from eval.scoring.extract import first_answer_span
from tools.cli import ArgumentParser
from tools.files import atomic_write_text

CSS = """
body{font-family:system-ui,sans-serif;margin:20px;background:#fafafa;color:#222}
.sample{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin-bottom:16px}
.timeline{position:relative;height:18px;background:#eee;margin:3px 0;border-radius:3px}
.bar{position:absolute;top:0;height:100%;border-radius:3px;opacity:.85}
.gt{background:#2e9d4a}.tool{background:#f08c00}.pred{background:#1c64d6}
.label{font-size:12px;color:#555}.thumbs img{height:60px;margin:2px;border:1px solid #ccc}
pre{white-space:pre-wrap;background:#f4f4f4;padding:6px;font-size:12px;max-height:240px;overflow:auto}
.ok{color:#2e9d4a;font-weight:bold}.bad{color:#c92a2a;font-weight:bold}
"""


def bar_style(span: Sequence[float], duration: float) -> str:
    """``left``/``width`` in percent of the duration, clamped to the timeline."""
    start = min(max(float(span[0]), 0.0), duration)
    end = min(max(float(span[1]), start), duration)
    return f"left:{100 * start / duration:.2f}%;width:{100 * (end - start) / duration:.2f}%"


def _timeline(kind: str, label: str, span: Sequence[float] | None, duration: float) -> str:
    bar = (
        f'<div class="bar {kind}" data-start="{span[0]:g}" data-end="{span[1]:g}" style="{bar_style(span, duration)}"></div>'
        if span
        else ""
    )
    text = f"{label}: {span[0]:.2f}-{span[1]:.2f} s" if span else f"{label}: none"
    return f'<div class="label">{html.escape(text)}</div><div class="timeline">{bar}</div>'


def thumbnails(video: str, span: Sequence[float], count: int) -> list[str]:
    """Base64 JPEG data URIs of up to ``count`` frames of ``[start, end]`` (empty if the video cannot be read)."""
    from PIL import Image

    from tools.video_io import sample_clip

    try:
        clip = sample_clip(video, float(span[0]), float(span[1]), min_pixels=64 * 28 * 28 // 16, max_pixels=160 * 120)
    except Exception as exc:  # a missing or broken video must not stop the report
        print(f"[view] {video} {span}: no thumbnails ({exc})", file=sys.stderr)
        return []
    frames = clip.frames
    step = max(1, len(frames) // max(count, 1))
    uris = []
    for frame in frames[::step][:count]:
        buf = io.BytesIO()
        Image.fromarray(frame.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=80)
        uris.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode())
    return uris


def _duration(record: dict[str, Any]) -> float:
    if record.get("duration"):
        return float(record["duration"])
    try:
        from tools.video_io import probe

        return float(probe(record["video"]).duration)
    except Exception:
        spans = [s for call in record.get("tool_calls") or [] for s in call] + (
            [record["span"]] if record.get("span") else []
        )
        return max([float(s[1]) for s in spans] + [1.0])


def render_sample(record: dict[str, Any], thumbs: int) -> str:
    duration = _duration(record)
    kind = record.get("kind", "mcq")
    pred = first_answer_span(record.get("response")) if kind != "mcq" else None
    parts = [
        f'<div class="sample" id="sample-{html.escape(str(record["id"]))}">',
        f"<h3>{html.escape(str(record['id']))} <small>({html.escape(str(record.get('benchmark')))}, {duration:.1f} s)</small></h3>",
        f"<pre>{html.escape(str(record.get('question', '')))}</pre>",
    ]
    if record.get("answer") is not None:
        got = (record.get("response") or "")[:1]
        cls = "ok" if got == str(record["answer"])[:1] else "bad"
        parts.append(
            f'<p>answer: <span class="{cls}">{html.escape(str(record.get("response")))}</span> '
            f"(ground truth {html.escape(str(record['answer']))})</p>"
        )
    parts.append(_timeline("gt", "ground truth" if kind == "grounding" else "evidence", record.get("span"), duration))
    for i, call in enumerate(record.get("tool_calls") or []):
        for span in call or [None]:
            parts.append(_timeline("tool", f"tool call {i + 1}", span, duration))
            if span and thumbs:
                imgs = "".join(f'<img src="{u}" alt="clip frame">' for u in thumbnails(record["video"], span, thumbs))
                parts.append(f'<div class="thumbs">{imgs}</div>')
    if kind != "mcq":
        parts.append(_timeline("pred", "prediction", pred, duration))
    for j, turn in enumerate(record.get("turns") or []):
        parts.append(f'<div class="label">assistant turn {j + 1}</div><pre>{html.escape(turn)}</pre>')
    parts.append("</div>")
    return "\n".join(parts)


def render_report(records: list[dict[str, Any]], title: str, thumbs: int = 6) -> str:
    """The whole HTML page."""
    body = "\n".join(render_sample(r, thumbs) for r in records)
    legend = (
        '<p><span class="label">legend:</span> <span style="color:#2e9d4a">ground truth / evidence</span> · '
        '<span style="color:#f08c00">tool-call range</span> · <span style="color:#1c64d6">predicted interval</span></p>'
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{len(records)} samples</p>{legend}{body}</body></html>"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("predictions", type=Path, help="prediction JSONL written by eval/run.py")
    p.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument(
        "--thumbs", type=int, default=6, help="thumbnails per tool-call range (0: none; default %(default)s)"
    )
    args = p.parse_args(argv)
    if not args.predictions.exists():
        print(f"error: {args.predictions} does not exist", file=sys.stderr)
        return 2
    try:
        records = repair_and_read(args.predictions, truncate=False)[: args.limit]
        bad = next((i for i, r in enumerate(records) if "id" not in r), None)
        if bad is not None:
            raise CorruptPredictions(
                f"{args.predictions}: record {bad + 1} has no 'id' (not a file written by eval/run.py?)"
            )
        from tqdm import tqdm

        page = render_report(
            list(tqdm(records, desc="samples", unit="sample", disable=len(records) < 20)),
            args.predictions.name,
            args.thumbs,
        )
        atomic_write_text(args.output, page)
    except (CorruptPredictions, OSError, TypeError, ValueError, KeyError) as exc:
        print(
            f"error: {args.predictions}: {exc}" if not str(exc).startswith(str(args.predictions)) else f"error: {exc}",
            file=sys.stderr,
        )
        return 2
    print(f"[view] {len(records)} samples -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
