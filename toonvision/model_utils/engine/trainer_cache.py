"""The trainers an engine keeps between runs: the most recently used, each built once.

Used by `engine.SerialEngine` and by every `ray_engine` worker, so both keep the same ones.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

TRAINER_CACHE = 4   # trainers an engine (a Ray worker) keeps: those trained most recently


class Trainers:
    """The trainers of the configurations trained last, each built on first use.

    Building and tracing a model costs seconds, so a trainer is kept for the next run of its
    configuration; a search makes a new configuration per trial, so only the `size` used
    most recently are kept and memory stays bounded. A trainer is found by its
    configuration's name and built again when that name now means another configuration.

    Args:
        factory: builds a trainer from (config, number of classes, image size).
        num_classes: the number of classes.
        image_size: (height, width).
        size: how many trainers are kept.
        on_build: called after a trainer is built (a Ray worker pins its threads then).

    Example:
        >>> trainers = Trainers(Trainer, 2, (600, 200))           # doctest: +SKIP
        >>> trainers.get(config) is trainers.get(config)          # doctest: +SKIP
        True
    """

    def __init__(self, factory: Callable[[Any, int, tuple[int, int]], Any], num_classes: int,
                 image_size: tuple[int, int], size: int = TRAINER_CACHE,
                 on_build: Callable[[], None] | None = None) -> None:
        self.factory, self.num_classes = factory, num_classes
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.size, self.on_build = size, on_build
        self._kept: collections.OrderedDict[str, tuple[Any, Any]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, config: Any) -> Any:
        """The trainer of `config`: the kept one, or a new one (the oldest kept is dropped)."""
        kept = self._kept.pop(config.name, None)
        if kept is None or kept[0] != config:
            kept = config, self.factory(config, self.num_classes, self.image_size)
            if self.on_build is not None:
                self.on_build()
        self._kept[config.name] = kept
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return kept[1]
