"""The per-crop prediction store: its size and its append and read times for a comparison.

Simulates the article's protocol on a bigger set: 200 runs of a data set of 1,000 crops, each
run storing the predictions of its validation and test parts (40%: 400 crops), for 2 and 6
classes; then the worst case the issue names, 1,000 stored crops per run. The reference is
the plain way: one `np.savez_compressed` file per run (`run<NNNN>.npz`), read back with
`np.load`. Run: .venv/bin/python benchmarks/bench_predictions.py [--runs N] [--crops N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from toonvision.model_utils.comparison.predictions import PredictionStore


def simulate(folder: Path, runs: int, crops: int, stored: int, classes: int) -> dict:
    generator = np.random.default_rng(0)
    ids = generator.integers(0, 2**63, crops).astype(np.uint64)
    y = generator.integers(0, classes, crops)
    splits, probabilities = [], []
    for _ in range(runs):
        order = generator.permutation(crops)
        half = stored // 2
        splits.append({"validate": order[:half], "test": order[half:stored]})
        probabilities.append({name: generator.dirichlet(np.ones(classes) * 0.3, len(part))
                              for name, part in splits[-1].items()})
    store = PredictionStore(folder / "ours")
    start = time.perf_counter()
    for run in range(runs):
        store.append("baseline", run, ids, y, splits[run], probabilities[run])
    append_seconds = time.perf_counter() - start
    start = time.perf_counter()
    read = store.read("baseline")
    read_seconds = time.perf_counter() - start
    assert len(read) == runs * stored

    plain = folder / "plain"
    plain.mkdir()
    start = time.perf_counter()
    for run in range(runs):
        rows = np.concatenate([splits[run]["validate"], splits[run]["test"]])
        np.savez_compressed(plain / f"run{run:04d}.npz", ids=ids[rows], y=y[rows],
                            probabilities=np.concatenate([probabilities[run]["validate"],
                                                          probabilities[run]["test"]]))
    plain_append = time.perf_counter() - start
    start = time.perf_counter()
    for path in sorted(plain.glob("*.npz")):
        with np.load(path) as archive:
            _ = archive["probabilities"]
    plain_read = time.perf_counter() - start
    return {
        "size_mb": store.path("baseline").stat().st_size / 1e6,
        "append_ms": 1000 * append_seconds / runs, "read_s": read_seconds,
        "plain_size_mb": sum(path.stat().st_size for path in plain.glob("*.npz")) / 1e6,
        "plain_append_ms": 1000 * plain_append / runs, "plain_read_s": plain_read,
    }


def doctor_seconds(runs: int, crops: int) -> float:
    """Reading two configurations' predictions, averaging them per crop, and cleanlab's ranking:
    the part of `toonvision doctor` that grows with the number of runs."""
    from toonvision.model_utils.dataset_doctor import label_quality, out_of_sample

    generator = np.random.default_rng(1)
    ids = generator.integers(0, 2**63, crops).astype(np.uint64)
    y = generator.integers(0, 2, crops)
    with tempfile.TemporaryDirectory() as folder:
        store = PredictionStore(folder)
        for config in ("baseline", "optimized"):
            for run in range(runs):
                order = generator.permutation(crops)
                split = {"validate": order[:crops // 5], "test": order[crops // 5:2 * crops // 5]}
                probabilities = {}
                for name, part in split.items():
                    right = np.clip(generator.normal(0.85, 0.2, len(part)), 0, 1)
                    columns = np.stack([1 - right, right], axis=1)
                    probabilities[name] = np.where((y[part] == 1)[:, None], columns,
                                                   columns[:, ::-1])
                store.append(config, run, ids, y, split, probabilities)
        start = time.perf_counter()
        oos = out_of_sample(store.read_all(), ids, y, 2)
        label_quality(y, oos.probabilities)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--crops", type=int, default=1000)
    args = parser.parse_args()
    print(f"{args.runs} runs, one configuration (a comparison of two holds twice this)")
    print("| crops | stored per run | classes | size MB | append ms/run | read s | "
          "plain: size MB | append ms/run | read s |")
    print("|---|---|---|---|---|---|---|---|---|")
    cases = [(args.crops, int(0.4 * args.crops), 2), (args.crops, int(0.4 * args.crops), 6),
             (args.crops, args.crops, 2)]
    for crops, stored, classes in cases:
        with tempfile.TemporaryDirectory() as folder:
            result = simulate(Path(folder), args.runs, crops, stored, classes)
        print(f"| {crops} | {stored} | {classes} | {result['size_mb']:.2f} | "
              f"{result['append_ms']:.1f} | {result['read_s']:.2f} | "
              f"{result['plain_size_mb']:.2f} | {result['plain_append_ms']:.1f} | "
              f"{result['plain_read_s']:.2f} |")
    print(f"doctor: reading, averaging and ranking {args.runs} runs x 2 configurations of "
          f"{args.crops} crops: {doctor_seconds(args.runs, args.crops):.1f} s")


if __name__ == "__main__":
    main()
