"""What an extraction reports: the problems it met, each screenshot's result, the summary.

Every file or object that extraction leaves out becomes a `Problem` naming the file and the
reason, one of the reason constants below; the summary groups skipped items by them. Notes
are problems where nothing was lost (a clipped box, a renamed label).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from toonvision.data_processing import voc
from toonvision.data_processing.manifest import PROCESSED_FOLDER, CropRecord
from toonvision.labels import is_taxonomy_label

# Reasons a file or object is skipped.
IMAGE_WITHOUT_XML = "image without XML"
XML_WITHOUT_IMAGE = "XML without image"
AMBIGUOUS_PAIR = "several files for one screenshot"
UNUSABLE_XML = "unusable XML"
UNREADABLE_IMAGE = "unreadable image"
UNUSABLE_OBJECT = "unusable object"
UNUSABLE_LABEL = "unusable label"
EMPTY_BOX = voc.EMPTY_BOX
BOX_OUTSIDE_IMAGE = voc.BOX_OUTSIDE_IMAGE
MOVE_FAILED = "extracted, but could not be moved"
# Notes: worth knowing, but nothing was lost.
SIZE_MISMATCH = "<size> differs from the image (the image was trusted)"
BOX_CLIPPED = "box clipped to the image"
LABEL_RENAMED = "label made safe as a file name"
SAME_CONTENT = "same content as an extracted screenshot"


@dataclass(frozen=True)
class Problem:
    """Something about one file that the user should know.

    Attributes:
        path: the file concerned.
        kind: the reason in a few words (one of the module's reason constants).
        detail: the specifics, e.g. which object and which box.
    """

    path: Path
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class ScreenshotResult:
    """What happened to one screenshot (or to one file that is not a usable screenshot).

    Attributes:
        image_path: the screenshot, or the lone file for a pairing problem.
        xml_path: its annotation, when there is one.
        read: whether both the image and its XML were read.
        crops: the crops written by this run.
        already_extracted: objects skipped because an earlier run extracted them.
        skipped: files or objects left out, each with its reason.
        notes: things worth knowing where nothing was lost.
        moved_to: where the screenshot was moved by `move=True`, if it was.
        drawing: the copy with boxes drawn, if one was written.
    """

    image_path: Path
    xml_path: Path | None = None
    read: bool = False
    crops: list[CropRecord] = field(default_factory=list)
    already_extracted: int = 0
    skipped: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    moved_to: Path | None = None
    drawing: Path | None = None


@dataclass
class ExtractionSummary:
    """Totals over a run, built by `add`-ing each `ScreenshotResult`.

    Example:
        >>> summary = ExtractionSummary()
        >>> for result in extract("shots", "data"):   # doctest: +SKIP
        ...     summary.add(result)
        >>> print(summary.format())                    # doctest: +SKIP
    """

    screenshots_read: int = 0  # with `dry_run`, crops are those that would be written
    crops_per_label: Counter = field(default_factory=Counter)
    already_extracted: int = 0
    moved: int = 0
    drawn: int = 0
    skipped: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    dry_run: bool = False

    def add(self, result: ScreenshotResult) -> None:
        """Adds one screenshot's result to the totals."""
        self.screenshots_read += int(result.read)
        self.crops_per_label.update(crop.label for crop in result.crops)
        self.already_extracted += result.already_extracted
        self.moved += int(result.moved_to is not None)
        self.drawn += int(result.drawing is not None)
        self.skipped.extend(result.skipped)
        self.notes.extend(result.notes)

    @property
    def crops_written(self) -> int:
        return sum(self.crops_per_label.values())

    @property
    def outside_taxonomy(self) -> Counter:
        """Crops written per label for labels outside the ToonTown taxonomy."""
        return Counter({label: count for label, count in self.crops_per_label.items()
                        if not is_taxonomy_label(label)})

    def format(self, examples_per_reason: int = 10) -> str:
        """Returns the summary as text lines for a terminal.

        Args:
            examples_per_reason: how many skipped files to list under each reason.
        """
        written = "crops that would be written (dry run, nothing written)" if self.dry_run \
            else "crops written"
        lines = [f"screenshots read: {self.screenshots_read}",
                 f"{written}: {self.crops_written}"]
        width = max((len(label) for label in self.crops_per_label), default=0)
        lines += [f"  {label:<{width}}  {count}"
                  for label, count in sorted(self.crops_per_label.items())]
        outside = self.outside_taxonomy
        if outside:
            lines.append(f"  of which outside the ToonTown taxonomy: "
                         f"{_counted(sum(outside.values()), 'crop')} of "
                         f"{_counted(len(outside), 'label')} ({', '.join(sorted(outside))})")
        if self.already_extracted:
            lines.append(f"already extracted by an earlier run (left alone): "
                         f"{self.already_extracted} objects")
        if self.moved:
            lines.append(f"screenshots moved to {PROCESSED_FOLDER.as_posix()}: {self.moved}")
        if self.drawn:
            lines.append(f"screenshots drawn with their boxes: {self.drawn}")
        for kind, count in sorted(Counter(note.kind for note in self.notes).items()):
            lines.append(f"note: {kind}: {count}")
        lines.append(f"skipped: {len(self.skipped)}")
        for kind, count in sorted(Counter(problem.kind for problem in self.skipped).items()):
            lines.append(f"  {kind}: {count}")
            examples = [problem for problem in self.skipped if problem.kind == kind]
            lines += [f"    {problem}" for problem in examples[:examples_per_reason]]
            if len(examples) > examples_per_reason:
                lines.append(f"    ... and {len(examples) - examples_per_reason} more")
        return "\n".join(lines)


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
