"""model_utils: configurations in, trained models, comparisons and predictions out.

    configs.py             training configurations as data (built-in, TOML), looked up by name
    architecture.py        the CNN's architecture fields: validation, blocks, smallest image side
    models.py              the CNN of any architecture, the deck's MLP, metrics, probabilities
    augment.py             the fused OpenCV augmentation and the training feed
    trainer.py             one compiled model per configuration, re-initialised for every run
    model_io.py            model files with the sidecar that says what they predict
    settings.py            a comparison's settings as data: defaults, then a TOML file, then flags
    stored_settings.py     the settings a comparison folder keeps (comparison.json), resume checks
    run_splits.py          which images each run uses: a fresh split, or a cross-validation fold
    runlog.py              the run log (runs.jsonl): typed run records, best-run rules
    compare.py             N paired runs on fresh splits, resume, best models
    engine.py              where runs train: in this process (serial), the engine contract
    ray_engine.py          runs at once on Ray workers (--workers N)
    trainer_cache.py       the trainers an engine keeps between runs (the most recent)
    best_models.py         the best model of each configuration, kept in step with the log
    predictions.py         every run's per-crop out-of-sample predictions (for the doctor)
    comparison_summary.py  the statistics of a run log, summary.csv
    paired.py              paired differences: corrected intervals, win rate, floor, optimism
    sequential.py          when to stop: group-sequential boundaries, the stopping rule
    verdict.py             a pair's verdict and its one sentence
    doctor.py              the dataset doctor: likely label errors, crops always wrong, leaks
    search.py              a search over configurations, every trial a paired comparison
    search_results.py      a search's study: requeued trials, best trials, result files
    optimizers.py          the article's optimizer study
    ablation.py            the Pokemon deck's MLP study
    predict.py             classifying crops, folders and annotated screenshots
    tracking.py            experiment records (JSONL, optional MLflow)

Example:
    >>> from toonvision.model_utils import BUILTIN_CONFIGS, Trainer
    >>> trainer = Trainer(BUILTIN_CONFIGS["optimized"], num_classes=2,   # doctest: +SKIP
    ...                   image_size=(600, 200))
"""

from toonvision import lazy_exports

_EXPORTS = {
    "TrainingConfig": "configs",
    "BUILTIN_CONFIGS": "configs",
    "resolve_configs": "configs",
    "make_model": "models",
    "predict_probabilities": "models",
    "Trainer": "trainer",
    "load_model": "model_io",
    "save_model_atomic": "model_io",
    "Comparison": "compare",
    "summarize": "comparison_summary",
    "predict_paths": "predict",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
