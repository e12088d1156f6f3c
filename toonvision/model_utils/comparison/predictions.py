"""Per-crop predictions of every comparison run: what the dataset doctor reads.

Each run of a comparison trains on 60% of the crops and predicts the other 40% (its
validation and test parts); over 200 runs every crop is predicted out of sample about 80
times. `PredictionStore` keeps those predictions, one file per configuration in the
comparison's folder, `predictions_<config>.npzlog`:

    frame := header (20 bytes: b"TVP1", run uint32, payload length uint64, CRC-32 uint32)
             payload (a compressed NumPy .npz: ids uint64, y int16, part uint8,
                      probabilities float16 (n, classes))

Why this layout: it has the crash safety of `runs.jsonl` with NumPy's compactness. A run is
appended as one frame in one synced write, so a kill tears at most the last frame, which the
length and CRC reveal; the reader drops it, and the next append first cuts it off. A run
trained again (after a kill between its predictions and its log line) appends a new frame
that replaces the old one when read: the last frame of a run wins, so nothing is counted
twice and a resumed comparison reads exactly as an uninterrupted one. One .npz per run would
need 400 files for 200 runs of two configurations; Parquet would add a dependency and has no
append. The ids are `dataset.crop_ids` (content hashes), so renaming the data folder breaks
nothing. 200 runs of 400 out-of-sample crops with 2 classes take about 1.2 MB per
configuration (`benchmarks/bench_predictions.py`).

A comparison calls, for each configuration of each run, before the run's records go to the
log (so a run in the log always has its predictions):

    store = PredictionStore(out_dir)
    ids = crop_ids(task_data.paths)                                       # once
    probabilities = predict_parts(trainer.model, task_data.images, split)  # validate, test
    store.append(config.name, run, ids, task_data.y, split, probabilities)

and on resume, `store.keep_runs(completed_runs)` to drop the frames of runs not in the log.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toonvision import ToonvisionError
from toonvision.fileio import atomic_path

PREFIX = "predictions_"
SUFFIX = ".npzlog"
PART_NAMES: tuple[str, ...] = ("train", "validate", "test")
OUT_OF_SAMPLE: tuple[str, ...] = ("validate", "test")
MAGIC = b"TVP1"
_HEADER = struct.Struct("<4sIQI")   # magic, run, payload length, CRC-32 of the payload


@dataclass
class Predictions:
    """The stored predictions of one configuration, one row per crop and run.

    Attributes:
        config: the configuration's name.
        run: (M,) the run of each row.
        part: (M,) the split part of each row, an index into `PART_NAMES`.
        ids: (M,) the crop's id (`dataset.crop_ids`).
        y: (M,) the crop's true class.
        probabilities: (M, classes) float32 predicted probabilities.
    """

    config: str
    run: np.ndarray
    part: np.ndarray
    ids: np.ndarray
    y: np.ndarray
    probabilities: np.ndarray

    def __len__(self) -> int:
        return len(self.run)

    def runs(self) -> list[int]:
        """The runs present, sorted."""
        return sorted(int(run) for run in np.unique(self.run))

    def part_names(self) -> np.ndarray:
        """(M,) the split part of each row, as names."""
        return np.asarray(PART_NAMES)[self.part]


class PredictionStore:
    """The prediction files of one comparison folder (see the module notes).

    Args:
        run_dir: the comparison's folder.

    Example:
        >>> store = PredictionStore("runs/cards")                           # doctest: +SKIP
        >>> store.append("baseline", 0, ids, y, split, {"test": probabilities})  # doctest: +SKIP
        >>> store.read("baseline").probabilities.shape                      # doctest: +SKIP
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)

    def path(self, config: str) -> Path:
        """The file of one configuration."""
        return self.run_dir / f"{PREFIX}{config}{SUFFIX}"

    def configs(self) -> list[str]:
        """The configurations that have a prediction file, sorted."""
        return sorted(path.name[len(PREFIX):-len(SUFFIX)]
                      for path in self.run_dir.glob(f"{PREFIX}*{SUFFIX}"))

    def append(self, config: str, run: int, ids: np.ndarray, y: np.ndarray,
               split: Mapping[str, Sequence[int]],
               probabilities: Mapping[str, np.ndarray]) -> None:
        """Appends one run's predictions of one configuration, in one synced write.

        Args:
            config: the configuration's name.
            run: the run's number; a run appended again replaces the earlier one.
            ids: (N,) the id of every image (`dataset.crop_ids(task_data.paths)`).
            y: (N,) the true class of every image.
            split: the run's index arrays per part.
            probabilities: per part (a name of `PART_NAMES`), the probabilities of the
                images `split[part]` in that order (`predict_parts`).

        Raises:
            ToonvisionError: for an unknown part or arrays whose shapes disagree.
        """
        payload = _encode(run, np.asarray(ids), np.asarray(y), split, probabilities)
        header = _HEADER.pack(MAGIC, int(run), len(payload), zlib.crc32(payload))
        path = self.path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            end = _valid_end(path, descriptor)
            if end < os.fstat(descriptor).st_size:
                os.ftruncate(descriptor, end)   # a frame torn by a kill: cut it off
            os.write(descriptor, header + payload)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def read(self, config: str, runs: Iterable[int] | None = None) -> Predictions:
        """Reads one configuration's predictions (an empty result when it has no file).

        Args:
            config: the configuration's name.
            runs: keep only these runs (e.g. the runs in the log); default: all.

        Returns:
            The rows of every run kept, in run order; for each run its last frame.

        Raises:
            ToonvisionError: if a frame other than the last is damaged (naming the file and
                the byte offset).
        """
        frames = self._frames(config)
        wanted = None if runs is None else {int(run) for run in runs}
        chosen = [frames[run] for run in sorted(frames) if wanted is None or run in wanted]
        if not chosen:
            empty = np.zeros(0, dtype=np.int64)
            return Predictions(config, empty, empty.astype(np.uint8), empty.astype(np.uint64),
                               empty, np.zeros((0, 0), dtype=np.float32))
        decoded = [_decode(payload, self.path(config)) for payload in chosen]
        run_numbers = [np.full(len(item["ids"]), int(item["run"]), dtype=np.int64)
                       for item in decoded]
        return Predictions(
            config=config,
            run=np.concatenate(run_numbers),
            part=np.concatenate([item["part"] for item in decoded]).astype(np.uint8),
            ids=np.concatenate([item["ids"] for item in decoded]).astype(np.uint64),
            y=np.concatenate([item["y"] for item in decoded]).astype(np.int64),
            probabilities=np.concatenate([item["probabilities"] for item in decoded]
                                         ).astype(np.float32),
        )

    def read_all(self, runs: Iterable[int] | None = None) -> dict[str, Predictions]:
        """Reads every configuration's predictions, keyed by configuration."""
        runs = None if runs is None else list(runs)
        return {config: self.read(config, runs) for config in self.configs()}

    def keep_runs(self, runs: Iterable[int]) -> None:
        """Rewrites every file with only the last frame of each of `runs`, atomically.

        A resumed comparison calls it with the runs in its log, so frames of a run killed
        before its log line are gone even before the run is trained again.
        """
        wanted = {int(run) for run in runs}
        for config in self.configs():
            frames = self._frames(config)
            if set(frames) <= wanted and self._is_compact(config, frames):
                continue
            with atomic_path(self.path(config)) as temporary:
                with open(temporary, "wb") as handle:
                    for run in sorted(set(frames) & wanted):
                        payload = frames[run]
                        handle.write(_HEADER.pack(MAGIC, run, len(payload), zlib.crc32(payload)))
                        handle.write(payload)

    def _is_compact(self, config: str, frames: dict[int, bytes]) -> bool:
        size = sum(_HEADER.size + len(payload) for payload in frames.values())
        return self.path(config).stat().st_size == size

    def _frames(self, config: str) -> dict[int, bytes]:
        """The payload of each run's last valid frame; a torn last frame is left out."""
        path = self.path(config)
        if not path.is_file():
            return {}
        data = path.read_bytes()
        frames: dict[int, bytes] = {}
        offset = 0
        while offset < len(data):
            frame = _frame_at(data, offset)
            if frame is None:   # torn: the kill's last write
                break
            if isinstance(frame, str):
                raise ToonvisionError(f"{path}: damaged frame at byte {offset} ({frame}); the "
                                      "file was changed outside toonvision")
            run, payload, offset = frame
            frames[run] = payload
        return frames


def _frame_at(data: bytes, offset: int) -> tuple[int, bytes, int] | str | None:
    """The frame at `offset`: (run, payload, next offset); None if torn; a reason if damaged.

    A frame is torn when the file ends inside it, or when its CRC fails and nothing follows
    it (a write the kill interrupted); anything else that fails is damage.
    """
    if len(data) - offset < _HEADER.size:
        return None
    magic, run, length, crc = _HEADER.unpack_from(data, offset)
    if magic != MAGIC:
        return "not a prediction frame"
    start, end = offset + _HEADER.size, offset + _HEADER.size + length
    if end > len(data):
        return None
    payload = data[start:end]
    if zlib.crc32(payload) != crc:
        return None if end == len(data) else "CRC mismatch"
    return run, payload, end


def _valid_end(path: Path, descriptor: int) -> int:
    """The end of the last whole frame of an open prediction file (its size if not torn)."""
    size = os.fstat(descriptor).st_size
    offset = 0
    while offset < size:
        header = _read_at(descriptor, _HEADER.size, offset)
        if len(header) < _HEADER.size:
            return offset
        magic, _, length, crc = _HEADER.unpack(header)
        if magic != MAGIC:
            raise ToonvisionError(f"{path}: damaged frame at byte {offset}; the file was "
                                  "changed outside toonvision")
        end = offset + _HEADER.size + length
        if end > size:
            return offset
        if end == size and zlib.crc32(_read_at(descriptor, length, offset + _HEADER.size)) != crc:
            return offset
        offset = end
    return offset


def _read_at(descriptor: int, size: int, offset: int) -> bytes:
    """Reads `size` bytes at `offset` (`os.pread` where there is one, as on every POSIX)."""
    if hasattr(os, "pread"):
        return os.pread(descriptor, size, offset)
    os.lseek(descriptor, offset, os.SEEK_SET)
    return os.read(descriptor, size)


def _encode(run: int, ids: np.ndarray, y: np.ndarray, split: Mapping[str, Sequence[int]],
            probabilities: Mapping[str, np.ndarray]) -> bytes:
    if run < 0:
        raise ToonvisionError(f"a run number must be >= 0; got {run}")
    if ids.shape != y.shape or ids.ndim != 1:
        raise ToonvisionError(f"need one id and one class per image; got ids {ids.shape} and "
                              f"classes {y.shape}")
    rows_ids, rows_y, rows_part, rows_probabilities = [], [], [], []
    for name, values in probabilities.items():
        if name not in PART_NAMES:
            raise ToonvisionError(f"unknown split part {name!r}; parts are {PART_NAMES}")
        indices = np.asarray(split[name], dtype=np.int64)
        values = np.asarray(values)
        if values.ndim != 2 or len(values) != len(indices):
            raise ToonvisionError(f"part {name!r} has {len(indices)} images but probabilities "
                                  f"of shape {values.shape}")
        rows_ids.append(ids[indices])
        rows_y.append(y[indices])
        rows_part.append(np.full(len(indices), PART_NAMES.index(name), dtype=np.uint8))
        rows_probabilities.append(values.astype(np.float16))
    classes = {values.shape[1] for values in rows_probabilities}
    if len(classes) > 1:
        raise ToonvisionError(f"parts disagree on the number of classes: {sorted(classes)}")
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, run=np.int64(run),
        ids=np.concatenate(rows_ids).astype(np.uint64) if rows_ids else np.zeros(0, np.uint64),
        y=np.concatenate(rows_y).astype(np.int16) if rows_y else np.zeros(0, np.int16),
        part=np.concatenate(rows_part) if rows_part else np.zeros(0, np.uint8),
        probabilities=(np.concatenate(rows_probabilities) if rows_probabilities
                       else np.zeros((0, 0), np.float16)),
    )
    return buffer.getvalue()


def _decode(payload: bytes, path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            return {name: archive[name] for name in ("run", "ids", "y", "part", "probabilities")}
    except (OSError, ValueError, KeyError) as error:
        raise ToonvisionError(f"{path}: a frame cannot be read ({error})") from None
