"""Time of one reward call on degenerate responses at two sizes: linear parsing gives a ratio near 2.

    python benchmarks/parsing_time.py [--size 24832]

For each repeated unit (``<tool_call>`` is one token, so 24,832 of them is a maximal-length response of
the GRPO recipe) it prints the seconds of ``reward_fns.videotemp.compute_score`` at ``size`` and
``2 * size`` repetitions and their ratio (linear: ~2; quadratic: ~4), plus one call on 1 MB.
"""

from __future__ import annotations

import argparse
import time

from reward_fns.videotemp import compute_score
from tools.cli import ArgumentParser

UNITS = ("<tool_call>", "<think>", "</think>", "<answer>", "\nuser\n", "<tool_call></think>")
TRUTH = {"data_type": "qa", "answer": "C", "timestamps": [[1.0, 2.0]]}


def seconds(text: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        compute_score("videotemp", text, TRUTH)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=24_832, help="repetitions of the unit (default: 24,832)")
    args = parser.parse_args()
    print(f"{'unit':<22} {'n':>8} {'t(n) ms':>9} {'t(2n) ms':>9} {'ratio':>6} {'1 MB ms':>8}")
    for unit in UNITS:
        small, large = seconds(unit * args.size), seconds(unit * (2 * args.size))
        mb = seconds(unit * (1_000_000 // len(unit)), repeat=1)
        print(
            f"{unit!r:<22} {args.size:>8} {small * 1e3:>9.2f} {large * 1e3:>9.2f} {large / small:>6.2f} {mb * 1e3:>8.1f}"
        )


if __name__ == "__main__":
    main()
