"""Summarise py-spy collapsed stacks (`--format raw`): top functions by self and by inclusive samples.

Usage: python -m bench.profile_summary FILE [--top 25] [--filter controlplane]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarise(path: Path, top: int, only: str) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples"]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        lines.append(f"-- top {top} by {title} --")
        shown = 0
        for frame, n in counter.most_common():
            if only and only not in frame:
                continue
            lines.append(f"{100 * n / max(1, total):5.1f}%  {frame}")
            shown += 1
            if shown >= top:
                break
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--filter", default="")
    args = parser.parse_args()
    print(summarise(args.file, args.top, args.filter))


if __name__ == "__main__":
    main()
