"""Test accuracy of `compare --resize stretch` against `--resize letterbox` on the real sets.

Three real sets of `../shared/data` (their README): the playing-card crops of `cards_voc`
(6 classes, tall crops), the fruit crops of `fruit_voc` (3 classes, every shape) and the
Pokemon images of `pokemon_types` (the challenge's 9 primary types, square images). The VOC
sets are extracted into a temporary data folder first (`toonvision extract`, the library
call). Each set is then compared in both modes with the same plan: same configuration,
seeds, runs and epochs, so run r of both modes trains, validates and tests on the same crops
(the split depends on the data and the seed, not on the resize mode) and the runs are paired.

Printed: one Markdown row per set with the median test accuracy of each mode over the runs
(min-max in brackets), the mean paired difference letterbox - stretch and how many runs
letterbox won, tied and lost. This measures accuracy, not speed; a run is a few seconds at
the small default size.

Usage:
    python benchmarks/bench_resize.py [--runs 3] [--epochs 10] [--image-size 96 64]
        [--configs baseline] [--sets cards,fruit,pokemon] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

POKEMON_TYPES = ("Water", "Normal", "Grass", "Bug", "Fire", "Rock", "Poison", "Ground",
                 "Fighting")
SETS = ("cards", "fruit", "pokemon")
MODES = ("stretch", "letterbox")


def cpu_name() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def sources(data: Path, work: Path, names: list[str]) -> dict[str, object]:
    """The data source of each set; the VOC sets extracted into `work` first."""
    from toonvision.data_processing.extract import extract
    from toonvision.model_utils.comparison.data_source import DataSource

    found = {}
    for name in names:
        if name == "pokemon":
            folder = data / "pokemon_types"
            found[name] = DataSource(labels=folder / "pokemon.csv", images=folder / "images",
                                     id_column="Name", label_column="Type1",
                                     keep=POKEMON_TYPES, cache_dir=work / "cache")
            continue
        data_dir = work / name
        for _ in extract(data / f"{name}_voc", data_dir):
            pass
        found[name] = DataSource(data_dir, cache_dir=work / "cache")
    return found


def compare(source: object, mode: str, args: argparse.Namespace, out_dir: Path) -> dict:
    """`{config: {run: test accuracy}}` of one comparison in `mode`."""
    from toonvision.model_utils.comparison.run import run_comparison
    from toonvision.model_utils.comparison.settings import plan_comparison

    plan = plan_comparison({"task": "label", "configs": args.configs, "runs": args.runs,
                            "epochs": args.epochs, "image_size": list(args.image_size),
                            "resize": mode, "seed": args.seed, "workers": 1})
    result = run_comparison(plan, source, out_dir, tracking=False)
    accuracies: dict[str, dict[int, float]] = {}
    for record in result.comparison.records:
        accuracies.setdefault(record.config, {})[record.run] = record.test_metrics["accuracy"]
    return {"accuracies": accuracies, "images": result.comparison.settings.num_images,
            "classes": len(result.comparison.settings.class_names)}


def row(name: str, config: str, results: dict[str, dict]) -> str:
    """One Markdown row: medians (min-max) of both modes, the paired difference, wins."""
    stretch = results["stretch"]["accuracies"][config]
    boxed = results["letterbox"]["accuracies"][config]
    runs = sorted(set(stretch) & set(boxed))
    differences = [boxed[run] - stretch[run] for run in runs]

    def shown(values: dict[int, float]) -> str:
        picked = [values[run] for run in runs]
        return (f"{statistics.median(picked):.3f} ({min(picked):.3f}-"
                f"{max(picked):.3f})")

    wins = sum(value > 0 for value in differences)
    ties = sum(value == 0 for value in differences)
    return (f"| {name} | {results['stretch']['images']} | {results['stretch']['classes']} | "
            f"{config} | {shown(stretch)} | {shown(boxed)} | "
            f"{statistics.fmean(differences) * 100:+.1f} | {wins}/{ties}/"
            f"{len(differences) - wins - ties} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="paired runs per mode")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run")
    parser.add_argument("--image-size", type=int, nargs=2, default=(96, 64),
                        metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--configs", default="baseline",
                        help="comma-separated configurations (default: %(default)s)")
    parser.add_argument("--sets", default=",".join(SETS),
                        help="comma-separated sets among cards, fruit, pokemon")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared" / "data",
                        help="the shared data folder (default: ../shared/data)")
    args = parser.parse_args()
    args.configs = [name for name in args.configs.split(",") if name]
    names = [name for name in args.sets.split(",") if name]
    unknown = sorted(set(names) - set(SETS))
    if unknown or not args.data.is_dir():
        print(f"unknown sets {unknown} or no {args.data}", file=sys.stderr)
        return 2
    print(f"{cpu_name()}; {args.runs} paired runs x {args.epochs} epochs, "
          f"{args.image_size[0]}x{args.image_size[1]}, task label, seed {args.seed}, "
          "--workers 1")
    print("\n| set | images | classes | config | stretch: median (min-max) | letterbox: "
          "median (min-max) | letterbox - stretch (points, mean) | letterbox won/tied/lost |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench_resize-") as work:
        work = Path(work)
        for name, source in sources(args.data, work, names).items():
            results = {mode: compare(source, mode, args, work / f"{name}-{mode}")
                       for mode in MODES}
            for config in args.configs:
                print(row(name, config, results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
