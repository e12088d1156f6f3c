"""model_utils: configurations in, trained models, comparisons and predictions out.

Sub-packages, by purpose; imports point one way (training <- engine <- comparison <- studies
and the doctor; statistics stands alone and does no I/O):

    training/      a configuration becomes a trained model
        configs.py         training configurations as data (built-in, TOML), looked up by name
        architecture.py    the CNN's architecture fields: validation, blocks, smallest side
        models.py          the CNN, the deck's MLP, metrics, the one probability rule
        augment.py         the fused OpenCV augmentation and the training feed
        trainer.py         one compiled model per configuration, re-initialised per run
        model_io.py        model files with the sidecar that says what they predict
    engine/        where runs train
        serial.py          the task and outcome types, the serial engine (this process)
        ray_engine.py      runs at once on Ray workers (--workers N)
        trainer_cache.py   the trainers an engine keeps between runs
        choose.py          which engine, and why: `choose_engine`, `make_engine`
        measurement.py     does a second process pay on this CPU (measured once, kept)
    statistics/    numbers in, numbers out (no files)
        paired.py          paired differences: corrected intervals, win rate, floor
        sequential.py      when to stop: group-sequential boundaries
        verdict.py         a pair's verdict and its one sentence
    comparison/    N paired runs in one folder
        settings.py        the settings schema: defaults, TOML keys, flags, checks
        stored_settings.py what comparison.json keeps; resume checks
        run_splits.py      which crops each run trains, validates and tests on
        runlog.py          the run log (runs.jsonl): typed run records, best-run rules
        best_models.py     the best model of each configuration
        predictions.py     every run's per-crop out-of-sample predictions
        summary.py         the statistics of a run log, summary.csv
        per_class.py       per-class precision, recall, F1 with ranges, per_class.csv
        runner.py          `Comparison`: the folder, resume, engines, best models
    studies/       many comparisons
        search.py, search_results.py   Optuna search, every trial a paired comparison
        optimizers.py      the article's optimizer study
        ablation.py        the Pokemon deck's MLP study
    dataset_doctor.py  likely label errors, crops always wrong, leaks
    doctor_tables.py   the doctor's CSVs: label issues, duplicates, relabel suggestions
    prediction.py      classifying crops, folders and annotated screenshots
    tracking.py        experiment records (JSONL, optional MLflow)

Example:
    >>> from toonvision.model_utils import BUILTIN_CONFIGS, Trainer
    >>> trainer = Trainer(BUILTIN_CONFIGS["optimized"], num_classes=2,   # doctest: +SKIP
    ...                   image_size=(600, 200))
"""

from toonvision import lazy_exports

_EXPORTS = {
    "TrainingConfig": "training.configs",
    "BUILTIN_CONFIGS": "training.configs",
    "resolve_configs": "training.configs",
    "make_model": "training.models",
    "predict_probabilities": "training.models",
    "Trainer": "training.trainer",
    "load_model": "training.model_io",
    "save_model_atomic": "training.model_io",
    "Comparison": "comparison.runner",
    "summarize": "comparison.summary",
    "predict_paths": "prediction",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
