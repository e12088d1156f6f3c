"""Where the figures of a synthetic screenshot stand: distance, size, edge cuts, overlaps.

A figure's height grows with how far below the horizon its feet are, as in a perspective
view from a Toon's eye height, so far figures are small and stand high. Some figures are
placed so that the screen's edge cuts them, many next to another figure so that boxes
overlap and nametags cover parts of other figures, within the limits set below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCREEN_HEIGHT = 600
SCREEN_WIDTH = 800
NEAREST_HORIZON_OFFSET = 20   # the farthest figures stand this many pixels below the horizon
FIGURE_HEIGHT_PER_PIXEL = (0.68, 0.8)  # figure height per pixel below the horizon, per scene
CUT_BY_SIDE = 0.1             # share of figures cut by the left or right edge
CUT_BY_BOTTOM = 0.05          # share of figures so close that the bottom edge cuts their legs
NEAR_ANOTHER = 0.5            # share of placements tried next to an already placed figure
MAX_BOX_OVERLAP = 0.7         # a box covers at most this share of a smaller one
MAX_NAMETAG_OVERLAP = 0.5     # a nametag covers at most this share of another figure's box

# (left, foot_y, width, height) of a figure; foot_y may lie below the screen.
Placement = tuple[int, int, int, int]


def place_figures(labels: Sequence[str], views: Sequence[str],
                  tag_sizes: Sequence[tuple[int, int]], horizon: int,
                  rng: np.random.Generator) -> list[Placement]:
    """Chooses where each figure stands.

    Distances are drawn log-uniformly, so each doubling of size is about as common. Each
    figure gets up to 40 tries; the first within the overlap limits (boxes covering at most
    `MAX_BOX_OVERLAP` of another, nametags at most `MAX_NAMETAG_OVERLAP`) is kept, else the
    try that exceeds them least.

    Args:
        labels: the figures' labels (Cogs are drawn a little taller than Toons).
        views: their views; side views are narrower.
        tag_sizes: the (width, height) of each figure's nametag.
        horizon: the horizon's y in the screenshot.
        rng: the random generator.

    Returns:
        One (left, foot_y, width, height) per label; `left` may be negative and
        `left + width` or `foot_y` beyond the screen for figures cut by its edge.
    """
    per_pixel = rng.uniform(*FIGURE_HEIGHT_PER_PIXEL)
    farthest, nearest = NEAREST_HORIZON_OFFSET, SCREEN_HEIGHT - 6 - horizon
    placed: list[Placement] = []
    tags: list[Placement] = []
    for label, view, (tag_width, tag_height) in zip(labels, views, tag_sizes, strict=True):
        is_cog = label.startswith("cog_")
        size = rng.uniform(0.95, 1.15) if is_cog else rng.uniform(0.8, 1.0)
        best = best_tag = None
        best_cost = np.inf
        for _ in range(40):
            near = placed[int(rng.integers(len(placed)))] if placed else None
            if near is not None and rng.uniform() < NEAR_ANOTHER:
                offset = float(np.clip(near[1] - horizon + rng.uniform(-0.15, 0.15)
                                       * (near[1] - horizon), farthest, nearest))
            else:
                offset = float(np.exp(rng.uniform(np.log(farthest), np.log(nearest))))
            height = per_pixel * size * offset
            foot = horizon + offset
            if rng.uniform() < CUT_BY_BOTTOM:
                cut = rng.uniform(0.1, 0.4)
                # Solves height = per_pixel * size * (foot - horizon), foot = bottom + cut * height.
                ratio = per_pixel * size
                height = ratio * (SCREEN_HEIGHT - horizon) / (1 - ratio * cut)
                foot = SCREEN_HEIGHT + cut * height
            aspect = rng.uniform(0.5, 0.72) if is_cog else rng.uniform(0.5, 0.66)
            if view == "side":
                aspect *= rng.uniform(0.6, 0.75)
            height, foot = int(height), int(foot)
            width = max(6, int(height * aspect))
            edge = rng.uniform()
            if edge < CUT_BY_SIDE / 2:
                left = -int(rng.uniform(0.25, 0.6) * width)
            elif edge < CUT_BY_SIDE:
                left = SCREEN_WIDTH - int(rng.uniform(0.4, 0.75) * width)
            else:
                if near is not None and rng.uniform() < NEAR_ANOTHER:
                    left = int(near[0] + rng.uniform(-0.9, 0.9) * near[2])
                else:
                    left = int(rng.uniform(2, SCREEN_WIDTH - width - 2))
                left = int(np.clip(left, 2, SCREEN_WIDTH - width - 2))
            visible_height = height - max(0, foot - SCREEN_HEIGHT)
            candidate = (left, min(foot, SCREEN_HEIGHT), width, visible_height)
            center = int(np.clip(left + width // 2, 0, SCREEN_WIDTH))
            tag = (center - tag_width // 2, foot - height - 3, tag_width, tag_height)
            box_overlap = max((_overlap(candidate, other) for other in placed), default=0.0)
            tag_overlap = max([_overlap(tag, other) for other in placed]
                              + [_overlap(candidate, other) for other in tags], default=0.0)
            cost = max(box_overlap / MAX_BOX_OVERLAP, tag_overlap / MAX_NAMETAG_OVERLAP)
            if cost < best_cost:
                best, best_cost, best_tag = (left, foot, width, height), cost, tag
            if cost <= 1:
                break
        placed.append(best)
        tags.append(best_tag)
    return placed


def _overlap(first: Placement, second: Placement) -> float:
    """The intersection of two placements as a share of the smaller one's area."""
    (left1, foot1, width1, height1), (left2, foot2, width2, height2) = first, second
    across = min(left1 + width1, left2 + width2) - max(left1, left2)
    down = min(foot1, foot2) - max(foot1 - height1, foot2 - height2)
    if across <= 0 or down <= 0:
        return 0.0
    return across * down / min(width1 * height1, width2 * height2)
