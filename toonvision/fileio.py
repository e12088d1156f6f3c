"""Writing files so that nothing is ever half-written, overwritten or lost.

Every file toonvision writes goes through here:

- `atomic_path` yields a temporary path in the target's folder; whatever the caller writes
  there (`np.save`, `model.save`, `figure.savefig`, plain bytes) is synced and renamed into
  place only when the block ends without an error. A crash leaves the old file or the new
  one, never a torn one; the temporary file is removed on failure.
- `append_jsonl` / `read_jsonl`: logs of one JSON record per line (`runs.jsonl`,
  `tracking.jsonl`), appended with one synced write per call. A kill can tear only the last
  line, and the reader drops exactly that line (and says how many it dropped); a damaged line
  anywhere else is an error, because it means the file was edited, not interrupted.
- `exclusive_lock`: one writer per folder.
- `move_without_overwrite`: moves a file, refusing to replace an existing one.

Why by hand: the standard library has no atomic replace-with-sync helper, and the packages
that do (atomicwrites, now unmaintained) cover neither `np.save`-style writers that take a
path nor the torn-last-line rule of our logs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from toonvision import ToonvisionError

# Temporary files left by a killed atomic write: `.<name>.<8 random characters>.tmp<suffix>`.
TEMPORARY_FILE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def _current_umask() -> int:
    """Returns the process umask (mkstemp creates 0600 files; ours get the usual mode)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _sync(path: str | os.PathLike) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, exclusive: bool = False) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it is synced and renamed to `path`
    (with `exclusive`, given that name only if no file has it: `move_without_overwrite`).

    The temporary name keeps `path`'s suffix, so writers that choose a format by extension
    (`model.save`, `savefig`, `np.save`) work unchanged. Parent folders are created.

    Example:
        >>> with atomic_path("out/images.npy") as temporary:  # doctest: +SKIP
        ...     np.save(temporary, images)

    Raises:
        Whatever the block raises, or FileExistsError (`exclusive`, `path` exists); the
        temporary file is then removed and `path` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(descriptor)
    try:
        yield Path(temporary)
        _sync(temporary)
        os.chmod(temporary, 0o666 & ~_current_umask())
        if exclusive:
            move_without_overwrite(temporary, path)
        else:
            os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Writes `data` to `path` atomically (see `atomic_path`); returns the path."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Writes UTF-8 `text` to `path` atomically (see `atomic_path`); returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def append_jsonl(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> None:
    """Appends one JSON line per record to `path` in a single synced write.

    A kill during the write can leave at most a torn last line, which `read_jsonl` drops.
    """
    text = "".join(json.dumps(dict(record)) + "\n" for record in records)
    if not text:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(descriptor, text.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], int]:
    """Reads a JSON-lines log written by `append_jsonl`.

    Returns:
        The records (JSON objects) in file order, and how many torn lines were dropped: only
        the last non-empty line may be torn (a kill in the middle of a write). A missing file
        is an empty log.

    Raises:
        ToonvisionError: if a line before the last is not a JSON object (the file was
            damaged or edited; the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        return [], 0
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    records, dropped = [], 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ToonvisionError("not a JSON object")
        except ValueError as error:
            if any(rest.strip() for rest in lines[number:]):
                raise ToonvisionError(f"{path}:{number}: damaged record ({error}); repair or "
                                      "remove that line") from None
            dropped += 1
            continue
        records.append(record)
    return records, dropped


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Holds an exclusive lock on the file `path` for the block, or fails at once.

    Args:
        path: the lock file (created if missing, never removed).
        what: who holds the lock, for the message, e.g. "another extraction".

    Raises:
        ToonvisionError: if another process holds the lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        try:
            _lock_file(handle)
        except OSError:
            raise ToonvisionError(f"{path.parent}: {what} is writing to this folder; wait "
                                  "until it finishes") from None
        yield


def _lock_file(handle: io.BufferedRandom) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def write_bytes_new(path: str | os.PathLike, data: bytes) -> Path:
    """Writes `data` to a new file `path` atomically, failing rather than replacing one
    (`atomic_path(path, exclusive=True)`).

    Raises:
        FileExistsError: if `path` exists (nothing is changed).
    """
    with atomic_path(path, exclusive=True) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def move_without_overwrite(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Moves a file, failing rather than replacing an existing target (see
    `copy_without_overwrite`); the source goes only at the end.

    Raises:
        FileExistsError: if `target` exists (nothing is changed).
    """
    copy_without_overwrite(source, target)
    Path(source).unlink()


def copy_without_overwrite(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Gives the file `source` a second name, `target`, failing rather than replacing one.

    A hard link is atomic and refuses an existing name; across file systems (or on one
    without hard links) the file is copied to a temporary name and renamed.

    Raises:
        FileExistsError: if `target` exists (nothing is changed).
    """
    source, target = Path(source), Path(target)
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(f"{target} already exists") from None
        write_bytes_atomic(target, source.read_bytes())


def remove_temporary_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Deletes temporary files that a killed `atomic_path` left in `folder`; returns them.

    Call it only while holding the folder's lock: a running writer's temporary file looks
    the same.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob(".*.tmp*") if recursive else folder.glob(".*.tmp*")
    removed = [path for path in candidates if TEMPORARY_FILE.match(path.name) and path.is_file()]
    for path in removed:
        path.unlink()
    return removed
