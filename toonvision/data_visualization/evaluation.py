"""A model evaluated on labelled images: predictions, errors and metrics, computed once for
the report and anything else that shows them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from toonvision import ToonvisionError, defaults
from toonvision.labels import Task, make_task

if TYPE_CHECKING:
    from toonvision.model_utils.comparison.provenance import SeenCrops


@dataclass
class LabelledImages:
    """Images with their true classes, ready for a model.

    Attributes:
        images: (N, height, width, 3) uint8 RGB at the model's input size.
        y: (N,) class indices.
        class_names: the classes, in the model's output order.
        names: a short display name per image (file name, or `screenshot#object`).
        labels: the raw label per image (e.g. `toon_dog`).
        source: where the images came from, for the page header.
        skipped: one message per input left out and why.
        parts: per image, its part of the model's split (`train`, `validate`, `test`) when
            the model's data holds it, else ''; empty when not looked up.
    """

    images: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    names: list[str]
    labels: list[str]
    source: str
    skipped: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Evaluation:
    """What the model said about each image.

    Attributes:
        probabilities: (N, classes): column k is the probability of class k (a binary
            sigmoid output p gives `[1 - p, p]`).
        y_true: (N,) true class indices.
        class_names: the classes.
        binary: whether the model has one sigmoid output.
    """

    probabilities: np.ndarray
    y_true: np.ndarray
    class_names: tuple[str, ...]
    binary: bool

    @property
    def y_pred(self) -> np.ndarray:
        """The predicted class of each image."""
        return np.argmax(self.probabilities, axis=1)

    @property
    def errors(self) -> np.ndarray:
        """E: how far the confidence is from the true class, 1 - P(true class), in [0, 1]."""
        return 1.0 - self.probabilities[np.arange(len(self.y_true)), self.y_true]

    @property
    def outputs(self) -> np.ndarray:
        """A: the model's output; P(class 1) for a binary model, else P(predicted class)."""
        if self.binary:
            return self.probabilities[:, 1]
        return self.probabilities.max(axis=1)

    def wrong_indices(self) -> np.ndarray:
        """The misclassified images, largest error (most confident mistake) first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        return wrong[np.argsort(-self.errors[wrong], kind="stable")]

    def title(self, index: int) -> str:
        """The article's tile title for image `index`: true class, E and A."""
        from toonvision.data_visualization.figures import prediction_title

        predicted = None if self.binary else self.class_names[self.y_pred[index]]
        return prediction_title(self.class_names[self.y_true[index]], float(self.errors[index]),
                                float(self.outputs[index]), predicted)


def load_inputs(
    paths: Sequence[str | os.PathLike],
    class_names: Sequence[str],
    image_size: tuple[int, int],
    task: Task | None = None,
    resize_mode: str = defaults.RESIZE,
    seen: SeenCrops | None = None,
) -> LabelledImages:
    """Loads labelled images from crops, folders, or screenshots with labelImg XML.

    The inputs are read as `predict` reads them (`data_processing.inputs`): a screenshot (an
    image with its XML beside it, or the XML) gives a crop per box, labelled by the XML; any
    other image is a crop labelled by its file name (`toon_dog_3.png` is a `toon_dog`); a
    folder stands for every image and XML under it.

    Args:
        paths: files and folders.
        class_names: the model's classes.
        image_size: (height, width) the model takes.
        task: maps raw labels to classes (e.g. `toon_dog` -> `toon`); without one a label
            must be a class name itself.
        resize_mode: how crops become inputs (the model's `ModelInfo.resize`).
        seen: the crops of the model's data (`provenance.seen_crops`): each image's part
            (`LabelledImages.parts`) and, for a crop file of that data, its label there
            (as `predict` reads it); None: not looked up.

    Returns:
        The images; labels the task does not cover, unreadable files and unusable boxes are
        left out and listed in `skipped`.

    Raises:
        FileNotFoundError: if a given path does not exist.
        ValueError: if a file is neither an image nor an XML, or nothing usable was found.
    """
    from toonvision.data_processing.inputs import find_inputs, iter_crops

    classes = list(class_names)
    task = task or make_task("label", classes)   # without a task, a label must be a class
    images, y, names, labels, skipped, parts = [], [], [], [], [], []
    for crop in iter_crops(find_inputs(paths), image_size, skipped, resize_mode):
        label = crop.label if seen is None else seen.label_of(crop)
        class_name = task.class_of(label)
        if class_name not in classes:
            skipped.append(f"{crop.name}: label {label!r} is not one of the model's "
                           f"classes ({', '.join(class_names)})")
            continue
        images.append(crop.image)
        y.append(classes.index(class_name))
        names.append(crop.name)
        labels.append(label)
        if seen is not None:
            parts.append(seen.part_of(crop.source, crop.box))
    if not images:
        detail = "; ".join(skipped[:3]) or "no image files"
        raise ToonvisionError(f"no usable labelled images in {', '.join(map(str, paths))}: "
                              f"{detail}")
    return LabelledImages(
        images=np.stack(images), y=np.asarray(y, dtype=np.int64), class_names=tuple(class_names),
        names=names, labels=labels, source=", ".join(str(path) for path in paths),
        skipped=skipped, parts=parts,
    )


def evaluate(
    model: object, data: LabelledImages, batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Runs the model on every image.

    Raises:
        ValueError: if the model's outputs do not match the number of classes.
    """
    from toonvision.model_utils.training.models import predict_probabilities

    probabilities = predict_probabilities(model, data.images, batch_size, progress)
    if probabilities.shape[1] != len(data.class_names):
        raise ToonvisionError(
            f"the model gives {probabilities.shape[1]} class scores but the data has "
            f"{len(data.class_names)} classes ({', '.join(data.class_names)})"
        )
    binary = int(model.outputs[0].shape[-1]) == 1
    return Evaluation(probabilities, data.y, data.class_names, binary)


def metrics(evaluation: Evaluation) -> dict:
    """Accuracy, the scikit-learn classification report and the confusion matrix.

    Returns:
        `{"accuracy": float, "report": classification_report(output_dict=True),
        "confusion_matrix": (classes, classes) array, rows true, columns predicted}`.
    """
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    labels = list(range(len(evaluation.class_names)))
    return {
        "accuracy": float(accuracy_score(evaluation.y_true, evaluation.y_pred)),
        "report": classification_report(
            evaluation.y_true, evaluation.y_pred, labels=labels,
            target_names=list(evaluation.class_names), output_dict=True, zero_division=0),
        "confusion_matrix": confusion_matrix(evaluation.y_true, evaluation.y_pred, labels=labels),
    }


def choose_samples(evaluation: Evaluation, count: int, seed: int = 0) -> list[int]:
    """Picks up to `count` images spread over the true classes (round robin, seeded)."""
    generator = np.random.default_rng(seed)
    pools = [list(generator.permutation(np.flatnonzero(evaluation.y_true == class_index)))
             for class_index in range(len(evaluation.class_names))]
    chosen: list[int] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(int(pool.pop(0)))
    return chosen


def cross_entropy(evaluation: Evaluation) -> float:
    """The mean cross-entropy of the model's probabilities, as a run's record computes its loss.

    A comparison's `test_metrics["loss"]` is Keras `evaluate` with the training loss
    (`models.loss_and_metrics`): binary cross-entropy for two classes, sparse categorical
    cross-entropy otherwise, averaged over the images. The same Keras functions are applied
    here to the probabilities of `models.predict_probabilities` (so sigmoid, softmax and
    logit models are all scored on probabilities; Keras clips them to [1e-7, 1 - 1e-7], which
    only matters for outputs that close to 0 or 1).
    """
    import keras

    probabilities = np.asarray(evaluation.probabilities, dtype=np.float32)
    if len(evaluation.y_true) == 0:
        return float("nan")
    if probabilities.shape[1] == 2:
        losses = keras.losses.binary_crossentropy(
            evaluation.y_true.astype(np.float32)[:, None], probabilities[:, 1:])
    else:
        losses = keras.losses.sparse_categorical_crossentropy(evaluation.y_true, probabilities)
    return float(np.mean(keras.ops.convert_to_numpy(losses)))


def metrics_record(evaluation: Evaluation, data: LabelledImages,
                   split: dict | None = None) -> dict:
    """What the report writes as `metrics.json`: the scores, every crop and the split's origin.

    Args:
        evaluation: the model on `data`.
        data: the evaluated images.
        split: where the images came from (`provenance.ModelSplit.to_dict`); default
            `{"origin": "inputs", "source": data.source}`.

    Returns:
        `{"accuracy", "loss", "macro_f1", "per_class": {class: {"precision", "recall", "f1",
        "support"}}, "crops": [{"image", "label", "true", "predicted", "probability"}],
        "split"}`; `probability` is that of the predicted class.
    """
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    labels = list(range(len(evaluation.class_names)))
    y_true, y_pred = evaluation.y_true, evaluation.y_pred
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    names = evaluation.class_names
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "loss": cross_entropy(evaluation),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                   zero_division=0)),
        "per_class": {name: {"precision": float(precision[k]), "recall": float(recall[k]),
                             "f1": float(f1[k]), "support": int(support[k])}
                      for k, name in enumerate(names)},
        "crops": [{"image": data.names[index], "label": data.labels[index],
                   "true": names[int(y_true[index])], "predicted": names[int(y_pred[index])],
                   "probability": float(evaluation.probabilities[index, y_pred[index]])}
                  for index in range(len(y_true))],
        "split": split if split is not None else {"origin": "inputs", "source": data.source},
    }
