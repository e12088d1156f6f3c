"""The MLP ablation as a whole study: its folder, its runs tracked, and its two tables written.

`run_ablation` (in `ablation`) trains the variants; `AblationStudy` is what `toonvision
ablate` does around it, so that a notebook gets the same folder check, tracking and files:

- `ablation.csv`: one row per variant (`ablation.ablation_table`);
- `ablation_runs.csv`: one row per variant and seed (every `AblationRun` field but the
  history);
- `tracking.jsonl` (and an MLflow store when MLflow is installed), one record per run, when
  tracking is on.

Example:
    >>> study = AblationStudy(Path("runs/ablation"), task_data, seeds=[0, 1, 2])  # doctest: +SKIP
    >>> for run in study.run():                                                 # doctest: +SKIP
    ...     print(run.variant, run.seed, run.validation_accuracy)
    >>> table, files = study.finish()                                           # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toonvision import ExistingFileError, ToonvisionError, defaults
from toonvision.fileio import write_text_atomic
from toonvision.model_utils.comparison.run import make_tracker
from toonvision.model_utils.studies.ablation import (
    BASE_CONFIG,
    VARIANTS,
    AblationRun,
    ablation_table,
    run_ablation,
)

if TYPE_CHECKING:
    import pandas as pd

    from toonvision.data_processing.dataset import TaskData
    from toonvision.model_utils.engine.protocols import Engine, Tracker
    from toonvision.model_utils.studies.ablation import Variant
    from toonvision.model_utils.training.configs import TrainingConfig

ABLATION_FILE = "ablation.csv"
RUNS_FILE = "ablation_runs.csv"


class AblationStudy:
    """The variants of an MLP on seeded splits, written to one new folder.

    Args:
        out_dir: the study's folder; must be new or empty (checked here, before training).
        task_data: the images and classes (`dataset.TaskData`).
        seeds: the seeds, one split each.
        variants: the variants (default: all of `ablation.VARIANTS`).
        base: the configuration the variants change (default: the builtin `mlp`).
        ratios: train, validate, test shares.
        balance: how each training split is balanced.
        engine: where the runs train (default: `engine.SerialEngine()`).
        tracking: record every run (`tracking.RunTracker` in `out_dir`), or a tracker to use.
        context: more parameters recorded with every run (task, source, image size).

    Raises:
        ExistingFileError: if `out_dir` exists and is not an empty folder.
        ToonvisionError: if there is no seed.
    """

    def __init__(self, out_dir: Path, task_data: TaskData, seeds: Sequence[int],
                 variants: Sequence[Variant] | None = None, base: TrainingConfig | None = None,
                 ratios: Sequence[float] = defaults.RATIOS, balance: str = defaults.BALANCE, *,
                 engine: Engine | None = None, tracking: bool | Tracker = True,
                 context: dict[str, Any] | None = None) -> None:
        from toonvision.model_utils.training.configs import BUILTIN_CONFIGS

        if not seeds:
            raise ToonvisionError("need at least one seed")
        out_dir = Path(out_dir)
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise ExistingFileError(f"{out_dir} exists and is not an empty folder; choose a "
                                    "new one")
        self.out_dir = out_dir
        self.task_data = task_data
        self.seeds = list(seeds)
        self.variants = list(VARIANTS) if variants is None else list(variants)
        self.base = BUILTIN_CONFIGS[BASE_CONFIG] if base is None else base
        self.ratios, self.balance, self.engine = tuple(ratios), balance, engine
        self.context = dict(context or {})
        self.tracker = make_tracker(out_dir, tracking, "ablation")
        self.runs: list[AblationRun] = []

    @property
    def total(self) -> int:
        """The number of runs: variants times seeds."""
        return len(self.variants) * len(self.seeds)

    def run(self) -> Iterator[AblationRun]:
        """Trains every variant on every seed, tracking and yielding each run in order."""
        configs = {variant.name: variant.config(self.base) for variant in self.variants}
        for result in run_ablation(self.task_data.images, self.task_data.y,
                                   len(self.task_data.class_names), self.seeds, self.variants,
                                   self.base, self.ratios, self.balance, engine=self.engine):
            self.runs.append(result)
            if self.tracker is not None:
                self.tracker.log_run(
                    f"{result.variant}-seed{result.seed}",
                    {**dataclasses.asdict(configs[result.variant]), "seed": result.seed,
                     "balance": self.balance, **self.context},
                    result.history,
                    {"validation_accuracy": result.validation_accuracy,
                     "validation_macro_f1": result.validation_macro_f1,
                     "test_accuracy": result.test_accuracy,
                     "test_macro_f1": result.test_macro_f1,
                     "epochs_run": result.epochs_run, "best_epoch": result.best_epoch})
            yield result

    def finish(self) -> tuple[pd.DataFrame, list[Path]]:
        """Writes `ablation.csv` and `ablation_runs.csv`; returns the table and the files."""
        import pandas as pd

        table = ablation_table(self.runs, self.variants)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.out_dir / ABLATION_FILE, table.to_csv(index=False))
        rows = pd.DataFrame([{key: value for key, value in vars(result).items()
                              if key != "history"} for result in self.runs])
        write_text_atomic(self.out_dir / RUNS_FILE, rows.to_csv(index=False))
        return table, [self.out_dir / ABLATION_FILE, self.out_dir / RUNS_FILE]
