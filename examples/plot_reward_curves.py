"""Plot the per-step reward components of a GRPO run from its TensorBoard event files.

    python examples/plot_reward_curves.py TENSORBOARD_DIR -o reward_curves.png
    python -m verl.trainer.main_ppo ... | python examples/plot_reward_curves.py --follow   # one line per step

Reads the curves ``reward_fns.training_metrics`` adds to every training step
(``training/reward/{score,acc,iou,format,called_tool,n_clips}/mean``), prints them as a table and writes
a PNG with one panel per component. Works on any run of the recipe (``TENSORBOARD_DIR`` of ``main_ppo``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tools.cli import ArgumentParser

COMPONENTS = ("score", "acc", "iou", "format", "called_tool", "n_clips")


def read_curves(tb_dir: Path, components=COMPONENTS) -> dict[str, list[tuple[int, float]]]:
    """``{component: [(step, value), ...]}`` from every event file under ``tb_dir`` (later files win per step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(tb_dir.rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"{tb_dir}: no TensorBoard event files (events.out.tfevents.*)")
    curves: dict[str, dict[int, float]] = {c: {} for c in components}
    for path in files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        tags = set(events.Tags().get("scalars", ()))
        for component in components:
            tag = f"training/reward/{component}/mean"
            if tag in tags:
                curves[component].update({e.step: e.value for e in events.Scalars(tag)})
    return {c: sorted(points.items()) for c, points in curves.items() if points}


_NUMBER = re.compile(r"\s*(?:np\.\w+\()?(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\)?\s*")  # 0.5, 1e-05, np.int32(6)


def parse_step_line(line: str) -> tuple[int, dict[str, float]] | None:
    """``(step, {metric: value})`` of one verl console ``step:N - key:value - ...`` line (numeric values only),
    or None for any other line."""
    match = re.search(r"\bstep:(\d+) - (.*)", line)
    if not match:
        return None
    values = {}
    for item in match.group(2).split(" - "):
        key, _, value = item.partition(":")
        number = _NUMBER.fullmatch(value)
        if number:
            values[key.strip()] = float(number.group(1))
    return int(match.group(1)), values


def console_line(line: str, components=COMPONENTS) -> str | None:
    """The reward components of one verl console step line, as one short line, or None for other lines."""
    parsed = parse_step_line(line)
    if parsed is None:
        return None
    step, values = parsed
    parts = [
        f"{c} {values[f'training/reward/{c}/mean']:.3f}" for c in components if f"training/reward/{c}/mean" in values
    ]
    timing = f"  ({values['timing_s/step']:.1f} s)" if "timing_s/step" in values else ""
    return f"step {step}: " + "  ".join(parts) + timing


def follow(stream=sys.stdin, out=sys.stdout) -> None:
    """Echo a trainer's console as one short line per step (its reward components) plus error lines."""
    for line in stream:
        summary = console_line(line)
        if summary is not None:
            print(summary, file=out, flush=True)
        elif ("Traceback" in line or "Error" in line) and "Warning" not in line and "warnings.warn" not in line:
            print(line.rstrip(), file=out, flush=True)


def format_table(curves: dict[str, list[tuple[int, float]]]) -> str:
    steps = sorted({step for points in curves.values() for step, _ in points})
    names = list(curves)
    lines = ["| step | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for step in steps:
        row = [dict(curves[n]).get(step) for n in names]
        lines.append(f"| {step} | " + " | ".join("" if v is None else f"{v:.3f}" for v in row) + " |")
    return "\n".join(lines)


def plot(curves: dict[str, list[tuple[int, float]]], out: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 3), squeeze=False)
    for ax, (name, points) in zip(axes[0], curves.items()):
        steps, values = zip(*points)
        ax.plot(steps, values, marker="o")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_xticks(steps)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "tb_dir", type=Path, nargs="?", help="TensorBoard directory of the run (TENSORBOARD_DIR of main_ppo)"
    )
    parser.add_argument(
        "--follow", action="store_true", help="read a trainer console on stdin and print one line per step instead"
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("reward_curves.png"), help="PNG to write")
    parser.add_argument("--title", default="", help="figure title")
    args = parser.parse_args(argv)
    if args.follow:
        follow()
        return 0
    if args.tb_dir is None:
        parser.error("tb_dir is required (or --follow)")
    try:
        curves = read_curves(args.tb_dir)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not curves:
        print(
            f"error: {args.tb_dir}: no training/reward/*/mean curves (is the recipe's sampler configured?)",
            file=sys.stderr,
        )
        return 2
    print(format_table(curves))
    plot(curves, args.output, args.title)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
