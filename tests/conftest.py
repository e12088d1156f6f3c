"""Shared fixtures: the real data sets beside the repository, generated screenshots with their
labelImg XML, generated crops, a tiny model, and quiet TensorFlow logs.

The writers are fixtures that return functions (`write_crops(folder, labels)`), so a test asks
for the ones it uses and calls them as often as it needs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from xml.sax.saxutils import escape

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from toonvision.data_processing.images import write_image_atomic  # noqa: E402
from toonvision.model_utils.comparison.best_models import PENDING_FOLDER  # noqa: E402
from toonvision.model_utils.comparison.runlog import (  # noqa: E402
    LOG_FILE,
    RunRecord,
    read_log,
    select_best,
)
from toonvision.model_utils.comparison.runner import Comparison  # noqa: E402
from toonvision.model_utils.comparison.stored_settings import ComparisonSettings  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = REPOSITORY.parent / "shared" / "data"

# (label, xmin, ymin, xmax, ymax), as labelImg writes a box.
Box = tuple[str, int, int, int, int]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets in ../shared/data; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (only present beside a checkout "
                    "in the project's workspace and CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def author_model_path(shared_data: Path) -> Path:
    """The ToonVision author's own trained binary model (Keras 2 HDF5)."""
    path = shared_data / "toontown" / "toonvision_optimized_1e-5_run12.h5"
    if not path.is_file():
        pytest.skip(f"author's model not found at {path}")
    return path


def voc_xml(filename: str, boxes: Sequence[Box], size: tuple[int, int] | None = None) -> str:
    """labelImg's Pascal VOC XML for `boxes` in the image `filename`; `size` = (width, height)."""
    size_element = ("" if size is None else
                    f"<size><width>{size[0]}</width><height>{size[1]}</height>"
                    "<depth>3</depth></size>")
    objects = "".join(
        f"<object><name>{escape(label)}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        for label, xmin, ymin, xmax, ymax in boxes)
    return (f"<annotation><filename>{escape(filename)}</filename>{size_element}{objects}"
            "</annotation>")


@pytest.fixture
def write_voc() -> Callable[..., Path]:
    """`write_voc(xml_path, filename, boxes, size=None)` writes a labelImg XML file."""

    def write(xml_path: Path, filename: str, boxes: Sequence[Box],
              size: tuple[int, int] | None = None) -> Path:
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        xml_path.write_text(voc_xml(filename, boxes, size), encoding="utf-8")
        return xml_path

    return write


def crop_image(label: str, size: tuple[int, int], generator: np.random.Generator) -> np.ndarray:
    """A noisy crop whose brightness tells its class: cogs dark, toons bright, others grey."""
    brightness = 60 if label.startswith("cog_") else 190 if label.startswith("toon_") else 125
    return generator.normal(brightness, 30, (*size, 3)).clip(0, 255).astype(np.uint8)


@pytest.fixture
def write_crops() -> Callable[..., list[Path]]:
    """`write_crops(folder, labels, size=(48, 48), seed=0, data_dir=True)` writes one crop per
    item of `labels`, named `<label>_<index>.png` as extraction names them. An item is a label
    (a noisy crop whose brightness tells its class, see `crop_image`) or a (label, grey) pair
    (a flat crop of that grey level). With `data_dir` the crops go where extraction puts them
    (`folder/unsorted/<cog|toon|label>/`), else straight into `folder`."""
    from toonvision.data_processing.images import write_image_atomic
    from toonvision.labels import label_prefix

    def write(folder: Path, labels: Sequence[str | tuple[str, int]],
              size: tuple[int, int] = (48, 48), seed: int = 0,
              data_dir: bool = True) -> list[Path]:
        generator = np.random.default_rng(seed)
        paths = []
        for index, item in enumerate(labels):
            label, grey = (item, None) if isinstance(item, str) else item
            image = (crop_image(label, size, generator) if grey is None
                     else np.full((*size, 3), grey, dtype=np.uint8))
            where = folder / "unsorted" / label_prefix(label) if data_dir else folder
            path = where / f"{label}_{index}.png"
            write_image_atomic(path, image)
            paths.append(path)
        return paths

    return write


def make_noise_image(seed: int, size: tuple[int, int] = (96, 64)) -> np.ndarray:
    """A distinct RGB image per seed (distinct content, so a distinct hash); `size` = (w, h)."""
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def write_screenshot_files(folder: Path, stem: str, boxes: Sequence[Box],
                           image: np.ndarray | None = None, extension: str = ".png",
                           encode_as: str | None = None, size: str | None = "auto",
                           seed: int = 0) -> Path:
    """Writes `<stem><extension>` (encoded as `encode_as`) and its labelImg `<stem>.xml`.

    `boxes` hold (label, xmin, ymin, xmax, ymax); the image is 96x64 noise unless given;
    `size` is the XML's `<size>` content: "auto" for the image's real size, None for no
    `<size>` element, or any text (to write a wrong or broken one).

    Returns:
        The image's path.
    """
    from toonvision.data_processing.images import encode_image

    folder.mkdir(parents=True, exist_ok=True)
    image = make_noise_image(seed) if image is None else image
    encoded = encode_image(image, encode_as or extension)
    image_path = folder / f"{stem}{extension}"
    image_path.write_bytes(encoded)
    if size == "auto":
        size = f"<width>{image.shape[1]}</width><height>{image.shape[0]}</height>"
    size_element = "" if size is None else f"<size>{size}<depth>3</depth></size>"
    text = voc_xml(image_path.name, boxes).replace("</filename>", f"</filename>{size_element}", 1)
    (folder / f"{stem}.xml").write_text(text, encoding="utf-8")
    return image_path


@pytest.fixture
def write_screenshot() -> Callable[..., Path]:
    """`write_screenshot(folder, stem, boxes, image=None, extension=".png", encode_as=None,
    size="auto", seed=0)` writes a screenshot and its labelImg XML (`write_screenshot_files`)."""
    return write_screenshot_files


@pytest.fixture(scope="session")
def tiny_model() -> Callable[..., object]:
    """`tiny_model(image_size=(96, 32), classes=2, logits=False)`: a small untrained seeded CNN
    taking uint8-range RGB: two convolutions, then one sigmoid output for two classes (a
    softmax otherwise), or logits with `logits=True`."""

    def build(image_size: tuple[int, int] = (96, 32), classes: int = 2, logits: bool = False):
        import keras

        keras.utils.set_random_seed(0)
        inputs = keras.Input((*image_size, 3))
        outputs = keras.layers.Rescaling(1 / 255)(inputs)
        outputs = keras.layers.Conv2D(4, 3, activation="relu")(outputs)
        outputs = keras.layers.MaxPooling2D()(outputs)
        outputs = keras.layers.Conv2D(4, 3, activation="relu")(outputs)
        outputs = keras.layers.Flatten()(outputs)
        units = 1 if classes == 2 else classes
        activation = None if logits else "sigmoid" if units == 1 else "softmax"
        outputs = keras.layers.Dense(units, activation=activation)(outputs)
        return keras.Model(inputs, outputs, name="tiny")

    return build


@pytest.fixture
def noise_image() -> Callable[..., np.ndarray]:
    """`noise_image(seed, size=(96, 64))`: the noise `write_screenshot` draws by default."""
    return make_noise_image


@pytest.fixture
def write_flat_set() -> Callable[..., tuple[Path, Path]]:
    """`write_flat_set(folder, items)` writes a flat labelled set as the Pokemon challenge lays
    it out: `folder/images/<id>.png` and `folder/labels.csv` (`Id,label`). Each item is
    (id, label, image): an RGB array, or bytes written as they are (a broken file). Returns
    (labels CSV, images folder)."""
    from toonvision.data_processing.images import write_image_atomic

    def write(folder: Path, items: Sequence[tuple[str, str, np.ndarray | bytes]]
              ) -> tuple[Path, Path]:
        images = folder / "images"
        images.mkdir(parents=True, exist_ok=True)
        rows = ["Id,label"]
        for image_id, label, image in items:
            if isinstance(image, bytes):
                (images / f"{image_id}.png").write_bytes(image)
            else:
                write_image_atomic(images / f"{image_id}.png", image)
            rows.append(f"{image_id},{label}")
        labels = folder / "labels.csv"
        labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return labels, images

    return write


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for a test module's Ray tests (started
    only by the tests that use it; needs Ray installed); engines join it."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False,
             log_to_driver=False)
    yield ray
    ray.shutdown()


# ----------------------------------------------------------------------------------------------
# Fakes of the comparison's trainers and engines (typed against `engine.protocols`), and helpers
# that drive a comparison folder with them. Test modules import them: `from conftest import
# FakeTrainer, run_fake`.


@dataclass(frozen=True)
class FakeConfig:
    name: str
    epochs: int = 3


class FakeModel:
    def __init__(self, text: str) -> None:
        self.text = text

    def save(self, path: str) -> None:
        Path(path).write_text(self.text)

    def predict_on_batch(self, images: np.ndarray) -> np.ndarray:
        """P(class 1) of each image, seeded by the model: what a sigmoid output gives."""
        generator = np.random.default_rng(len(self.text) + len(images))
        return generator.uniform(0, 1, (len(images), 1))


class FakeTrainer:
    """A `protocols.Trainer` (its class a `protocols.TrainerFactory`) without Keras: metrics
    that depend only on (config, seed), as a deterministic trainer would."""

    def __init__(self, config: FakeConfig, num_classes: int, image_size: tuple[int, int]):
        self.config = config
        self.model = None

    def run(self, images, y, split, seed, epoch_callback=None):
        generator = np.random.default_rng([seed, len(self.config.name)])
        loss, accuracy, validation_loss = generator.uniform([0.05, 0.7, 0.05], [0.6, 1.0, 0.6])
        history = {"loss": [0.7, loss], "accuracy": [0.5, accuracy],
                   "val_loss": [0.7, validation_loss], "val_accuracy": [0.5, accuracy]}
        for epoch in range(2):
            if epoch_callback is not None:
                epoch_callback(epoch, {key: values[epoch] for key, values in history.items()})
        self.model = FakeModel(f"{self.config.name} {seed}")
        return SimpleNamespace(
            seed=seed, history=history, epochs_run=2, setup_seconds=0.0, train_seconds=0.01,
            validation_metrics={"loss": validation_loss, "accuracy": accuracy},
            test_metrics={"loss": loss, "accuracy": accuracy},
        )


CONFIGS = [FakeConfig("baseline"), FakeConfig("optimized")]
TASK_DATA = SimpleNamespace(images=np.zeros((30, 4, 4, 3), np.uint8),
                            y=np.arange(30) % 2, class_names=("cog", "toon"))


def fake_settings(runs: int = 4, **changes) -> ComparisonSettings:
    values = dict(source="fake", task="binary", class_names=["cog", "toon"], image_size=[4, 4],
                  ratios=[0.6, 0.2, 0.2], seed=0, runs=runs, select="test",
                  configs=[{"name": config.name, "epochs": config.epochs} for config in CONFIGS],
                  data_fingerprint="abc", num_images=30)
    values.update(changes)
    return ComparisonSettings(**values)


def run_fake(out_dir: Path, runs: int = 4, resume: bool = False, **changes) -> Comparison:
    comparison = Comparison.start(out_dir, fake_settings(runs, **changes), resume=resume)
    for _ in comparison.run(TASK_DATA, CONFIGS, trainer_factory=FakeTrainer):
        pass
    return comparison


def comparable(records: list[RunRecord]) -> list[tuple]:
    return [(item.config, item.run, item.split_seed, item.test_metrics["loss"],
             item.validation_metrics["loss"]) for item in records]


def assert_consistent(out_dir: Path, runs: int, reference: list[RunRecord]) -> None:
    """The log has each run once per config, and best_* are the log's best runs."""
    records, torn = read_log(out_dir / LOG_FILE)
    assert torn == 0
    assert sorted((item.run, item.config) for item in records) == sorted(
        (run, config.name) for run in range(runs) for config in CONFIGS)
    assert comparable(records) == comparable(reference)
    for name, best in select_best(records).items():
        assert json.loads((out_dir / f"best_{name}.json").read_text())["run"] == best.run
        assert (out_dir / f"best_{name}.keras").read_text() == f"{name} {best.seed}"
        sidecar = json.loads((out_dir / f"best_{name}.keras.json").read_text())
        assert sidecar["extra"]["run"] == best.run and sidecar["config"] == name
    assert not (out_dir / PENDING_FOLDER).exists()


class EffectTrainer(FakeTrainer):
    """Test accuracy 0.9 + the configuration's effect + its own noise of sd 0.02 per run."""

    effects: dict[str, float] = {}

    def run(self, images, y, split, seed, epoch_callback=None):
        result = super().run(images, y, split, seed, epoch_callback)
        noise = np.random.default_rng([seed, 7, len(self.config.name)]).normal(0.0, 0.02)
        result.test_metrics["accuracy"] = 0.9 + self.effects.get(self.config.name, 0.0) + noise
        return result


class RecordingTrainer(FakeTrainer):
    made: list = []

    def __init__(self, config, num_classes, image_size):
        super().__init__(config, num_classes, image_size)
        RecordingTrainer.made.append(self)
        self.splits = []

    def run(self, images, y, split, seed, epoch_callback=None):
        self.splits.append((seed, {name: np.array(part) for name, part in split.items()}))
        return super().run(images, y, split, seed, epoch_callback)



class FakeEngine:
    """A `protocols.Engine` that trains every task in order in this process, counting them.

    Attributes:
        trained: the (run, config) of every task trained.
    """

    started = 1

    def __init__(self) -> None:
        self.trained: list[tuple[int, str]] = []

    def run(self, tasks, job, epoch_callback=None):
        from toonvision.model_utils.engine.serial import LOCAL_WORKER, RunOutcome, train_task

        trainers = {}
        for task in tasks:
            config = job.config_for(task)
            trainer = trainers.setdefault(task.config, job.trainer_factory(
                config, job.num_classes, job.image_size))
            result, confusion, probabilities = train_task(trainer, job.images, job.y, task,
                                                          job.num_classes, None)
            self.trained.append((task.run, task.config))
            yield RunOutcome(task, result, confusion, probabilities, trainer.model, "here",
                             LOCAL_WORKER, 1, 0.0)

    def describe(self) -> str:
        return "in a fake engine"

    def activity(self) -> list:
        return []

    def __enter__(self) -> FakeEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def record(config: str, run: int, test_loss: float, test_accuracy: float,
           validation_loss: float = 0.5, epochs: int = 3) -> RunRecord:
    """A hand-made run record, shaped like the ones the comparison logs."""
    history = {
        "loss": list(np.linspace(0.7, test_loss, epochs)),
        "accuracy": list(np.linspace(0.5, test_accuracy, epochs)),
        "val_loss": list(np.linspace(0.7, validation_loss, epochs)),
        "val_accuracy": list(np.linspace(0.5, test_accuracy, epochs)),
    }
    return RunRecord(config=config, run=run, seed=run, split_seed=run,
                     split_sizes={"train": 18, "validate": 6, "test": 6}, history=history,
                     validation_metrics={"loss": validation_loss, "accuracy": test_accuracy},
                     test_metrics={"loss": test_loss, "accuracy": test_accuracy},
                     epochs_run=epochs, setup_seconds=0.1, train_seconds=1.0)



def write_easy_crops(data_dir: Path, per_class: int = 12, size: tuple[int, int] = (48, 48)) -> None:
    """Tiny crops that are easy to tell apart: dark noisy cogs, bright noisy toons."""
    generator = np.random.default_rng(0)
    for label, brightness in (("cog_sb_coldcaller", 60), ("toon_dog", 190)):
        for index in range(per_class):
            image = generator.normal(brightness, 30, (*size, 3)).clip(0, 255).astype(np.uint8)
            write_image_atomic(data_dir / "unsorted" / label.split("_")[0]
                               / f"{label}_{index}.png", image)

