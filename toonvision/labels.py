"""The ToonTown label taxonomy and the tasks that map labels to classes.

Labels come from labelImg and follow the ToonVision naming: `cog_<suit>_<name>` for Cogs
(suit in bb, lb, cb, sb) and `toon_<animal>` for Toons. Any other label (a playing card, a
fruit) is valid too; the `label` task and explicit class mappings serve those data sets.

A `Task` answers one question: which class (if any) does this label belong to? Labels the
task does not cover map to `None` and are left out of that task's data, never an error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from toonvision import ToonvisionError, did_you_mean

SUITS: dict[str, str] = {
    "bb": "bossbot",
    "lb": "lawbot",
    "cb": "cashbot",
    "sb": "sellbot",
}

COG_NAMES: dict[str, tuple[str, ...]] = {
    "bb": ("flunky", "pencilpusher", "yesman", "micromanager", "downsizer", "headhunter",
           "corporateraider", "thebigcheese"),
    "lb": ("bottomfeeder", "bloodsucker", "doubletalker", "ambulancechaser", "backstabber",
           "spindoctor", "legaleagle", "bigwig"),
    "cb": ("shortchange", "pennypincher", "tightwad", "beancounter", "numbercruncher",
           "moneybags", "loanshark", "robberbaron"),
    "sb": ("coldcaller", "telemarketer", "namedropper", "gladhander", "movershaker", "twoface",
           "themingler", "mrhollywood"),
}

TOON_ANIMALS: tuple[str, ...] = (
    "bear", "cat", "crocodile", "deer", "dog", "duck", "horse", "monkey", "mouse", "pig",
    "rabbit",
)

COG_LABELS: tuple[str, ...] = tuple(
    f"cog_{suit}_{name}" for suit, names in COG_NAMES.items() for name in names
)
TOON_LABELS: tuple[str, ...] = tuple(f"toon_{animal}" for animal in TOON_ANIMALS)
TAXONOMY_LABELS: tuple[str, ...] = COG_LABELS + TOON_LABELS

TASK_NAMES: tuple[str, ...] = ("binary", "suit", "name", "animal", "label")

# Runs of characters a label cannot keep in a file name (each run becomes one `_`).
_UNSAFE_RUN = re.compile("\0+")


# What each taxonomy label says, by the name of the task that asks (see `taxonomy_parts`).
_TAXONOMY_PARTS: dict[str, dict[str, str]] = {
    **{f"cog_{suit}_{name}": {"binary": "cog", "suit": SUITS[suit], "name": name}
       for suit, names in COG_NAMES.items() for name in names},
    **{f"toon_{animal}": {"binary": "toon", "animal": animal} for animal in TOON_ANIMALS},
}
_TAXONOMY_TASKS: tuple[str, ...] = ("suit", "name", "animal")


def is_taxonomy_label(label: str) -> bool:
    """Returns whether `label` is one of the 43 ToonTown labels."""
    return label in _TAXONOMY_PARTS


def label_kind(label: str) -> str | None:
    """Returns `cog` for a `cog_...` label, `toon` for a `toon_...` label, else None.

    The prefix alone decides, so a Cog missing from the taxonomy (`cog_bb_newcog`) is a Cog
    too: this is the `binary` task's rule and the crop folder's.
    """
    for kind in ("cog", "toon"):
        if label.startswith(f"{kind}_"):
            return kind
    return None


def taxonomy_parts(label: str) -> dict[str, str]:
    """Returns what a ToonTown label says, by task name; empty outside the taxonomy.

    This is the one place that reads a label's parts: `Task.class_of` answers the `suit`,
    `name` and `animal` tasks with it, and the balance counts use it.

    Example:
        >>> taxonomy_parts("cog_sb_coldcaller")
        {'binary': 'cog', 'suit': 'sellbot', 'name': 'coldcaller'}
        >>> taxonomy_parts("toon_dog")
        {'binary': 'toon', 'animal': 'dog'}
        >>> taxonomy_parts("king")
        {}
    """
    return dict(_TAXONOMY_PARTS.get(label, {}))


def label_prefix(label: str) -> str:
    """Returns the folder a crop of `label` is stored in: `cog`, `toon`, or the label itself.

    Args:
        label: a label that already passed `safe_label`.
    """
    return label_kind(label) or label


def safe_label(label: str) -> str:
    """Returns `label` made safe as a file and folder name.

    Letters, digits and marks of every script stay (`Pokémon`, `ポケモン`, `हिन्दी`: a file
    name may hold them on every current file system), in Unicode's composed form (NFC: an `é`
    typed on one system and read from a macOS file name on another is one label). Path
    separators, `..`, spaces and other punctuation become `_`; leading dots and underscores
    are stripped so the result can never name a parent or hidden folder.

    Raises:
        ValueError: if nothing usable is left (an empty or all-punctuation label).
    """
    return _cleaned(unicodedata.normalize("NFC", label),
                    lambda character: unicodedata.category(character)[0] in "LMN")


def legacy_safe_label(label: str) -> str:
    """`safe_label` as versions before 2026-12-03 made it: every run of characters outside
    ASCII letters, digits, `_`, `.` and `-` became one `_` (`café` -> `caf_`; a label of only
    such characters was unusable). `extract` keeps the crops of a data folder written then
    under their old label (`Extractor._label_of`).

    Raises:
        ValueError: if nothing usable is left.
    """
    return _cleaned(label, lambda character: character.isascii() and character.isalnum())


def _cleaned(label: str, is_letter_or_digit: Callable[[str], bool]) -> str:
    """`label` with each run of characters that are neither `is_letter_or_digit` nor `_`, `.`
    or `-` replaced by `_`, `..` by `_`, the leading `.`, `_`, `-` and combining marks
    stripped, cut to 100 characters; a ValueError (ToonvisionError) when nothing is left."""
    marked = "".join(character if character in "_.-" or is_letter_or_digit(character)
                     else "\0" for character in label.strip())
    cleaned = _UNSAFE_RUN.sub("_", marked).replace("..", "_")
    first = next((index for index, character in enumerate(cleaned)
                  if character not in "._-" and not unicodedata.category(character)
                  .startswith("M")), len(cleaned))
    cleaned = cleaned[first:first + 100]
    if not cleaned:
        raise ToonvisionError(f"label {label!r} has no characters usable in a file name")
    return cleaned


@dataclass(frozen=True)
class Task:
    """Maps labels to class names for one classification question.

    Attributes:
        name: the task's name (`binary`, `suit`, ..., or `custom` for an explicit mapping).
        classes: the class names in class-index order.
        mapping: explicit label -> class for `custom` tasks; empty otherwise.
    """

    name: str
    classes: tuple[str, ...]
    mapping: Mapping[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_of(self, label: str) -> str | None:
        """Returns the class name of `label` under this task, or None if it is not covered."""
        if self.name == "custom":
            return self.mapping.get(label)
        if self.name == "label":
            return label if label in self.classes else None
        if self.name == "binary":
            return label_kind(label)
        if self.name in _TAXONOMY_TASKS:
            return _TAXONOMY_PARTS.get(label, {}).get(self.name)
        raise ToonvisionError(f"unknown task {self.name!r}{did_you_mean(self.name, TASK_NAMES)}")

    def class_index(self, label: str) -> int | None:
        """Returns the class index of `label`, or None if the task does not cover it."""
        class_name = self.class_of(label)
        return None if class_name is None else self.classes.index(class_name)


def make_task(spec: str = "binary", labels: Iterable[str] = ()) -> Task:
    """Builds a task from its name or an explicit class list.

    Args:
        spec: a task name (`binary`, `suit`, `name`, `animal`, `label`), or an explicit class
            list: `king,queen,jack` keeps only those labels, and `king=face,queen=face,
            ace=number` keeps and renames (merges) them.
        labels: the labels present in the data; the `label` task takes its classes from them.

    Returns:
        The task; its classes are sorted, except the fixed taxonomy orders.

    Raises:
        ValueError: if `spec` is empty, names no known task, or maps a label twice.
    """
    spec = unicodedata.normalize("NFC", spec.strip())    # as `safe_label` writes labels
    if spec == "binary":
        return Task("binary", ("cog", "toon"))
    if spec == "suit":
        return Task("suit", tuple(SUITS.values()))
    if spec == "name":
        return Task("name", tuple(name for names in COG_NAMES.values() for name in names))
    if spec == "animal":
        return Task("animal", TOON_ANIMALS)
    if spec == "label":
        return Task("label", tuple(sorted(set(labels))))
    if "," not in spec and "=" not in spec:
        raise ToonvisionError(
            f"unknown task {spec!r}{did_you_mean(spec, TASK_NAMES)}: use one of "
            f"{', '.join(TASK_NAMES)}, or a class list such as 'king,queen,jack' or "
            "'king=face,queen=face,ace=number'"
        )
    mapping: dict[str, str] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        label, _, class_name = item.partition("=")
        label, class_name = label.strip(), (class_name.strip() or label.strip())
        if not label or label in mapping:
            raise ToonvisionError(f"class list {spec!r}: label {label!r} is empty or given twice")
        mapping[label] = class_name
    if not mapping:
        raise ToonvisionError(f"class list {spec!r} names no labels")
    return Task("custom", tuple(sorted(set(mapping.values()))), mapping)


def task_for_classes(spec: str, class_names: Sequence[str]) -> Task:
    """Builds the task `spec` for a model that predicts `class_names`, and checks it fits.

    `predict` and `report` read true labels through it: the task must give the model's
    classes in the model's output order, or true labels would be compared with the wrong
    outputs.

    Args:
        spec: a task name or class list, as for `make_task`.
        class_names: the model's classes, in output order (also the `label` task's classes).

    Raises:
        ValueError: if `spec` is not a task, or its classes are not `class_names` in order.
    """
    task = make_task(spec, class_names)
    if task.classes != tuple(class_names):
        raise ToonvisionError(f"task {spec!r} gives classes {', '.join(task.classes)} but the "
                              f"model predicts {', '.join(class_names)}")
    return task
