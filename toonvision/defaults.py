"""Every default of toonvision, in one place (the library and the command line read them here).

The values are the ToonVision article's unless a comment says otherwise. A comparison's
settings can also come from a TOML file (`compare --settings FILE`, see
`model_utils.settings`); flags override the file, and the file overrides these defaults.
"""

from __future__ import annotations

from pathlib import Path

# --- data -----------------------------------------------------------------------------------
DATA_DIR = Path("data")                 # where `extract` writes crops and everything reads them
TASK = "binary"                         # cog vs toon
IMAGE_SIZE: tuple[int, int] = (600, 200)  # (height, width) the article resizes crops to
RESIZE = "stretch"                      # stretch (the article's) | letterbox (keep aspect, pad)
RATIOS: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / validate / test shares
SEED = 0                                # split seed; run r of a comparison uses SEED + r
BALANCE = "none"                        # none | undersample | oversample (training split only)
GROUP_BY = "none"                       # none | screenshot | duplicates | column:NAME (CSV sets)

# --- comparisons (`compare`) ------------------------------------------------------------------
CONFIGS: tuple[str, ...] = ("baseline", "optimized")
RUNS = 200                              # paired runs per configuration
SELECT = "test"                         # best-model rule: test (the article's) | val_loss
RUNS_DIR = Path("runs")                 # comparisons go to RUNS_DIR/<name>/
UNTIL_DECIDED = False                   # stop early when a look decides (RUNS is then the cap)
LOOK_EVERY = 5                          # with UNTIL_DECIDED: look after every 5 paired runs
                                        # (simulated: a 7-point effect decided in 5.8 runs on
                                        # average instead of 10, false decisions 3.8% at 0.05)
EQUIVALENCE = 0.0                       # practical-difference margin in accuracy (0: none)
CV: int | None = None                   # K-fold cross-validation (None: a fresh split per run)

# --- where comparison runs train (`model_utils.engine`, docs/parallel.md) ---------------------
# Whether a second process pays depends on the CPU (GUIDE: 1.75-1.85x on an Intel AMX machine,
# 1.13-1.29x on an AMD EPYC, where Ray's start-up ate the gain). So without --workers the
# engine chooses (`engine.choose.choose_engine`): Ray's one-thread workers, one per CPU, only
# where the bare step measured on this machine gains RAY_MIN_GAIN and the comparison has
# RAY_MIN_TASKS_PER_WORKER tasks per worker; else this process.
WORKERS: int | None = None              # None: choose (above); 1: this process; N: N Ray workers
THREADS_PER_WORKER: int | None = None   # None: 1 on Ray workers; the process's own when serial
RAY_ADDRESS: str | None = None          # a Ray cluster to join ("auto", HOST:PORT); None: local
GPUS_PER_WORKER = 0.0                   # GPU share each Ray worker asks for
RAY_MIN_GAIN = 1.25                     # measured speed-up (workers together / one process)
RAY_MIN_TASKS_PER_WORKER = 2            # runs x configurations per worker, at least
RAY_MEASURE_MIN_TASKS = 40              # fewer tasks, nothing kept: this process, unmeasured
                                        # (the ~30 s measurement would cost more than it saves)

# --- hyperparameter search (`search`, `model_utils.search`) ----------------------------------
SEARCH_TRIALS = 20                      # trials finished (complete or pruned) per search
SEARCH_RUNS_PER_TRIAL = 5               # paired runs of a trial against the reference
SEARCH_BASE = "optimized"               # the configuration a trial changes
SEARCH_REFERENCE = "optimized"          # what every trial is compared with, on the same splits
SEARCH_BEST = 3                         # best trials written to best_configs.toml
SEARCH_STARTUP_TRIALS = 3               # trials finished before pruning starts
SEARCH_WARMUP_RUNS = 2                  # paired runs of a trial before it may be pruned

# --- the verdict: statistics of paired runs (`model_utils.paired`, `sequential`, `verdict`) --
ALPHA = 0.05                            # 1 - the confidence of every interval and decision
POWER = 0.8                             # of the detectable difference and the floor
FUTILITY = 0.1                          # stop as undecidable under this chance to decide
BOOTSTRAP_SAMPLES = 10_000              # resamples of the win-rate interval

# --- the optimizer study (`optimizers`) -------------------------------------------------------
OPTIMIZER_EPOCHS = 20
OPTIMIZER_LEARNING_RATE = 1e-3

# --- the MLP study (`ablate`, the Pokemon deck) -----------------------------------------------
ABLATION_IMAGE_SIZE: tuple[int, int] = (64, 64)
ABLATION_SEEDS = 3

# --- prediction and reports -----------------------------------------------------------------
BATCH_SIZE = 32                         # images per forward pass in predict and report
REPORT_SAMPLES = 8                      # Grad-CAM sample images in a report
REPORT_FILTERS = 8                      # filter patterns per layer in a report
REPORT_EXPLAIN = 8                      # images every explanation method is scored on
EXPLAIN_STEPS = 16                      # deletion/insertion steps of a heatmap's scores
REPORTS_DIR = Path("reports")
# A kept model's confidence rule (`model_utils.training.confidence`, docs/compare.md):
NOVELTY_SCORE = "nearest_neighbour"     # or max_probability (measured: benchmarks/README.md)
ACCEPT = 0.95                           # share of validation crops recognised; the rest: unknown

# --- demo data (`synth`) --------------------------------------------------------------------
SYNTH_SCREENSHOTS = 60
SYNTH_COG_SHARE = 0.72                  # share of figures that are Cogs (`make demo`: 0.5)

# --- the dataset doctor (`doctor`) ------------------------------------------------------------
DUPLICATE_MAX_DISTANCE = 20             # of the 128 bits of phash + dhash for a near-duplicate pair
DUPLICATE_MIN_CORRELATION = 0.9         # of the pair's 16x16 thumbnails, allowing a 1-pixel shift
DOCTOR_MIN_APPEARANCES = 2              # fewer out-of-sample appearances are no history to judge
DOCTOR_LEARNED_SHARE = 0.25             # of the majority-class answer's errors the models must
                                        # remove out of sample, or the doctor warns
