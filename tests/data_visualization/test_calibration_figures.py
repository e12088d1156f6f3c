"""The reliability diagram draws the bins it is given."""

from __future__ import annotations

import numpy as np

from toonvision.data_visualization.calibration_figures import reliability_figure
from toonvision.data_visualization.figures import save_figure
from toonvision.model_utils.statistics.calibration import apply_temperature, reliability_table


def test_reliability_diagram_shows_raw_and_calibrated_bars_with_their_errors(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.dirichlet([0.3, 0.3, 0.3], size=300)
    y = rng.integers(0, 3, size=300)
    raw = reliability_table(p, y, bins=10)
    calibrated = reliability_table(apply_temperature(p, 2.0), y, bins=10)
    figure = reliability_figure(raw, calibrated, temperature=2.0)
    titles = [axis.get_title() for axis in figure.axes]
    assert titles[0] == f"raw: ECE {raw.expected_calibration_error:.3f}"
    assert titles[1].startswith("calibrated (T = 2.00): ECE")
    bars = [patch for patch in figure.axes[0].patches]
    assert len(bars) == int((raw.counts > 0).sum())
    assert save_figure(figure, tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"
