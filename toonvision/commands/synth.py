"""Write synthetic ToonTown-like screenshots with labelImg XML, to try the tool without data.

Draws 800x600 cartoon street scenes (sky, buildings, trees, cobbled pavement) with 2-8 Cog
and Toon figures each, every figure with a nametag above it, and writes each screenshot as
synth_<seed>_<index>.png with a Pascal VOC .xml beside it, laid out as labelImg writes it and
labelled with the real taxonomy (cog_<suit>_<name>, toon_<animal>). The screenshots are as
messy as real ones: figures far (small, blurred) and near, partly hidden by other figures
and nametags, cut by the screen's edge, in day, dusk or shade light, seen from front, side
or back; some Toons dress in Cog colours. About 72% of the figures are Cogs, and some Cog
names are rare.

The data is SYNTHETIC: use it to try the pipeline (extract, split, stats, training), never
to draw conclusions about ToonTown. The same --seed and --screenshots give the same files.

Existing files are never replaced. A screenshot whose files are already there with the same
content is counted as present (re-run an interrupted command to finish it); one whose name is
taken by a different file is skipped and reported, and the exit status is then 1.

Example:
  toonvision synth --out data/raw --screenshots 60 --seed 0
  toonvision extract data/raw
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from toonvision import defaults
from toonvision.progress import progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR",
        help="folder to write the screenshots and XML files into (created if missing; "
             "existing files are never overwritten)",
    )
    parser.add_argument(
        "--screenshots", type=int, default=defaults.SYNTH_SCREENSHOTS, metavar="N",
        help="how many screenshots to write, each with 2-8 labelled figures "
             "(default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=0,
        help="random seed; the same seed and count give byte-identical images "
             "(default: %(default)s)",
    )
    parser.add_argument(
        "--cog-share", type=float, default=defaults.SYNTH_COG_SHARE, metavar="SHARE",
        help="expected share of Cogs among the figures, 0 to 1; the rest are Toons "
             "(default: %(default)s; 'make demo' uses 0.5, see docs/synth.md)",
    )


def run(args: argparse.Namespace) -> int:
    from toonvision.demo.synth import generate

    label_counts: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    skipped: list[str] = []
    results = generate(args.out, screenshots=args.screenshots, seed=args.seed,
                       cog_share=args.cog_share)
    for result in progress_bar(results, total=args.screenshots, desc="writing", unit="screenshot"):
        statuses[result.status] += 1
        if result.status == "skipped":
            skipped.append(result.reason)
        else:
            label_counts.update(obj.label for obj in result.objects)

    cogs = sum(count for label, count in label_counts.items() if label.startswith("cog_"))
    toons = sum(label_counts.values()) - cogs
    print(f"screenshots in {args.out}: {statuses['written']} written, "
          f"{statuses['present']} already present, {statuses['skipped']} skipped")
    print(f"objects: {cogs + toons} ({cogs} cogs, {toons} toons) in {len(label_counts)} labels")
    for label in sorted(label_counts):
        print(f"  {label:<28}{label_counts[label]:>5}")
    for reason in skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    return 1 if skipped else 0
